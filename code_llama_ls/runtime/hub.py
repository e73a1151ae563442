"""The Hugging Face hub, asked once before a load whether it answers at all.

huggingface_hub retries a file it cannot fetch and has not cached five times with backoff (about
25 s) before it gives up, and a load asks for several files. When the hub does not answer we
load from the local cache at once, or fail at once with what to do when the model is not there.
"""

from __future__ import annotations

import logging

from code_llama_ls.backends.base import BackendError
from code_llama_ls.model_files import looks_like_path
from code_llama_ls.settings import Settings

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 2.0
"""How long the hub may take to accept a connection before it counts as unreachable."""


class HubUnreachable(BackendError):
    """The hub does not answer and the model is not in the local cache."""


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _offline_mode() -> bool:
    """``HF_HUB_OFFLINE``: huggingface_hub itself only reads the cache, without retries."""
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Any HTTP answer counts; a refused connection, a timeout or a failed name lookup do not.
    The hub's own session is used, so proxies are honoured."""
    from huggingface_hub.utils import get_session

    try:
        get_session().head(hub_endpoint(), timeout=timeout)
    except Exception:  # httpx, requests or huggingface_hub errors, depending on the version
        return False
    return True


def _hub_ids(settings: Settings) -> dict[str, str]:
    """The hub ids a load fetches, each with a file that must be cached to load it offline."""
    ids = {}
    if settings.backend == "transformers" and not looks_like_path(settings.model):
        ids[settings.model] = "config.json"
    if not looks_like_path(settings.tokenizer_name):
        ids.setdefault(settings.tokenizer_name, "tokenizer.json")
    return ids


def _cached(repo_id: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, filename), str)


def load_settings(settings: Settings) -> Settings:
    """The settings to load with: as given when nothing comes from the hub or it answers; local
    files only when it does not answer and what the load needs is cached; else HubUnreachable."""
    ids = _hub_ids(settings)
    if settings.local_files_only or not ids or _offline_mode() or hub_reachable():
        return settings
    missing = next((repo for repo, filename in ids.items() if not _cached(repo, filename)), None)
    if missing is not None:
        raise HubUnreachable(
            f"cannot reach the Hugging Face hub at {hub_endpoint()}, and {missing!r} is not in the local cache: "
            "use a local folder (--model, or the `model` setting), or download it once while online; "
            "then --local-files-only (`localFilesOnly`) loads it without the hub")
    log.warning("the Hugging Face hub at %s does not answer: loading from the local cache", hub_endpoint())
    return settings.model_copy(update={"local_files_only": True})


def load_failure(given: Settings, used: Settings, exc: Exception) -> str:
    """A failed load's message, saying why only the cache was tried when the hub did not answer."""
    if used is given:
        return str(exc)
    return f"the Hugging Face hub at {hub_endpoint()} does not answer, so only the local cache was tried: {exc}"
