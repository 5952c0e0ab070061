-- Defines :GptLsp; starting the server is left to require("gpt_lsp").setup() or vim.lsp.enable("gpt_lsp").
if vim.g.loaded_gpt_lsp then
  return
end
vim.g.loaded_gpt_lsp = true
require("gpt_lsp").create_command()
