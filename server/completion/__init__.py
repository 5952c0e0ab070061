"""The keystroke flow: cursor context, prompt, decode, post-processing and the generation cache."""
