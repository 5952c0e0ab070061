--- gpt-lsp for Neovim: local AI completions through the built-in LSP client.
---
---   require("gpt_lsp").setup({})            -- defaults: `gpt-lsp --stdio` on PATH, common filetypes
---
--- Neovim 0.11+: registers the config with vim.lsp.config() and enables it with vim.lsp.enable().
--- Neovim 0.10:  starts the client with vim.lsp.start() from a FileType autocmd.
--- Neovim 0.12+: also turns on native inline completion (ghost text); accept with <Tab> (configurable).
--- See :help gpt-lsp.
local M = {}

local NAME = "gpt_lsp"
local has_011 = vim.fn.has("nvim-0.11") == 1

---@class gpt_lsp.Options
M.defaults = {
  --- Full server command. nil: built from `server_path`, `model`, `log_file`.
  cmd = nil,
  --- The gpt-lsp executable (`pipx install /path/to/gpt-lsp` puts it on PATH; not on PyPI yet).
  server_path = "gpt-lsp",
  --- Model directory passed as `--model` (nil: the server's setting/default).
  model = nil,
  --- Server log file (`--log-file`); false: the server logs to stderr, i.e. :LspLog.
  log_file = vim.fn.stdpath("log") .. "/gpt-lsp.log",
  filetypes = {
    "python", "javascript", "javascriptreact", "typescript", "typescriptreact",
    "go", "rust", "java", "c", "cpp",
  },
  root_markers = { ".git", "pyproject.toml", "setup.py", "package.json", "go.mod", "Cargo.toml", "pom.xml" },
  --- Server settings (camelCase, nested), sent as initializationOptions and didChangeConfiguration,
  --- e.g. { generation = { maxTokensLine = 32 }, model = { variant = "int8" } }. See :help gpt-lsp-settings.
  settings = {},
  --- Start automatically for `filetypes` (false: only after :GptLsp start / vim.lsp.enable("gpt_lsp")).
  autostart = true,
  inline_completion = {
    --- Native ghost text on Neovim 0.12+ (ignored on older versions).
    enable = true,
    --- Insert-mode key that accepts the ghost text (falls back to its normal meaning when there is
    --- none). false: map it yourself with vim.lsp.inline_completion.get().
    accept_key = "<Tab>",
    --- Keys to cycle through candidates (false to skip).
    next_key = "<M-]>",
    prev_key = "<M-[>",
  },
  completion = {
    --- vim.lsp.completion.enable() with autotrigger (0.11+). false leaves completion to your
    --- completion plugin (nvim-cmp, blink.cmp) or <C-x><C-o>.
    autotrigger = false,
  },
  --- Called after the built-in on_attach: function(client, bufnr).
  on_attach = nil,
  --- Notify (vim.notify WARN) when the server reports state "disabled" or "error".
  notify = true,
}

M.options = vim.deepcopy(M.defaults)
--- Last `gpt-lsp/status` notification: { state = "ready"|"generating"|"disabled"|"error", reason = "", uri = nil }.
M.last_status = nil

local function notify(msg, level)
  vim.notify("gpt-lsp: " .. msg, level or vim.log.levels.INFO, { title = "gpt-lsp" })
end

--- The command that starts the server, from the options.
function M.cmd(opts)
  opts = opts or M.options
  if opts.cmd then
    return opts.cmd
  end
  local cmd = { opts.server_path, "--stdio" }
  if opts.model then
    vim.list_extend(cmd, { "--model", vim.fn.expand(opts.model) })
  end
  if opts.log_file then
    vim.list_extend(cmd, { "--log-file", opts.log_file })
  end
  return cmd
end

local function clients(bufnr)
  local filter = { name = NAME, bufnr = bufnr }
  return vim.lsp.get_clients and vim.lsp.get_clients(filter) or vim.lsp.get_active_clients(filter)
end

--- client:request_sync on 0.11+, client.request_sync before.
local function request_sync(client, method, params, timeout_ms, bufnr)
  if has_011 then
    return client:request_sync(method, params, timeout_ms, bufnr)
  end
  return client.request_sync(method, params, timeout_ms, bufnr)
end

local status_handler = function(_, params, ctx)
  if type(params) ~= "table" then
    return
  end
  local previous = M.last_status
  M.last_status = { state = params.state, reason = params.reason or "", uri = params.uri, client_id = ctx.client_id }
  vim.g.gpt_lsp_status = params.state
  pcall(vim.api.nvim_exec_autocmds, "User", { pattern = "GptLspStatus", data = M.last_status })
  local quiet = M._quiet_until and vim.uv.now() < M._quiet_until -- :GptLsp toggle reports itself
  if M.options.notify and not quiet and (params.state == "error" or params.state == "disabled")
    and not (previous and previous.state == params.state and previous.reason == params.reason) then
    notify(params.state .. (params.reason ~= "" and (": " .. params.reason) or ""), vim.log.levels.WARN)
  end
end

local keymaps_set = false
local function set_inline_keymaps(opts)
  if keymaps_set or not (vim.lsp.inline_completion and opts.inline_completion.enable) then
    return
  end
  keymaps_set = true
  local ic = vim.lsp.inline_completion
  local accept = opts.inline_completion.accept_key
  if accept then
    vim.keymap.set("i", accept, function()
      -- get() accepts the shown candidate and returns false when there is none.
      if not ic.get() then
        return vim.api.nvim_replace_termcodes(accept, true, false, true)
      end
      return ""
    end, { expr = true, replace_keycodes = false, desc = "gpt-lsp: accept inline completion" })
  end
  local cycle = ic.select or ic.jump
  if cycle then
    if opts.inline_completion.next_key then
      vim.keymap.set("i", opts.inline_completion.next_key, function() cycle({ count = 1 }) end,
        { desc = "gpt-lsp: next inline completion" })
    end
    if opts.inline_completion.prev_key then
      vim.keymap.set("i", opts.inline_completion.prev_key, function() cycle({ count = -1 }) end,
        { desc = "gpt-lsp: previous inline completion" })
    end
  end
end

local function on_attach(client, bufnr)
  local opts = M.options
  if vim.lsp.inline_completion and opts.inline_completion.enable then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
    set_inline_keymaps(opts)
  end
  if opts.completion.autotrigger and vim.lsp.completion then
    vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = true })
  end
  if opts.on_attach then
    opts.on_attach(client, bufnr)
  end
