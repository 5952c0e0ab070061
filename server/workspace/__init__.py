"""Context from other files of the workspace: an index of what each file defines, and the retrieval that picks what the prompt should show."""
