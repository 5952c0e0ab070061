-- Driven by tests/editors/test_neovim_inline.py:
--   nvim --headless --clean -c "luafile nvim_inline_test.lua"      (Neovim 0.12+)
-- Not `-l`: the insert-mode flow needs the main loop, so every step runs from a timer and keys go
-- through nvim_feedkeys as if typed. Loads editors/neovim with setup(), types `    return ` in a
-- Python buffer, waits for the plugin's native inline completion (ghost text, an extmark in the
-- `nvim.lsp.inline_completion` namespace), accepts it with the documented key (<Tab>), then checks
-- <Tab> without a suggestion is a plain Tab. Records everything into $GPT_LSP_OUT (JSON).
local env = vim.env
local api = vim.api
local R = { steps = {}, notes = {}, version = tostring(vim.version()) }

local function save()
  local f = assert(io.open(env.GPT_LSP_OUT, "w"))
  f:write(vim.json.encode(R))
  f:close()
end

local function finish()
  R.done = true
  save()
  vim.cmd("qa!")
end

local function fail(name, err)
  R.steps[#R.steps + 1] = { name = name, ok = false, err = tostring(err) }
  R.mode_at_failure = api.nvim_get_mode().mode
  R.lines_at_failure = api.nvim_buf_get_lines(0, 0, -1, false)
  save()
  vim.cmd("qa!")
end

local function ok_step(name)
  R.steps[#R.steps + 1] = { name = name, ok = true, err = vim.NIL }
  save()
end

-- Whole-run guard: never leave a headless nvim behind.
vim.defer_fn(function() fail("deadline", "the flow did not finish in 150 s") end, 150000)

vim.notify = function(msg, level)
  R.notes[#R.notes + 1] = { msg = msg, level = level or vim.NIL }
end

--- Poll `cond` every 50 ms from a timer (the main loop keeps running: insert mode, LSP replies),
--- then call `next`; fail step `name` after `timeout_ms`.
local function wait_then(name, timeout_ms, cond, next)
  local deadline = vim.uv.now() + timeout_ms
  local function poll()
    local ok, res = pcall(cond)
    if not ok then
      return fail(name, res)
    end
    if res then
      ok_step(name)
      local ok2, err = pcall(next)
      if not ok2 then
        fail(name .. " (next)", err)
      end
      return
    end
    if vim.uv.now() > deadline then
      return fail(name, "timed out after " .. timeout_ms .. " ms")
    end
    vim.defer_fn(poll, 50)
  end
  vim.defer_fn(poll, 0)
end

local function feed(keys)
  -- "t": as if typed, so insert-mode mappings (the plugin's <Tab>) apply.
  api.nvim_feedkeys(api.nvim_replace_termcodes(keys, true, false, true), "t", false)
end

local ns = api.nvim_create_namespace("nvim.lsp.inline_completion")
local function ghost()
  local marks = api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })
  for _, m in ipairs(marks) do
    local d = m[4]
    if d.virt_text and #d.virt_text > 0 then
      local text = {}
      for _, chunk in ipairs(d.virt_text) do
        text[#text + 1] = chunk[1]
      end
      return { row = m[2], col = m[3], text = table.concat(text), pos = d.virt_text_pos or vim.NIL,
        virt_lines = d.virt_lines and #d.virt_lines or 0 }
    end
  end
  return nil
end

local gl
local ok, err = pcall(function()
  vim.opt.rtp:prepend(env.GPT_LSP_PLUGIN)
  vim.cmd("runtime! plugin/gpt_lsp.lua")
  gl = require("gpt_lsp")
  gl.setup({
    server_path = env.GPT_LSP_SERVER,
    model = env.GPT_LSP_MODEL,
    log_file = env.GPT_LSP_LOG,
    settings = { generation = { timeoutMs = 5000 } },
  })
  vim.cmd.edit(vim.fn.fnameescape(env.GPT_LSP_FILE))
  -- Keystrokes land exactly as typed: no automatic indentation.
  vim.bo.indentexpr = ""
  vim.bo.autoindent = false
  vim.bo.smartindent = false
  vim.bo.expandtab = false
  R.filetype = vim.bo.filetype
  R.has_inline_api = vim.lsp.inline_completion ~= nil
end)
if not ok then
  fail("setup", err)
  return
end
ok_step("setup")

local client
wait_then("attach", 30000, function()
  client = vim.lsp.get_clients({ bufnr = 0, name = "gpt_lsp" })[1]
  return client ~= nil and client.initialized
end, function()
  R.inline_capability = client.server_capabilities.inlineCompletionProvider ~= nil
  R.inline_enabled = vim.lsp.inline_completion.is_enabled({ bufnr = 0 })
  -- on_attach maps the accept key (global insert-mode map, replacing Neovim's default <Tab>).
  local map = vim.fn.maparg("<Tab>", "i", false, true)
  R.tab_map_desc = map.desc or vim.NIL
  local status
  wait_then("ready", 60000, function()
    status = gl.exec("gpt-lsp.status")
    return status ~= nil and status.state == "ready" and (status.model or "") ~= ""
  end, function()
    R.ready_status = status
    -- Line 2 is empty; go there and type in insert mode.
    api.nvim_win_set_cursor(0, { 2, 0 })
    feed("i    return ")
    wait_then("ghost text shown", 60000, function()
      local g = ghost()
      return g ~= nil and g.text ~= ""
    end, function()
      R.ghost = ghost()
      R.mode_with_ghost = api.nvim_get_mode().mode
      R.lines_with_ghost = api.nvim_buf_get_lines(0, 0, -1, false)
      feed("<Tab>")
      wait_then("accepted", 10000, function()
        return api.nvim_buf_get_lines(0, 1, 2, false)[1] ~= "    return "
      end, function()
        -- Let a stray second change (if any) land before reading.
        vim.defer_fn(function()
          R.lines_after_accept = api.nvim_buf_get_lines(0, 0, -1, false)
          R.cursor_after_accept = api.nvim_win_get_cursor(0)
          R.mode_after_accept = api.nvim_get_mode().mode
          R.ghost_after_accept = ghost() or vim.NIL
          -- With nothing shown, <Tab> falls back to a plain Tab. Give the request that follows the
          -- accept time to come back (the fixed model has nothing to add after "text").
          vim.defer_fn(function()
            R.ghost_before_plain_tab = ghost() or vim.NIL
            feed("<Tab>")
            vim.defer_fn(function()
              R.lines_after_plain_tab = api.nvim_buf_get_lines(0, 0, -1, false)
              feed("<Esc>")
              vim.defer_fn(function()
                R.mode_after_esc = api.nvim_get_mode().mode
                R.ghost_after_esc = ghost() or vim.NIL
                finish()
              end, 300)
            end, 500)
          end, 1500)
        end, 300)
      end)
    end)
  end)
end)
