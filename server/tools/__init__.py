"""Command-line views on the serving pipeline: complete, playground, demo, soak."""
