"""The one typed, fully defaulted settings object.

On the wire the keys are camelCase (``initializationOptions`` and
``workspace/didChangeConfiguration`` under ``settings.codeLlama``). Updates are validated key by
key: an unknown or invalid key produces a warning and keeps the previous value, so one typo never
costs the user the rest of their configuration.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

BackendName = Literal["transformers", "openai", "ollama", "llamacpp"]
REMOTE_BACKENDS = ("openai", "ollama", "llamacpp")
DEFAULT_MODEL = "codellama/CodeLlama-7b-hf"
CPU_CONTEXT_TOKENS = 4_096
GPU_CONTEXT_TOKENS = 16_384
RELOADS = {"reloads": "always"}
"""A field the loaded model (or the connection to its server) depends on: changing it reloads."""
RELOADS_REMOTE = {"reloads": "remote"}
"""A field only a remote backend's connection depends on."""


class Settings(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
        frozen=False,
    )

    model: str = Field(DEFAULT_MODEL, min_length=1, description="Hub id, local folder or `.gguf` file of the "
        "completion model.", json_schema_extra=RELOADS)
    tokenizer: str | None = Field(None, description="Hub id, folder or `.gguf` file of the tokenizer; defaults to `model`.", json_schema_extra=RELOADS)
    instruct_model: str | None = Field(None, description="Model for explain/ask/docstring/tests; defaults to `model`.")
    backend: BackendName = Field("transformers", description="Where the model runs: `transformers` in-process; "
        "remote: `openai` (OpenAI-compatible `/v1/completions`: vLLM, TGI, llama.cpp, Ollama's `/v1`, "
        "`code-llama-ls model-server`), `ollama` (`/api/generate`, raw), `llamacpp` (llama.cpp's `/infill`).", json_schema_extra=RELOADS)
    engine: Literal["auto", "transformers", "llama.cpp"] = Field("auto", description="`transformers` backend: what "
        "runs the model in-process. `llama.cpp` (llama-cpp-python, the `[llamacpp]` extra) needs a `.gguf` model; "
        "`auto` runs a `.gguf` model on llama.cpp when llama-cpp-python is installed, everything else on transformers.", json_schema_extra=RELOADS)
    compile: Literal["auto", "on", "off"] = Field("auto", description="transformers engine: decode with a static KV "
        "cache and a `torch.compile`d step (CUDA graphs on a GPU), compiled in the background while suggestions are "
        "served eagerly; `auto` compiles on CUDA (unmeasured here) and, on CPU, float32 models from SmolLM2-135M's size "
        "up, where the compiled step took under half the eager step's time (2 cores); smaller models and other CPU "
        "dtypes stay eager. One-shot commands never compile.", json_schema_extra=RELOADS)
    threads: int | None = Field(None, ge=1, le=512, description="llama.cpp engine: CPU threads; default: one per core.", json_schema_extra=RELOADS)
    url: str | None = Field(None, description="Remote backends: the server's base URL, `http(s)://host:port` or "
        "`unix:///abs/path.sock`; plain HTTP to a non-loopback host logs a warning.", json_schema_extra=RELOADS)
    api_key_env: str | None = Field(None, description="Name of the environment variable holding the remote API key "
        "(sent as a Bearer token, never logged).", json_schema_extra=RELOADS)
    prompt_format: Literal["auto", "token_ids", "text"] = Field("auto", description="`openai` backend: send the prompt "
        "as token ids (token-exact), as text, or `auto` (ids first; text from then on if the server refuses ids).", json_schema_extra=RELOADS)
    instruct_endpoint: Literal["completions", "chat"] = Field("completions", description="Remote explain/ask/"
        "docstring/tests: the completions endpoint with the instruct template (token-exact), or the server's "
        "chat endpoint (its own template).", json_schema_extra=RELOADS)
    request_timeout_s: float = Field(30.0, gt=0, le=3600, description="Remote backends: give up when the server "
        "sends nothing for this many seconds.", json_schema_extra=RELOADS)
    max_retries: int = Field(2, ge=0, le=10, description="Remote backends: retries, with backoff, when the server "
        "cannot be connected to (never after any text was received).", json_schema_extra=RELOADS)
    ca_cert_path: str | None = Field(None, description="Remote backends: PEM file of the CA that signs the server's "
        "certificate (TLS is always verified).", json_schema_extra=RELOADS)
    device: str = Field("auto", description="`auto` (cuda → mps → cpu), `cpu`, `cuda`, `cuda:N` or `mps`.", json_schema_extra=RELOADS)
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="Weights' dtype; `auto` picks bfloat16/float16 on GPUs and float32 on CPU."
    , json_schema_extra=RELOADS)
    max_context_tokens: int | None = Field(
        None, ge=64, description=f"Prompt + completion tokens; default {CPU_CONTEXT_TOKENS} on CPU, {GPU_CONTEXT_TOKENS} on GPU."
    )
    max_new_tokens: int = Field(128, ge=1, le=4096, description="Most tokens one completion may generate.")
    instruct_max_new_tokens: int = Field(512, ge=1, le=8192, description="Most tokens one explain/ask/docstring/tests answer may generate.")
    infilling: Literal["auto", "on", "off"] = Field("auto", description="Fill-in-the-middle prompts (`on`) or "
        "left-to-right prompts of the text before the cursor (`off`); `auto` infills with Code Llama 7B/13B (base and "
        "Instruct) and runs every other model, Code Llama 34B, 70B and `-Python` included, left to right.")
    fim_mode: Literal["auto", "psm", "spm"] = Field(
        "auto", description="Infilling order: prefix-suffix-middle or suffix-prefix-middle; `auto` uses SPM for "
        "automatic inline triggers (typing keeps the cached KV prefix valid) and PSM otherwise.")
    prefix_ratio: float = Field(0.75, gt=0.0, lt=1.0, description="Share of the prompt budget reserved for text before the cursor.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 is greedy decoding.")
    kv_cache_mb: int = Field(1024, ge=0, description="Memory cap for reused prompt KV caches (LRU); 0 turns reuse off.")
    completion_cache_entries: int = Field(256, ge=0, description="Generations kept for typing-through (at most 8 "
        "per document; least recently used document first); 0 turns the completion cache off.")
    tokenizer_line_cache: int = Field(65_536, ge=0, description="Lines whose token ids are kept, so that a "
        "keystroke re-encodes only the lines it changed (LRU).")
    token_healing: bool = Field(True, description="Back off a prefix ending inside a word and let the model complete the whole word.")
    debounce_ms: int = Field(150, ge=0, le=2000, description="An automatic (typing) request waits this long for a newer keystroke before calling the model; cache hits are served at once.")
    prompt_lookup_tokens: int = Field(4, ge=0, le=16, description="Greedy prompt-lookup decoding: tokens drafted from n-gram matches per step (0: off); the typing replay showed a gain on both test models.")
    enabled_languages: list[str] = Field(
        default_factory=lambda: ["*"], description="languageIds that get completions; `*` for all."
    )
    ignore_patterns: list[str] = Field(
        default_factory=list, description="Extra gitignore-style patterns of files kept out of prompts."
    )
    context_enabled: bool = Field(True, description="Add definitions, outline and snippets from other places to prompts.")
    context_lines_before: int = Field(40, ge=0, le=500, description="Lines above the cursor whose names are resolved for context.")
    context_lines_after: int = Field(10, ge=0, le=500, description="Lines below the cursor whose names are resolved for context.")
    index_max_files: int = Field(4_000, ge=1, description="Workspace files kept parsed for context (LRU; "
        "16 file-system probes are remembered per file).")
    context_cache_entries: int = Field(256, ge=1, description="Entries of each context memo table (LRU): "
        "definitions per cursor state, outlines, symbol tables, import statements, import resolutions, "
        "ignore files.")
    snippet_regions: int = Field(64, ge=0, description="Recently edited regions of open files that snippets "
        "are ranked from (the oldest are forgotten first).")
    python_executable: str | None = Field(None, description="Interpreter whose stdlib/site-packages resolve Python imports; default: the server's.")
    include_dirs: list[str] = Field(default_factory=list, description="C/C++ include folders (absolute or workspace-relative).")
    local_files_only: bool = Field(False, description="Never download; load only from the local cache or folder.", json_schema_extra=RELOADS)
    shared_model_server: bool = Field(False, description="`transformers` backend: run the model in one "
        "`code-llama-ls model-server` per user and model, started by the first window and reused by later ones "
        "(one model load), instead of in each language server.", json_schema_extra=RELOADS)
    shared_model_server_idle_s: int = Field(300, ge=1, le=86_400, description="The shared model server exits "
        "this many seconds after the last language server using it has gone.")
    log_prompts: bool = Field(False, description="Log prompt and completion text (off: logs never contain code).", json_schema_extra=RELOADS_REMOTE)
    engine_stats_events: int = Field(20_000, ge=0, description="Records of model calls and answers kept for "
        "`codeLlama/engineStats` (benchmarks).")

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        base = value.split(":", 1)[0]
        if base not in {"auto", "cpu", "cuda", "mps"} or (":" in value and (base != "cuda" or not value.split(":", 1)[1].isdigit())):
            raise ValueError("expected auto, cpu, cuda, cuda:N or mps")
        return value

    @property
    def tokenizer_name(self) -> str:
        return self.tokenizer or self.model

    @property
    def instruct_model_name(self) -> str:
        return self.instruct_model or self.model

    @property
    def remote(self) -> bool:
        return self.backend in REMOTE_BACKENDS

    def runtime_key(self) -> tuple:
        """The values of the fields marked ``RELOADS`` (and, with a remote backend,
        ``RELOADS_REMOTE``): the runtime is loaded again when this changes."""
        return tuple(getattr(self, name) if reloads == "always" or (reloads == "remote" and self.remote) else None
                     for name, reloads in _RELOAD_FIELDS.items())

    def context_tokens_for(self, device_type: str) -> int:
        if self.max_context_tokens is not None:
            return self.max_context_tokens
        return CPU_CONTEXT_TOKENS if device_type == "cpu" else GPU_CONTEXT_TOKENS


