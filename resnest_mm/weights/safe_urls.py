"""mmengine's URL checkpoint schemes, unpickling with ``weights_only=True``.

mmengine 0.10.7 fetches ``https://``, ``open-mmlab://`` (where mmdet's
``open-mmlab://resnest50`` lives), ``mmcls://`` and ``torchvision://``
checkpoints with ``torch.hub.load_state_dict_from_url``, whose
``weights_only`` still defaults to ``False``: a downloaded file could run
arbitrary code while it is unpickled. We register loaders for the same
schemes that resolve names through mmengine's own tables and use the same
cache (torch hub's), but unpickle only tensors, containers and allow-listed
types (``resnest_mm/checkpoint_types.py``). Local files already load with
``weights_only=True``: torch >= 2.6 defaults to it.
"""
from collections import OrderedDict
from typing import Mapping

import torch
from mmengine.runner import checkpoint as mm_checkpoint
from mmengine.runner.checkpoint import (CheckpointLoader,
                                        get_deprecated_model_names,
                                        get_external_models, get_mmcls_models,
                                        get_torchvision_models)

from resnest_mm.weights.files import MapLocation, rank_zero_first
from resnest_mm.weights.formats import extract_state_dict


def load_from_url(filename: str, map_location: MapLocation = None) -> Mapping:
    """``http(s)://`` into torch hub's cache, once per machine."""
    return rank_zero_first(lambda: torch.hub.load_state_dict_from_url(
        filename, map_location=map_location, weights_only=True))


def _name(filename: str) -> str:
    return filename.split('://', 1)[1]


def load_from_openmmlab(filename: str,
                        map_location: MapLocation = None) -> Mapping:
    """``open-mmlab://NAME``: a URL from mmengine's table (and the user's
    ``open_mmlab.json``), deprecated names redirected as mmengine does."""
    name = _name(filename)
    name = get_deprecated_model_names().get(name, name)
    url = get_external_models().get(name)
    if url is None:
        raise ValueError(f'checkpoint={filename!r}: {name!r} is not in '
                         "mmengine's open-mmlab table")
    if not url.startswith(('http://', 'https://')):
        # A path under mmengine's home: mmengine loads that with torch.load,
        # whose default is weights_only=True.
        return mm_checkpoint.load_from_openmmlab(filename, map_location)
    return load_from_url(url, map_location)


def load_from_mmcls(filename: str, map_location: MapLocation = None) -> dict:
    """``mmcls://NAME``: a classifier's ``backbone.*`` part, as mmengine
    returns it."""
    url = get_mmcls_models()[_name(filename)]
    state_dict = extract_state_dict(load_from_url(url, map_location))
    return dict(state_dict=OrderedDict(
        (k[len('backbone.'):], v) for k, v in state_dict.items()
        if k.startswith('backbone.')))


def load_from_torchvision(filename: str,
                          map_location: MapLocation = None) -> Mapping:
    """``torchvision://NAME`` (and the older ``modelzoo://``)."""
    return load_from_url(get_torchvision_models()[_name(filename)],
                         map_location)


def register_safe_url_schemes() -> None:
    """Put these loaders in place of mmengine's for the same prefixes."""
    for prefixes, loader in [
        (('http://', 'https://'), load_from_url),
        (('open-mmlab://', 'openmmlab://'), load_from_openmmlab),
        ('mmcls://', load_from_mmcls),
        (('torchvision://', 'modelzoo://'), load_from_torchvision),
    ]:
        CheckpointLoader.register_scheme(prefixes, loader, force=True)
