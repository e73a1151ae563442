"""code-llama-ls: a Code Llama assistant for editors, over the Language Server Protocol."""

__version__ = "0.1.0"
