"""The language server: LSP wiring over the completion and action stages."""
