"""Named weights in configs: ``official://resnest50``, ``timm://resnest50d``.

    init_cfg=dict(type='Pretrained', checkpoint='timm://resnest101e')

A name stands for one release file. Its URL follows torch hub's convention,
``<name>-<first 8+ hex digits of the file's sha256>.pth``, and the file lives
in torch hub's cache, ``<torch.hub.get_dir()>/checkpoints/<file name>``, where
``torch.hub``, the official package and older timm put it too, so a file any
of them fetched is reused. Every load checks the file's sha256 against its
name, converts it into our layout and records the variant (``avd_first``
included) so the backbone refuses a mismatch.

A missing file is downloaded unless the environment sets
``RESNEST_MM_OFFLINE=1``; when it cannot be, the error names the URL to fetch,
the path to put it at and a command that does both (``cache``).

Local ``.safetensors`` files (timm's Hugging Face weights) also load by path,
and mmengine's URL schemes are replaced by ``weights_only`` ones
(``safe_urls``).
"""
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict

from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from resnest_mm.models.arch_presets import ARCH_PRESETS
from resnest_mm.weights.arch_check import ARCH_METADATA_KEY
from resnest_mm.weights.cache import fetch_to_cache
from resnest_mm.weights.files import MapLocation, read_weights, sha256_of
from resnest_mm.weights.formats import convert_checkpoint
from resnest_mm.weights.safe_urls import register_safe_url_schemes

OFFICIAL_RELEASE = ('https://github.com/zhanghang1989/ResNeSt/releases/'
                    'download/weights_step1')
TIMM_RELEASE = ('https://github.com/rwightman/pytorch-image-models/releases/'
                'download')
#: mmengine scheme matching local paths that end in ``.safetensors``.
LOCAL_SAFETENSORS = r'(?![A-Za-z][\w+.-]*://).+\.safetensors$'


@dataclass(frozen=True)
class NamedWeights:
    """One release file and the preset (``ARCH_PRESETS`` key) it belongs to."""

    url: str
    arch: str

    @property
    def file_name(self) -> str:
        return self.url.rsplit('/', 1)[-1]

    @property
    def hash_prefix(self) -> str:
        """Leading hex digits of the file's sha256, from its name."""
        return re.search(r'-([0-9a-f]{8,})\.', self.file_name).group(1)


def _official(name: str, sha256_prefix: str) -> NamedWeights:
    return NamedWeights(f'{OFFICIAL_RELEASE}/{name}-{sha256_prefix}.pth', name)


#: The official torch release: the names of ``resnest.torch``.
OFFICIAL_WEIGHTS: Dict[str, NamedWeights] = {
    name: _official(name, sha) for name, sha in [
        ('resnest50', '528c19ca'), ('resnest101', '22405ba7'),
        ('resnest200', '75117900'), ('resnest269', '0cc87c48'),
        ('resnest50_fast_1s1x64d', 'd8fbf808'),
        ('resnest50_fast_2s1x64d', '44938639'),
        ('resnest50_fast_4s1x64d', 'f74f3fc3'),
        ('resnest50_fast_1s2x40d', '32830b84'),
        ('resnest50_fast_2s2x40d', '9d126481'),
        ('resnest50_fast_4s2x40d', '41d14ed0'),
        ('resnest50_fast_1s4x24d', 'd4a4f76f'),
    ]
}
#: timm's names. timm published these files before moving to the Hugging
#: Face hub (whose copies have no published hash); all but 14d/26d (ported
#: from GluonCV) are the official files, same bytes.
TIMM_WEIGHTS: Dict[str, NamedWeights] = {
    arch: NamedWeights(f'{TIMM_RELEASE}/{path}', arch) for arch, path in [
        ('resnest14d', 'v0.1-weights/gluon_resnest14-9c8fe254.pth'),
        ('resnest26d', 'v0.1-weights/gluon_resnest26-50eb607c.pth'),
        ('resnest50d', 'v0.1-resnest/resnest50-528c19ca.pth'),
        ('resnest101e', 'v0.1-resnest/resnest101-22405ba7.pth'),
        ('resnest200e', 'v0.1-resnest/resnest200-75117900.pth'),
        ('resnest269e', 'v0.1-resnest/resnest269-0cc87c48.pth'),
        ('resnest50d_4s2x40d',
         'v0.1-resnest/resnest50_fast_4s2x40d-41d14ed0.pth'),
        ('resnest50d_1s4x24d',
         'v0.1-resnest/resnest50_fast_1s4x24d-d4a4f76f.pth'),
    ]
}
#: Scheme prefix -> the names it knows.
NAMED_WEIGHTS: Dict[str, Dict[str, NamedWeights]] = {
    'official://': OFFICIAL_WEIGHTS,
    'timm://': TIMM_WEIGHTS,
}


