"""llama.cpp from the llama-cpp-python sdist: ``llama-server``, the GGUF converter, the Python server.

One pinned sdist (:data:`VERSION`) provides everything the real-server tests and the load script
need, built once per machine and cached under ``~/.cache/code-llama-ls/llama.cpp-<VERSION>/``
(``$CODE_LLAMA_LS_LLAMA_CPP_CACHE`` overrides the parent folder):

- ``src/``: the unpacked sdist (``vendor/llama.cpp`` holds llama.cpp, its ``convert_hf_to_gguf.py``
  and ``gguf-py``; ``llama_cpp/`` holds the pure-Python bindings and ``llama_cpp.server``);
- ``build/bin/``: CMake target ``llama-server`` built with shared libraries, so the same
  ``libllama.so`` also serves the Python bindings through ``LLAMA_CPP_LIB_PATH`` — one C++ build
  serves both servers.

``python -m benchmarks.llama_cpp`` builds (or finds) it and prints the paths.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

VERSION = "0.3.36"
"""The llama-cpp-python release whose sdist (and vendored llama.cpp) is used."""

CACHE_ENV = "CODE_LLAMA_LS_LLAMA_CPP_CACHE"

CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=ON",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    # No web UI: neither an npm build nor a download of the prebuilt one (there is no network).
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    # Generic x86-64/arm64 code: a cached build must not die of SIGILL on another CPU.
    "-DGGML_NATIVE=OFF",
)


def cache_dir(version: str = VERSION) -> Path:
    base = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "code-llama-ls"
    return Path(base) / f"llama.cpp-{version}"


def source_dir(version: str = VERSION) -> Path:
    return cache_dir(version) / "src"


def llama_cpp_dir(version: str = VERSION) -> Path:
    return source_dir(version) / "vendor" / "llama.cpp"


def bin_dir(version: str = VERSION) -> Path:
    return cache_dir(version) / "build" / "bin"


def llama_server_path(version: str = VERSION) -> Path:
    return bin_dir(version) / "llama-server"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (parallel test processes build once, the rest wait)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _log(message: str) -> None:
    print(f"[llama.cpp {VERSION}] {message}", file=sys.stderr, flush=True)


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    """Run a build step quietly; on failure raise with the end of its output."""
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-30:])
        raise RuntimeError(f"{' '.join(command[:3])} … failed with exit code {done.returncode}:\n{tail}")


def fetch_source(version: str = VERSION) -> Path:
    """Download (with pip) and unpack the llama-cpp-python sdist; return its folder."""
    target = source_dir(version)
    if (target / "vendor" / "llama.cpp" / "CMakeLists.txt").is_file():
        return target
    with _locked(cache_dir(version) / ".source.lock"):
        if (target / "vendor" / "llama.cpp" / "CMakeLists.txt").is_file():
            return target
        with tempfile.TemporaryDirectory(dir=cache_dir(version)) as tmp:
            _run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
                  "--disable-pip-version-check", "-q", "-d", tmp, f"llama-cpp-python=={version}"])
            (archive,) = Path(tmp).glob("llama_cpp_python-*.tar.gz")
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
            unpacked = Path(tmp) / f"llama_cpp_python-{version}"
            if target.exists():
                shutil.rmtree(target)
            os.replace(unpacked, target)
    return target


def build_llama_server(version: str = VERSION, jobs: int | None = None) -> Path:
    """Build ``llama-server`` (and the shared libraries) once; return the binary's path."""
    server = llama_server_path(version)
    done = cache_dir(version) / "build.done"
    if done.is_file() and server.is_file():
        return server
    src = fetch_source(version) / "vendor" / "llama.cpp"
    build = cache_dir(version) / "build"
    with _locked(cache_dir(version) / ".build.lock"):
        if done.is_file() and server.is_file():
            return server
        started = time.monotonic()
        _log(f"building llama-server in {build} (several minutes on 2 cores)")
        _run(["cmake", "-S", str(src), "-B", str(build), *CMAKE_OPTIONS])
        _run(["cmake", "--build", str(build), "--target", "llama-server", "-j", str(jobs or os.cpu_count() or 2)])
        done.write_text(f"{time.monotonic() - started:.0f} s\n")
        _log(f"built in {time.monotonic() - started:.0f} s")
    return server


def llama_server_command(gguf: Path, port: int, *, parallel: int = 4, version: str = VERSION) -> list[str]:
    """``llama-server`` on 127.0.0.1:``port`` serving ``gguf`` with ``parallel`` slots of 4,096 tokens."""
    return [str(llama_server_path(version)), "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
            "--parallel", str(parallel), "--ctx-size", str(4096 * parallel), "--threads", "2"]


