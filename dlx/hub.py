"""Loading from the Hugging Face Hub without its minute of retries when offline: the local cache first,
the Hub only when one quick request reaches it, and otherwise an error that says how to use a folder."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from dlx.errors import DlxError, first_line

Loaded = TypeVar("Loaded")


def from_cache_or_hub(
    load: Callable[..., Loaded], name: str, offline_message: str, hub_failure: Callable[[str], str]
) -> Loaded:
    """``load(name, local_files_only=True)``, else ``load(name)`` if the Hub is reachable. ``offline_message``
    is the error when it is not; ``hub_failure`` turns the Hub's first error line into the error."""
    try:
        return load(name, local_files_only=True)
    except (OSError, ValueError):
        pass  # not in the local cache: try the Hub
    if not hub_reachable():
        raise DlxError(offline_message)
    try:
        return load(name)
    except (OSError, ValueError) as error:
        raise DlxError(hub_failure(first_line(error).rstrip(".") + ".")) from error


def hub_reachable(timeout: float = 5.0) -> bool:
    """One quick request to the Hub; ``from_pretrained`` itself retries for most of a minute when offline."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.HF_HUB_OFFLINE:
        return False
    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception:  # any failure to connect (DNS, refused, proxy, timeout) means offline to the user
        return False
    return True
