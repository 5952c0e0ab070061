-- :checkhealth gpt_lsp in a real headless Neovim, with the plugin on a plain runtimepath.
-- Env: GPT_LSP_PLUGIN, GPT_LSP_SERVER, GPT_LSP_FILE, GPT_LSP_OUT; GPT_LSP_WAIT_READY=1 waits for the model.
vim.opt.rtp:append(os.getenv("GPT_LSP_PLUGIN"))
local gpt = require("gpt_lsp").setup({ server_path = os.getenv("GPT_LSP_SERVER"), log_file = false })
vim.cmd.edit(os.getenv("GPT_LSP_FILE"))
local ready = false
if os.getenv("GPT_LSP_WAIT_READY") == "1" then
  ready = vim.wait(90000, function()
    return gpt.last_status ~= nil and gpt.last_status.state == "ready"
  end, 100)
end
vim.cmd("checkhealth gpt_lsp")
local result = { ready = ready, health = vim.api.nvim_buf_get_lines(0, 0, -1, false) }
-- :help through the shipped doc/tags (no :helptags run here).
for _, tag in ipairs({ "gpt-lsp", "gpt-lsp-health", ":GptLsp" }) do
  local ok, err = pcall(vim.cmd.help, tag)
  result["help " .. tag] = ok and vim.fn.expand("%:t") .. ":" .. vim.fn.getline(".") or tostring(err)
  if ok then vim.cmd.close() end
end
local f = assert(io.open(os.getenv("GPT_LSP_OUT"), "w"))
f:write(vim.json.encode(result))
f:close()
vim.cmd("qa!")