def gguf_env(version: str = VERSION) -> dict[str, str]:
    """Environment for llama.cpp's Python tools: its vendored ``gguf-py`` first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(llama_cpp_dir(version) / "gguf-py"), env.get("PYTHONPATH", "")) if p
    )
    return env


def _plain_llama_view(model_dir: Path, tmp: Path, tokenizer_model: Path | None) -> Path:
    """The model folder as the converter should see it: transformers' ``CodeLlamaTokenizer`` adds
    a ``<FILL_ME>`` token of its own (one more than the model's embeddings), so the converter gets
    the same files under ``LlamaTokenizerFast``; with ``tokenizer_model`` (SentencePiece) beside
    them, the converter takes the vocabulary and its scores from that, as for Meta's releases."""
    view = tmp / "model"
    view.mkdir()
    for item in model_dir.iterdir():
        if item.name != "tokenizer_config.json":
            (view / item.name).symlink_to(item)
    if tokenizer_model is not None:
        (view / "tokenizer.model").symlink_to(Path(tokenizer_model).resolve())
    config_path = model_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    config["tokenizer_class"] = "LlamaTokenizerFast"
    # As in a Hugging Face Code Llama repository: the added tokens listed, so that the converter
    # marks ▁<PRE>/▁<SUF>/▁<MID>/▁<EOT> as control tokens (parsed from text like <s>).
    added = json.loads((model_dir / "tokenizer.json").read_text()).get("added_tokens", [])
    config.setdefault("added_tokens_decoder", {
        str(token["id"]): {"content": token["content"], "special": token.get("special", False)} for token in added})
    (view / "tokenizer_config.json").write_text(json.dumps(config))
    return view


def convert_to_gguf(model_dir: Path, tokenizer_model: Path | None = None, version: str = VERSION) -> Path:
    """Convert a Hugging Face Llama folder to an f32 GGUF (cached beside the build) with
    Code Llama's control tokens set by id: ``▁<EOT>`` as ``eot`` (llama.cpp recognises only
    ``<EOT>`` or ``_<EOT>`` by text) and ``▁<PRE>``/``▁<SUF>``/``▁<MID>`` as the FIM tokens.

    ``tokenizer_model``: the SentencePiece model of the same vocabulary, if there is one; without
    it the vocabulary comes from ``tokenizer.json`` with placeholder scores, and llama.cpp's text
    tokenization then differs from SentencePiece's (``"    def"`` → ``▁▁▁▁``, ``def``)."""
    from code_llama_ls.prompts.tokenization import ModelTokenizer

    model_dir = Path(model_dir).resolve()
    out = cache_dir(version) / "gguf" / f"{model_dir.name}{'-spm' if tokenizer_model else ''}.gguf"
    if out.is_file():
        return out
    fetch_source(version)
    special = ModelTokenizer.from_pretrained(str(model_dir), local_files_only=True).special
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        plain, final = Path(tmp) / "plain.gguf", Path(tmp) / "final.gguf"
        _run([sys.executable, str(llama_cpp_dir(version) / "convert_hf_to_gguf.py"), str(_plain_llama_view(model_dir, Path(tmp), tokenizer_model)),
              "--outfile", str(plain), "--outtype", "f32"], gguf_env(version))
        tokens = {"eot": special.eot, "fim_pre": special.prefix, "fim_suf": special.suffix,
                  "fim_mid": special.middle}
        _run([sys.executable, "-m", "gguf.scripts.gguf_new_metadata", str(plain), str(final), "--force",
              *(arg for name, token in tokens.items() for arg in ("--special-token-by-id", name, str(token)))],
             gguf_env(version))
        os.replace(final, out)
    return out


def tiny_model_gguf(model_dir: Path, version: str = VERSION) -> Path:
    """A tiny test model's GGUF; with the Code Llama tokenizer replica's SentencePiece model where
    that is present (the tiny models are built on it then), so the GGUF's vocabulary has real scores."""
    from benchmarks.tiny_model import fixture_tokenizer_dir

    folder = fixture_tokenizer_dir()
    spm = folder / "tokenizer.model" if folder is not None and (folder / "tokenizer.model").is_file() else None
    return convert_to_gguf(model_dir, spm, version)


def python_server_env(version: str = VERSION) -> dict[str, str]:
    """Environment that runs ``python -m llama_cpp.server`` from the sdist on the cached build."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(source_dir(version)), env.get("PYTHONPATH", "")) if p
    )
    env["LLAMA_CPP_LIB_PATH"] = str(bin_dir(version))
    return env


def use_python_bindings(version: str = VERSION) -> None:
    """Make ``import llama_cpp`` in this process load the sdist's Python package on the cached
    build's ``libllama``, as the ``[llamacpp]`` extra would (children: :func:`python_server_env`)."""
    os.environ["LLAMA_CPP_LIB_PATH"] = str(bin_dir(version))
    source = str(source_dir(version))
    if source not in sys.path:
        sys.path.insert(0, source)


def main() -> None:
    started = time.monotonic()
    server = build_llama_server()
    print(f"llama-server: {server}")
    print(f"sources: {source_dir()}")
    print(f"ready in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
