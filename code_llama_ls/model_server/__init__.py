"""``code-llama-ls model-server``: one loaded model behind an OpenAI-compatible HTTP API."""
