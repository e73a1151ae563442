"""``model`` naming a GGUF file: found in a folder, its metadata read without the slow reader,
and a clear error where transformers cannot load its architecture or the file is no GGUF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from code_llama_ls.backends import transformers_backend
from code_llama_ls.backends.base import BackendError
from code_llama_ls.backends.transformers_backend import TransformersBackend
from code_llama_ls.model_files import PARAMETERS, ModelFileError, find_gguf, gguf_config, gguf_metadata


def write_gguf(path: Path, architecture: str = "xyzarch") -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name("an odd model")
    writer.add_context_length(128)
    writer.add_block_count(2)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.add_tensor("output.weight", np.zeros((3, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_metadata_and_weights_count(tmp_path):
    path = write_gguf(tmp_path / "odd.gguf")
    meta = gguf_metadata(path)
    assert meta["general.architecture"] == "xyzarch" and meta["xyzarch.context_length"] == 128
    assert meta[PARAMETERS] == 4 * 8 + 3 * 8
    config = gguf_config(path)
    assert config == {"_name_or_path": "an odd model", "model_type": "xyzarch", "max_position_embeddings": 128,
                      "num_hidden_layers": 2}


def test_finding_the_file(tmp_path):
    path = write_gguf(tmp_path / "odd.gguf")
    assert find_gguf(str(path)) == path and find_gguf(str(tmp_path)) == path
    assert find_gguf("codellama/CodeLlama-7b-hf") is None  # a hub id is no file
    with pytest.raises(ModelFileError, match="no such GGUF file"):
        find_gguf(str(tmp_path / "missing.gguf"))
    write_gguf(tmp_path / "other.gguf")
    with pytest.raises(ModelFileError, match="several GGUF files"):
        find_gguf(str(tmp_path))
    (tmp_path / "broken.gguf").write_bytes(b"not a gguf at all")
    with pytest.raises(ModelFileError, match="not a readable GGUF"):
        gguf_metadata(tmp_path / "broken.gguf")


async def test_an_architecture_transformers_cannot_load_is_named(tmp_path, smollm2_tokenizer):
    path = write_gguf(tmp_path / "odd.gguf")
    backend = TransformersBackend(str(path), smollm2_tokenizer, device="cpu", local_files_only=True)
    with pytest.raises(BackendError, match=r"transformers cannot load odd\.gguf \(architecture 'xyzarch'\)"):
        await backend.load(lambda message, percentage: None)
    assert backend.status().state == "error"


def test_a_large_dequantised_size_is_warned_about(tmp_path, smollm2_tokenizer, monkeypatch):
    path = write_gguf(tmp_path / "odd.gguf")
    backend = TransformersBackend(str(path), smollm2_tokenizer, device="cpu")
    said: list[str] = []
    monkeypatch.setattr(transformers_backend, "LARGE_DEQUANTISED_BYTES", 100)
    backend._warn_if_large(path, 4, lambda message, percentage: said.append(message))  # 56 weights × 4 bytes
    assert said and "dequantised for transformers" in said[0] and backend.warnings == said
    monkeypatch.setattr(transformers_backend, "LARGE_DEQUANTISED_BYTES", 1000)
    backend.warnings.clear()
    backend._warn_if_large(path, 4, lambda message, percentage: said.append(message))
    assert not backend.warnings
