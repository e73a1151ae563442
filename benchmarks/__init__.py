"""Benchmarks and the tooling that only tests and benchmarks need (the test-model trainer, the
llama.cpp builder). Not installed: ``code-llama-ls bench`` runs them from a checkout."""