end

--- The vim.lsp config table (also what lsp/gpt_lsp.lua returns with the defaults).
function M.config(opts)
  opts = opts or M.options
  local settings = opts.settings or {}
  if vim.tbl_isempty(settings) then
    settings = vim.empty_dict() -- sent as {} (an empty Lua table would go out as the JSON list [])
  end
  return {
    name = NAME,
    cmd = M.cmd(opts),
    filetypes = opts.filetypes,
    root_markers = opts.root_markers,
    init_options = settings,
    -- Neovim sends this as workspace/didChangeConfiguration and answers workspace/configuration
    -- for the "gptLsp" section from it.
    settings = { gptLsp = settings },
    handlers = { ["gpt-lsp/status"] = status_handler },
    on_attach = on_attach,
  }
end

local function check_executable(cmd)
  if vim.fn.executable(cmd[1]) == 1 then
    return true
  end
  notify(("server executable %q not found. Install it from a checkout with `pipx install /path/to/gpt-lsp`"
    .. " (not on PyPI yet), or pass server_path/cmd to require('gpt_lsp').setup(). See :checkhealth gpt_lsp.")
    :format(cmd[1]), vim.log.levels.ERROR)
  return false
end

local augroup
--- Start (or attach) the client for `bufnr` without vim.lsp.enable (Neovim 0.10, or autostart=false).
function M.start(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  -- On 0.11+ prefer the resolved vim.lsp.config (it includes the user's overrides).
  local resolved = has_011 and vim.lsp.config and vim.lsp.config[NAME]
  local config = resolved and vim.deepcopy(resolved) or M.config()
  config.name = NAME
  if not check_executable(config.cmd) then
    return nil
  end
  local fname = vim.api.nvim_buf_get_name(bufnr)
  local found = vim.fs.find(config.root_markers, { path = vim.fs.dirname(fname), upward = true })[1]
  config.root_dir = found and vim.fs.dirname(found) or vim.fs.dirname(fname)
  config.root_markers = nil
  config.filetypes = nil
  return vim.lsp.start(config, { bufnr = bufnr })
end

function M.stop()
  for _, client in ipairs(clients()) do
    if has_011 then client:stop() else client.stop() end
  end
end

function M.restart()
  local bufs = {}
  for _, client in ipairs(clients()) do
    for b in pairs(client.attached_buffers or {}) do
      bufs[b] = true
    end
  end
  M.stop()
  vim.defer_fn(function()
    for b in pairs(bufs) do
      if vim.api.nvim_buf_is_valid(b) then
        M.start(b)
      end
    end
    notify("restarted")
  end, 500)
end

--- Run a server command (`gpt-lsp.status`, `gpt-lsp.toggle`) synchronously; returns result, err.
function M.exec(command, arguments, timeout_ms)
  local client = clients()[1]
  if not client then
    return nil, "gpt-lsp is not running"
  end
  local resp, err = request_sync(client, "workspace/executeCommand",
    { command = command, arguments = arguments or {} }, timeout_ms or 5000, 0)
  if not resp then
    return nil, err or "no response"
  end
  if resp.err then
    return nil, resp.err.message or vim.inspect(resp.err)
  end
  return resp.result, nil
end

function M.status()
  local lines = {}
  local result, err = M.exec("gpt-lsp.status")
  if result then
    for _, k in ipairs(vim.tbl_keys(result)) do
      local v = result[k]
      table.insert(lines, ("%s: %s"):format(k, type(v) == "string" and v or vim.inspect(v)))
    end
    table.sort(lines)
  else
    table.insert(lines, "server: " .. tostring(err))
  end
  if M.last_status then
    table.insert(lines, ("last status: %s%s"):format(M.last_status.state,
      M.last_status.reason ~= "" and (" (" .. M.last_status.reason .. ")") or ""))
  end
  notify(table.concat(lines, "\n"))
  return result, lines
end

function M.toggle()
  M._quiet_until = vim.uv.now() + 2000
  local enabled, err = M.exec("gpt-lsp.toggle")
  if enabled == nil then
    notify("toggle failed: " .. tostring(err), vim.log.levels.ERROR)
  else
    notify("AI suggestions " .. (enabled and "enabled" or "disabled"))
  end
  return enabled
end

function M.log()
  local file = M.options.log_file
  if file and vim.uv.fs_stat(file) then
    vim.cmd.split(vim.fn.fnameescape(file))
  else
    vim.cmd.split(vim.fn.fnameescape(vim.lsp.get_log_path()))
  end
end

--- For statuslines: "gpt-lsp: ready", "" when not attached.
function M.statusline()
  if #clients(0) == 0 then
    return ""
  end
  return "gpt-lsp: " .. (M.last_status and M.last_status.state or "starting")
end

local subcommands = {
  status = M.status,
  toggle = M.toggle,
  restart = M.restart,
  log = M.log,
  start = function() M.start() end,
  stop = M.stop,
}

function M.create_command()
  vim.api.nvim_create_user_command("GptLsp", function(a)
    local fn = subcommands[a.args ~= "" and a.args or "status"]
    if not fn then
      notify("unknown subcommand " .. a.args .. "; use status|toggle|restart|log|start|stop", vim.log.levels.ERROR)
      return
    end
    fn()
  end, {
    nargs = "?",
    desc = "gpt-lsp: status | toggle | restart | log | start | stop",
    complete = function(lead)
      return vim.tbl_filter(function(s) return s:find(lead, 1, true) == 1 end, vim.tbl_keys(subcommands))
    end,
  })
end

---@param opts? gpt_lsp.Options
function M.setup(opts)
  M.options = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  if opts and opts.filetypes then
    M.options.filetypes = opts.filetypes -- lists replace, not merge
  end
  M.create_command()
  local config = M.config()
  if has_011 and vim.lsp.config then
    vim.lsp.config(NAME, config)
    if M.options.autostart and check_executable(config.cmd) then
      vim.lsp.enable(NAME)
    end
  elseif M.options.autostart then
    augroup = vim.api.nvim_create_augroup("gpt_lsp", { clear = true })
    vim.api.nvim_create_autocmd("FileType", {
      group = augroup,
      pattern = M.options.filetypes,
      callback = function(ev) M.start(ev.buf) end,
    })
  end
  return M
end

return M
