"""The command line: the language server (default) and the pipeline from a shell."""
