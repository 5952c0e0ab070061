--- :checkhealth gpt_lsp — is the server there, which version, which model, and what it last said.
local M = {}

local health = vim.health

--- The command the plugin would start: the resolved vim.lsp.config (0.11+, user overrides
--- included), else the one built from setup() options.
local function server_cmd(gpt)
  local resolved = vim.lsp.config and vim.lsp.config.gpt_lsp
  local cmd = resolved and resolved.cmd or gpt.cmd()
  return type(cmd) == "table" and cmd or nil
end

local function running_client()
  local filter = { name = "gpt_lsp" }
  local list = vim.lsp.get_clients and vim.lsp.get_clients(filter) or vim.lsp.get_active_clients(filter)
  return list[1]
end

local function check_server(cmd)
  health.start("gpt-lsp: server")
  if not cmd then
    health.warn("the server command is a function (custom `cmd`); cannot check the executable")
    return
  end
  local exe = cmd[1]
  if vim.fn.executable(exe) ~= 1 then
    health.error(("server executable %q not found"):format(exe), {
      "Install it from a checkout: `pipx install /path/to/gpt-lsp` (not published on PyPI yet)",
      "or pass server_path (or cmd) to require('gpt_lsp').setup()",
    })
    return
  end
  health.ok("server executable: " .. vim.fn.exepath(exe))
  local ok, result = pcall(function()
    return vim.system({ exe, "--version" }, { text = true }):wait(15000)
  end)
  if ok and result.code == 0 and vim.trim(result.stdout or "") ~= "" then
    health.ok("version: " .. vim.trim(result.stdout))
  else
    local why = ok and ((result.stderr or "") ~= "" and vim.trim(result.stderr) or ("exit " .. tostring(result.code)))
      or tostring(result)
    health.error("`" .. exe .. " --version` failed: " .. why)
  end
end

local function check_model(gpt)
  health.start("gpt-lsp: model")
  local client = running_client()
  if not client then
    health.info("the server is not running in this Neovim (open a supported file, or :GptLsp start)")
    health.info("configured model: " .. (gpt.options.model or "the model shipped with gpt-lsp"))
    return
  end
  local status, err = gpt.exec("gpt-lsp.status", {}, 5000)
  if not status then
    health.error("the running server did not answer gpt-lsp.status: " .. tostring(err))
    return
  end
  if status.modelError and status.modelError ~= vim.NIL then
    health.error("model " .. tostring(status.model) .. ": " .. tostring(status.modelError))
  else
    health.ok("model loaded: " .. tostring(status.model))
  end
  health.info(("server %s, AI %s"):format(tostring(status.version), status.enabled and "enabled" or "disabled"))
end

local function check_status(gpt)
  health.start("gpt-lsp: last status")
  local last = gpt.last_status
  if not last then
    health.info("no gpt-lsp/status notification received yet")
    return
  end
  local text = last.state .. (last.reason ~= "" and (": " .. last.reason) or "")
  if last.state == "error" then
    health.error(text)
  elseif last.state == "disabled" then
    health.warn(text)
  else
    health.ok(text)
  end
end

function M.check()
  local gpt = require("gpt_lsp")
  check_server(server_cmd(gpt))
  check_model(gpt)
  check_status(gpt)
  health.start("gpt-lsp: Neovim")
  if vim.lsp.inline_completion then
    health.ok("inline completion (ghost text) available")
  else
    health.info("ghost text needs Neovim 0.12+; list completions work on " .. tostring(vim.version()))
  end
end

return M
