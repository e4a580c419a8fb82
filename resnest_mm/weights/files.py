"""Read weight files without running their pickled code.

``.pth``/``.pt``/``.bin`` go through ``torch.load(weights_only=True)``:
tensors, containers and allow-listed types only (``import resnest_mm`` adds
mmengine's checkpoint types, see ``resnest_mm/checkpoint_types.py``).
``.safetensors`` (timm's Hugging Face files) hold no pickle at all.
"""
import hashlib
import os
from typing import Callable, Mapping, TypeVar, Union

import torch
from mmengine.dist import get_dist_info

MapLocation = Union[str, torch.device, None]
T = TypeVar('T')


def read_weights(path: str, map_location: MapLocation = 'cpu') -> Mapping:
    """The object stored in a weight file: a state dict or a checkpoint dict.

    Raises ``FileNotFoundError`` naming the path when it is not a file.
    """
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'weight file {path!r} does not exist')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        device = map_location if isinstance(map_location, str) else 'cpu'
        return load_file(path, device=device)
    return torch.load(path, map_location=map_location, weights_only=True)


def sha256_of(path: str, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (release files reach 400 MB)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_bytes), b''):
            digest.update(chunk)
    return digest.hexdigest()


def rank_zero_first(fetch: Callable[[], T]) -> T:
    """``fetch()`` on rank 0, then on the other ranks of a distributed run.

    A download into a shared cache then happens once: the other ranks find
    the file rank 0 wrote.
    """
    rank, world_size = get_dist_info()
    if rank == 0:
        result = fetch()
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            result = fetch()
    return result
