-- Driven by tests/editors/test_neovim.py: `nvim --headless --clean -l nvim_test.lua`.
-- Loads editors/neovim through setup(), opens a document, and records what the editor got from the
-- real server into $GPT_LSP_OUT (JSON). The Python side asserts on it.
local env = vim.env
local R = { steps = {}, notes = {}, version = tostring(vim.version()) }
local out = env.GPT_LSP_OUT

local function save()
  local f = assert(io.open(out, "w"))
  f:write(vim.json.encode(R))
  f:close()
end

local function step(name, fn)
  local ok, err = pcall(fn)
  R.steps[#R.steps + 1] = { name = name, ok = ok, err = ok and vim.NIL or tostring(err) }
  save()
  if not ok then
    vim.cmd("qa!")
  end
end

-- Collect notifications (the :GptLsp commands report through vim.notify).
local notes = R.notes
vim.notify = function(msg, level)
  notes[#notes + 1] = { msg = msg, level = level or vim.NIL }
end

vim.opt.rtp:prepend(env.GPT_LSP_PLUGIN)
vim.cmd("runtime! plugin/gpt_lsp.lua")
local doc = vim.json.decode(env.GPT_LSP_DOC)
local gl

step("setup", function()
  gl = require("gpt_lsp")
  gl.setup({
    server_path = env.GPT_LSP_SERVER,
    model = env.GPT_LSP_MODEL,
    log_file = env.GPT_LSP_LOG,
    settings = { generation = { timeoutMs = 5000 } },
  })
  R.has_command = vim.fn.exists(":GptLsp") == 2
end)

local client
local function wait_client()
  local ok = vim.wait(30000, function()
    local c = vim.lsp.get_clients({ bufnr = 0, name = "gpt_lsp" })[1]
    if c and c.initialized then
      client = c
      return true
    end
    return false
  end, 50)
  assert(ok, "gpt_lsp client did not attach")
end

step("attach", function()
  vim.cmd.edit(vim.fn.fnameescape(env.GPT_LSP_FILE))
  R.filetype = vim.bo.filetype
  wait_client()
  R.client_name = client.name
  R.cmd = client.config.cmd
  R.init_options = client.config.init_options
  R.capabilities = {
    completion = client.server_capabilities.completionProvider ~= nil,
    inline = client.server_capabilities.inlineCompletionProvider ~= nil,
    code_action = client.server_capabilities.codeActionProvider ~= nil and client.server_capabilities.codeActionProvider ~= false,
    commands = (client.server_capabilities.executeCommandProvider or {}).commands or {},
  }
end)

step("ready", function()
  local status
  local ok = vim.wait(60000, function()
    status = gl.exec("gpt-lsp.status")
    return status ~= nil and status.state == "ready"
  end, 100)
  R.ready_status = status or vim.NIL
  assert(ok, "model not ready: " .. vim.inspect(status))
end)

local function pos_params()
  return { textDocument = { uri = vim.uri_from_bufnr(0) }, position = { line = doc.line, character = doc.character } }
end

local function complete()
  local resp = assert(client:request_sync("textDocument/completion", pos_params(), 20000, 0))
  assert(not resp.err, vim.inspect(resp.err))
  return resp.result
end

step("completion", function()
  local result = complete()
  R.completion = { isIncomplete = result.isIncomplete, count = #(result.items or result), first = (result.items or result)[1] or vim.NIL }
end)

step("inline", function()
  local params = pos_params()
  params.context = { triggerKind = 2 }
  local resp = assert(client:request_sync("textDocument/inlineCompletion", params, 20000, 0))
  assert(not resp.err, vim.inspect(resp.err))
  local items = resp.result and (resp.result.items or resp.result) or {}
  R.inline = { count = #items, first = items[1] or vim.NIL }
end)

step("status notification", function()
  R.last_status = gl.last_status or vim.NIL
  R.statusline = gl.statusline()
end)

step(":GptLsp status", function()
  local before = #notes
  vim.cmd("GptLsp status")
  R.status_note = notes[#notes] and notes[#notes].msg or vim.NIL
  assert(#notes > before, ":GptLsp status printed nothing")
end)

step(":GptLsp toggle", function()
  vim.cmd("GptLsp toggle")
  R.toggle_off_note = notes[#notes].msg
  R.completion_when_off = #(complete().items or {})
  vim.wait(2000, function() return gl.last_status and gl.last_status.state == "disabled" end, 20)
  R.status_when_off = gl.last_status and gl.last_status.state or vim.NIL
  vim.cmd("GptLsp toggle")
  R.toggle_on_note = notes[#notes].msg
  R.completion_when_on = #(complete().items or {})
end)

step("diagnostics", function()
  -- A syntax error: the server publishes tree-sitter diagnostics (when diagnostics.syntax is on).
  local bad = vim.fn.fnamemodify(env.GPT_LSP_FILE, ":h") .. "/broken.py"
  vim.cmd.edit(vim.fn.fnameescape(bad))
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { "def f(:", "    return 1" })
  wait_client()
  vim.wait(5000, function() return #vim.diagnostic.get(0) > 0 end, 50)
  local diags = vim.diagnostic.get(0)
  R.diagnostics = { count = #diags, first = diags[1] and { message = diags[1].message, lnum = diags[1].lnum, source = diags[1].source or vim.NIL } or vim.NIL }
  if R.capabilities.code_action and #diags > 0 then
    local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
    params.range = { start = { line = diags[1].lnum, character = diags[1].col }, ["end"] = { line = diags[1].end_lnum, character = diags[1].end_col } }
    params.context = { diagnostics = { diags[1].user_data and diags[1].user_data.lsp or nil } }
    local resp = client:request_sync("textDocument/codeAction", params, 20000, 0)
    local actions = resp and resp.result or {}
    R.code_actions = { count = #actions, titles = vim.tbl_map(function(a) return a.title end, actions) }
    if #actions > 0 then
      local before = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
      -- code_action() asks for the cursor position: put the cursor on the diagnostic.
      vim.api.nvim_win_set_cursor(0, { diags[1].lnum + 1, diags[1].col })
      vim.lsp.buf.code_action({ apply = true, filter = function(a) return a.title == actions[1].title end })
      vim.wait(5000, function()
        return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n") ~= before
      end, 50)
      R.code_actions.after = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
      R.code_actions.before = before
    end
  end
  vim.cmd("buffer #")
end)

step(":GptLsp restart", function()
  local old = client.id
  vim.cmd("GptLsp restart")
  local ok = vim.wait(30000, function()
    local c = vim.lsp.get_clients({ bufnr = 0, name = "gpt_lsp" })[1]
    return c ~= nil and c.id ~= old and c.initialized
  end, 50)
  R.restarted = ok
  R.old_client_stopped = vim.lsp.get_client_by_id(old) == nil or vim.lsp.get_client_by_id(old):is_stopped()
end)

step("quit", function()
  R.done = true
  save()
end)
vim.cmd("qa!")
