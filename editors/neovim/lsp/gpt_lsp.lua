-- Default config for Neovim 0.11+: `vim.lsp.enable("gpt_lsp")` works without calling setup().
-- Override any field with vim.lsp.config("gpt_lsp", { ... }), or use require("gpt_lsp").setup({ ... }).
return require("gpt_lsp").config(require("gpt_lsp").defaults)
