"""A model's files: the GGUF file that ``model`` may name, and the config fields that capability
detection reads (``prompts/capabilities.py``), from ``config.json`` or a GGUF's metadata.

GGUF metadata is read here with a few lines of ``struct`` rather than ``gguf.GGUFReader``: the
reader builds a numpy view of every item of every array, and the vocabulary and merges of a
49,152-token model made that 10 s on 2 cores, for the handful of scalars we need (50 ms here).
"""

from __future__ import annotations

import json
import mmap
import struct
from pathlib import Path
from typing import Any

GGUF_MAGIC = b"GGUF"
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class ModelFileError(ValueError):
    """A model path that names no usable file (no GGUF in the folder, several, a broken one)."""


def looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or "\\" in name or Path(name).expanduser().exists()


def find_gguf(name_or_path: str) -> Path | None:
    """The GGUF file ``name_or_path`` names: the file itself, or the one ``.gguf`` in a folder
    that has no ``config.json`` (a Hugging Face checkpoint) of its own; None for anything else."""
    if not looks_like_path(name_or_path):
        return None
    path = Path(name_or_path).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelFileError(f"no such GGUF file {name_or_path!r}")
        return path
    if not path.is_dir() or (path / "config.json").is_file():
        return None
    found = sorted(path.glob("*.gguf"))
    if len(found) > 1:
        raise ModelFileError(f"{name_or_path!r} holds several GGUF files ({', '.join(p.name for p in found)}): "
                             "name one of them")
    return found[0] if found else None


PARAMETERS = "parameters"
"""The key under which :func:`gguf_metadata` gives the number of weights in the file's tensors."""


def gguf_metadata(path: Path) -> dict[str, Any]:
    """The scalar and string metadata of a GGUF file (arrays are skipped), and its weights' count."""
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _read_metadata(data)
    except (OSError, ValueError, struct.error) as exc:
        raise ModelFileError(f"{path} is not a readable GGUF file: {exc}") from exc


def _read_metadata(data: mmap.mmap) -> dict[str, Any]:
    if data[:4] != GGUF_MAGIC:
        raise ValueError("no GGUF magic")
    version, tensors, count = struct.unpack_from("<IQQ", data, 4)
    if version < 2:
        raise ValueError(f"GGUF version {version} is too old")
    offset = 24
    metadata: dict[str, Any] = {}

    def string(at: int) -> tuple[str, int]:
        (length,) = struct.unpack_from("<Q", data, at)
        return data[at + 8:at + 8 + length].decode("utf-8", "replace"), at + 8 + length

    def skip(kind: int, at: int) -> int:
        if kind in _SCALARS:
            return at + struct.calcsize(_SCALARS[kind])
        if kind == _STRING:
            return string(at)[1]
        if kind == _ARRAY:
            item, n = struct.unpack_from("<IQ", data, at)
            at += 12
            if item in _SCALARS:
                return at + n * struct.calcsize(_SCALARS[item])
            for _ in range(n):
                at = skip(item, at)
            return at
        raise ValueError(f"unknown GGUF value type {kind}")

    for _ in range(count):
        key, offset = string(offset)
        (kind,) = struct.unpack_from("<I", data, offset)
        offset += 4
        if kind in _SCALARS:
            (metadata[key],) = struct.unpack_from("<" + _SCALARS[kind], data, offset)
        elif kind == _STRING:
            metadata[key] = string(offset)[0]
        offset = skip(kind, offset)
    parameters = 0
    for _ in range(tensors):  # name, dimensions, type, data offset
        offset = string(offset)[1]
        (dims,) = struct.unpack_from("<I", data, offset)
        shape = struct.unpack_from(f"<{dims}Q", data, offset + 4)
        offset += 4 + 8 * dims + 4 + 8
        size = 1
        for n in shape:
            size *= n
        parameters += size
    metadata[PARAMETERS] = parameters
    return metadata


def gguf_config(path: Path) -> dict[str, Any]:
    """A GGUF's metadata under ``config.json``'s names (the fields capability detection reads)."""
    meta = gguf_metadata(path)
    arch = meta.get("general.architecture", "")
    config = {
        "_name_or_path": meta.get("general.name") or path.stem,
        "model_type": arch,
        "max_position_embeddings": meta.get(f"{arch}.context_length"),
        "hidden_size": meta.get(f"{arch}.embedding_length"),
        "num_hidden_layers": meta.get(f"{arch}.block_count"),
        "rope_theta": meta.get(f"{arch}.rope.freq_base"),
        "vocab_size": meta.get(f"{arch}.vocab_size"),
        "file_type": meta.get("general.file_type"),
    }
    return {key: value for key, value in config.items() if value is not None}


def model_config(name_or_path: str, *, local_files_only: bool) -> dict[str, Any]:
    """``config.json`` of a folder or hub id, or a GGUF's metadata; ``{}`` where there is none
    (a remote model's served name, a hub that cannot be reached)."""
    gguf = find_gguf(name_or_path)
    if gguf is not None:
        return gguf_config(gguf)
    if looks_like_path(name_or_path):
        path = Path(name_or_path).expanduser() / "config.json"
    else:
        try:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(name_or_path, "config.json", local_files_only=local_files_only))
        except Exception:  # not cached, offline, unknown repository: name-based detection only
            return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}