def lookup(uri: str) -> NamedWeights:
    """``'timm://resnest50d'`` -> its :class:`NamedWeights`."""
    for scheme, table in NAMED_WEIGHTS.items():
        if uri.startswith(scheme):
            name = uri[len(scheme):]
            if name not in table:
                raise ValueError(
                    f'checkpoint={uri!r}: {scheme} has no weights named '
                    f'{name!r}; choose one of {sorted(table)}')
            return table[name]
    raise ValueError(f'checkpoint={uri!r} does not start with one of '
                     f'{sorted(NAMED_WEIGHTS)}')


def verify(path: str, weights: NamedWeights) -> None:
    """Raise ``RuntimeError`` unless the file's sha256 matches its name."""
    digest = sha256_of(path)
    if not digest.startswith(weights.hash_prefix):
        raise RuntimeError(
            f'{path} has sha256 {digest[:16]}..., but its name promises '
            f'{weights.hash_prefix}...: the file is damaged or is not '
            f'{weights.url}. Delete it and fetch it again.')


def load_from_named_weights(filename: str,
                            map_location: MapLocation = None) -> dict:
    """mmengine loader for ``official://`` and ``timm://``.

    Returns ``{'state_dict': ..., 'meta': ...}`` in our layout, classifier
    dropped, with the variant recorded in the state dict's metadata.
    """
    weights = lookup(filename)
    path = fetch_to_cache(filename, weights.url, weights.hash_prefix)
    verify(path, weights)
    conversion = convert_checkpoint(read_weights(path, map_location),
                                    'official')
    if conversion.unplaced:
        raise ValueError(f'{path} is not the {weights.arch} release: keys '
                         f'{sorted(conversion.unplaced)[:5]} have no place')
    state_dict = OrderedDict(conversion.state_dict)
    recorded = dict(arch=weights.arch,
                    avd_first=ARCH_PRESETS[weights.arch].avd_first)
    state_dict._metadata = OrderedDict({'': {ARCH_METADATA_KEY: recorded}})
    print_log(f'{filename}: {weights.file_name} in our layout, left out '
              f'{sorted(conversion.dropped)}', logger='current')
    meta = dict(source=weights.url, **recorded)
    return dict(state_dict=state_dict, meta=meta)


def load_from_local_safetensors(filename: str,
                                map_location: MapLocation = None) -> dict:
    """mmengine loader for local ``.safetensors`` files (never pickled)."""
    return read_weights(filename, map_location or 'cpu')


def register_weight_schemes() -> None:
    """Teach mmengine's ``CheckpointLoader`` our schemes (at import), and
    make its URL schemes unpickle with ``weights_only=True``."""
    register_safe_url_schemes()
    CheckpointLoader.register_scheme(
        prefixes=tuple(NAMED_WEIGHTS), loader=load_from_named_weights,
        force=True)
    CheckpointLoader.register_scheme(
        prefixes=LOCAL_SAFETENSORS, loader=load_from_local_safetensors,
        force=True)
