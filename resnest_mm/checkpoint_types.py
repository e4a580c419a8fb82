"""Let ``torch.load(weights_only=True)`` read mmengine's own checkpoints.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``: it unpickles
only tensors, containers and allow-listed globals. Every checkpoint mmengine
0.10.7's Runner writes holds its ``MessageHub``: ``HistoryBuffer`` objects with
numpy arrays and a dict of statistics methods pickled as
``getattr(HistoryBuffer, 'min')``. So ``--resume`` fails.

We allow-list exactly those globals rather than switching ``weights_only`` off.
``builtins.getattr`` in particular is *not* allowed: the unpickler gets a
stand-in that resolves only ``HistoryBuffer``'s registered statistics methods
and rejects any other attribute, so a crafted file cannot reach arbitrary
callables through it.
"""
import pickle
from typing import Any, Callable, List, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct, scalar


#: The statistics methods HistoryBuffer defines itself. Its
#: ``_statistics_methods`` table only lists them once some buffer has been
#: created, which a process that only loads a checkpoint has not done.
HISTORY_BUFFER_STATISTICS = ('current', 'max', 'mean', 'min')


def history_buffer_getattr(obj: Any, name: str) -> Callable:
    """``getattr`` restricted to ``HistoryBuffer``'s statistics methods."""
    if obj is HistoryBuffer and (name in HISTORY_BUFFER_STATISTICS or
                                 name in HistoryBuffer._statistics_methods):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) in a weights_only checkpoint is refused: '
        'only HistoryBuffer statistics methods may be looked up')


SafeGlobal = Union[Callable, Tuple[Callable, str]]

#: The globals of a checkpoint written by mmengine's Runner. numpy's array
#: reconstructors are listed under both of their module paths, so checkpoints
#: written under numpy 1.x load under 2.x and vice versa.
MMENGINE_CHECKPOINT_GLOBALS: List[SafeGlobal] = [
    HistoryBuffer,
    (history_buffer_getattr, 'builtins.getattr'),
    np.ndarray,
    np.dtype,
    # the dtype classes of numpy's numeric and bool arrays (numpy >= 1.25)
    *{type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDG'},
    (_reconstruct, 'numpy.core.multiarray._reconstruct'),
    (_reconstruct, 'numpy._core.multiarray._reconstruct'),
    (scalar, 'numpy.core.multiarray.scalar'),
    (scalar, 'numpy._core.multiarray.scalar'),
]


def allow_mmengine_checkpoint_types() -> None:
    """Add :data:`MMENGINE_CHECKPOINT_GLOBALS` to torch's safe globals.

    Raises:
        ImportError: under a torch without safe globals (before 2.4), naming
            the installed version; setup.py does not require torch, so that
            pip never replaces a user's torch.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:
        raise ImportError(
            f'resnest_mm needs torch >= 2.4 (torch.serialization.'
            f'add_safe_globals); torch {torch.__version__} is installed. '
            'Upgrade torch with a matching mmcv, or run bash tools/install.sh '
            'in a new environment')
    add(MMENGINE_CHECKPOINT_GLOBALS)
