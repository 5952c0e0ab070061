"""The actions flow: syntax diagnostics, model hints, quick fixes and generated snippets."""