_RELOAD_FIELDS = {name: field.json_schema_extra["reloads"] for name, field in Settings.model_fields.items()
                  if isinstance(field.json_schema_extra, dict) and "reloads" in field.json_schema_extra}


def merge_settings(current: Settings, changes: Any) -> tuple[Settings, list[str]]:
    """Apply camelCase ``changes`` to ``current`` key by key.

    Returns the new settings and one warning per rejected key; rejected keys keep their
    previous value.
    """
    if changes is None:
        return current, []
    if not isinstance(changes, dict):
        return current, [f"codeLlama settings must be an object, got {type(changes).__name__}; ignored"]
    data = current.model_dump(by_alias=True)
    known = set(data)
    warnings: list[str] = []
    for key, value in changes.items():
        if key not in known:
            warnings.append(f"unknown setting codeLlama.{key}; ignored")
            continue
        candidate = {**data, key: value}
        try:
            Settings.model_validate(candidate)
        except ValidationError as exc:
            reason = "; ".join(err["msg"] for err in exc.errors())
            warnings.append(f"invalid value for codeLlama.{key} ({value!r}): {reason}; keeping {data[key]!r}")
            continue
        data = candidate
    return Settings.model_validate(data), warnings


def settings_table() -> str:
    """The README's settings table, generated from the model so the two cannot drift."""
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        annotation = str(field.annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
        default = field.default_factory() if field.default_factory else field.default
        default_text = "model-dependent" if default is None else repr(default).replace("'", '"')
        annotation = annotation.replace("|", "\\|")  # a bare "|" would split the Markdown cell
        rows.append(f"| `{to_camel(name)}` | `{annotation}` | `{default_text}` | {field.description} |")
    return "\n".join(rows)
