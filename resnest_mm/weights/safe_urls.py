"""mmengine's URL checkpoint schemes, unpickling with ``weights_only=True``.

mmengine 0.10.7 fetches ``https://``, ``open-mmlab://`` (where mmdet's
``open-mmlab://resnest50`` lives), ``mmcls://`` and ``torchvision://``
checkpoints with ``torch.hub.load_state_dict_from_url``, whose
``weights_only`` still defaults to ``False``: a downloaded file could run
arbitrary code while it is unpickled. We register loaders for the same
schemes that resolve names through mmengine's own tables and use the same
cache (torch hub's, through ``cache.fetch_to_cache``: offline, a missing file
is one clear error), but unpickle only tensors, containers and allow-listed
types (``resnest_mm/checkpoint_types.py``). Local files already load with
``weights_only=True``: torch >= 2.6 defaults to it.
"""
import difflib
from collections import OrderedDict
from typing import Mapping, Optional

from mmengine.runner import checkpoint as mm_checkpoint
from mmengine.runner.checkpoint import (CheckpointLoader,
                                        get_deprecated_model_names,
                                        get_external_models, get_mmcls_models,
                                        get_torchvision_models)

from resnest_mm.weights.cache import fetch_to_cache
from resnest_mm.weights.files import MapLocation, read_weights
from resnest_mm.weights.formats import extract_state_dict


def _read(checkpoint: str, url: str, map_location: MapLocation) -> Mapping:
    return read_weights(fetch_to_cache(checkpoint, url), map_location)


def load_from_url(filename: str, map_location: MapLocation = None) -> Mapping:
    """``http(s)://`` into torch hub's cache, once per machine."""
    return _read(filename, filename, map_location)


def _url_of(filename: str, table: Mapping[str, str], table_name: str,
            renamed: Optional[Mapping[str, str]] = None) -> str:
    """The URL ``filename`` (``'mmcls://resnest50'``) names in ``table``,
    after ``renamed`` (old name -> new)."""
    name = filename.split('://', 1)[1]
    name = (renamed or {}).get(name, name)
    if name not in table:
        closest = difflib.get_close_matches(name, table, n=5, cutoff=0)
        raise ValueError(
            f'checkpoint={filename!r}: {name!r} is not in {table_name} '
            f'({len(table)} names); the closest are {closest}')
    return table[name]


def load_from_openmmlab(filename: str,
                        map_location: MapLocation = None) -> Mapping:
    """``open-mmlab://NAME``: a URL from mmengine's table (and the user's
    ``open_mmlab.json``), deprecated names redirected as mmengine does."""
    url = _url_of(filename, get_external_models(),
                  "mmengine's open-mmlab table", get_deprecated_model_names())
    if not url.startswith(('http://', 'https://')):
        # A path under mmengine's home: mmengine loads that with torch.load,
        # whose default is weights_only=True.
        return mm_checkpoint.load_from_openmmlab(filename, map_location)
    return _read(filename, url, map_location)


def load_from_mmcls(filename: str, map_location: MapLocation = None) -> dict:
    """``mmcls://NAME``: a classifier's ``backbone.*`` part, as mmengine
    returns it."""
    url = _url_of(filename, get_mmcls_models(), "mmengine's mmcls table")
    state_dict = extract_state_dict(_read(filename, url, map_location))
    return dict(state_dict=OrderedDict(
        (k[len('backbone.'):], v) for k, v in state_dict.items()
        if k.startswith('backbone.')))


def load_from_torchvision(filename: str,
                          map_location: MapLocation = None) -> Mapping:
    """``torchvision://NAME`` (and the older ``modelzoo://``)."""
    url = _url_of(filename, get_torchvision_models(),
                  "mmengine's torchvision table")
    return _read(filename, url, map_location)


def register_safe_url_schemes() -> None:
    """Put these loaders in place of mmengine's for the same prefixes."""
    for prefixes, loader in [
        (('http://', 'https://'), load_from_url),
        (('open-mmlab://', 'openmmlab://'), load_from_openmmlab),
        ('mmcls://', load_from_mmcls),
        (('torchvision://', 'modelzoo://'), load_from_torchvision),
    ]:
        CheckpointLoader.register_scheme(prefixes, loader, force=True)
