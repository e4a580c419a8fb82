"""Weight files fetched by URL into torch hub's cache, or one clear error.

Every checkpoint scheme that downloads goes through :func:`fetch_to_cache`:
``official://`` and ``timm://`` (``schemes``), ``http(s)://``,
``open-mmlab://``, ``mmcls://`` and ``torchvision://`` (``safe_urls``). A
URL's file is kept where ``torch.hub.load_state_dict_from_url`` keeps it,
``<torch.hub.get_dir()>/checkpoints/<last part of the URL's path>``, so a
file that torch hub, mmengine, timm or the official package fetched is reused.

A missing file is downloaded (by rank 0 in a distributed run) unless the
environment sets ``RESNEST_MM_OFFLINE=1``. When it is not there and cannot be
downloaded (offline, no network, a moved URL), the error names the URL, the
path the file is expected at and a command that puts it there.
"""
import os
import shlex
from typing import Optional
from urllib.parse import urlparse

import torch
from mmengine.logging import print_log

from resnest_mm.weights.files import rank_zero_first

#: Set to 1 to never download (CI, air-gapped clusters).
OFFLINE_ENV = 'RESNEST_MM_OFFLINE'


def cache_path(url: str) -> str:
    """Where torch hub keeps ``url``'s file (and looks for it first)."""
    return os.path.join(torch.hub.get_dir(), 'checkpoints',
                        os.path.basename(urlparse(url).path))


def downloads_allowed() -> bool:
    """``False`` when ``RESNEST_MM_OFFLINE`` is set to anything but ``0``."""
    return os.environ.get(OFFLINE_ENV, '0') in ('', '0')


def _not_cached(checkpoint: str, url: str, path: str,
                why: str) -> FileNotFoundError:
    command = (f'curl -fL --create-dirs -o {shlex.quote(path)} '
               f'{shlex.quote(url)}')
    return FileNotFoundError(
        f'checkpoint={checkpoint!r}: {os.path.basename(path)} is not in '
        f"torch hub's cache and {why}. Fetch {url} and put it at {path}, "
        f'e.g. with\n    {command}\nthen run again.')


def _fetch(checkpoint: str, url: str, hash_prefix: Optional[str]) -> str:
    path = cache_path(url)
    if os.path.isfile(path):
        return path
    if not downloads_allowed():
        raise _not_cached(checkpoint, url, path,
                          f'{OFFLINE_ENV} forbids downloads')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    print_log(f'{checkpoint}: downloading {url} to {path}', logger='current')
    try:
        torch.hub.download_url_to_file(url, path, hash_prefix=hash_prefix)
    except OSError as err:  # URLError/HTTPError: offline, moved, refused
        raise _not_cached(checkpoint, url, path,
                          f'downloading it failed ({err})') from err
    return path


def fetch_to_cache(checkpoint: str, url: str,
                   hash_prefix: Optional[str] = None) -> str:
    """Path of ``url``'s file in torch hub's cache, downloaded if missing.

    Args:
        checkpoint: What the config names (``'open-mmlab://resnest50'``),
            for the error message.
        url: Where the file is published.
        hash_prefix: Leading hex digits of the file's sha256, if known; torch
            hub discards a download that does not match.

    Raises:
        FileNotFoundError: The file is not cached and was not downloaded
            (``RESNEST_MM_OFFLINE`` set, or the download failed); the message
            names the URL, the path and a command that fetches it.
    """
    return rank_zero_first(lambda: _fetch(checkpoint, url, hash_prefix))
