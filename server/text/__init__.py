"""Shared text model: documents with incremental edits, position encodings, languages and tree-sitter helpers."""
