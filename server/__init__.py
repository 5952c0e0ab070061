"""gpt-lsp: a private, local code assistant behind the Language Server Protocol."""

__version__ = "0.1.0"
