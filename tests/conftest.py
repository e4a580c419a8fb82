"""Shared helpers: seeded random weights that keep deep networks well scaled,
a conv stand-in for memory tests, and tools loaded as modules.

pytest.ini runs the suite on two pytest-xdist workers, one per core; each
worker and the tools its tests start as subprocesses (which inherit
``OMP_NUM_THREADS``) run one torch thread, or four threads would share the
two cores.
"""
import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest
import torch
from mmengine.registry import DefaultScope
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


if 'PYTEST_XDIST_WORKER' in os.environ:
    torch.set_num_threads(1)
    os.environ['OMP_NUM_THREADS'] = '1'

REPO = Path(__file__).resolve().parents[1]


def load_tool(path: str) -> ModuleType:
    """``tools/<path>`` as a module, to call its ``main(argv)`` in-process
    (tools are scripts, not a package: none imports another)."""
    spec = importlib.util.spec_from_file_location(
        Path(path).stem, REPO / 'tools' / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _restore_default_scope():
    before = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict = before


#: Leave mmengine's default scope as each test found it, and as each module
#: found it: ``init_default_scope`` and every in-process Runner set it for the
#: whole process, also from module-scoped fixtures (which run before a test's
#: own fixtures), and which files share a worker's process changes from run to
#: run under xdist; a leaked ``mmseg`` scope would make mmdet's
#: ``MODELS.build`` look in mmseg's registry.
_default_scope = pytest.fixture(autouse=True)(_restore_default_scope)
_module_default_scope = pytest.fixture(autouse=True, scope='module')(
    _restore_default_scope)


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every conv, norm and running statistic non-trivial random values.

    Convs get a fan-in-scaled normal init and norms a random affine and random
    running statistics, so outputs stay O(1) through 270 layers and a wrong
    mapping of any single tensor changes the result.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen)
                               * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, (_BatchNorm, nn.GroupNorm)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.5
                               + 0.25)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                if isinstance(m, _BatchNorm):
                    m.running_mean.copy_(
                        torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                    m.running_var.copy_(
                        torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return model


def max_abs_diff(a, b) -> float:
    """Largest absolute difference over matching tensors of two sequences."""
    return max((x - y).abs().max().item() for x, y in zip(a, b))


class ConvOutput(nn.Module):
    """Stands in for ``conv`` in memory tests: returns a fresh copy of
    ``conv(x)``, as the conv allocates its output, and nothing else.

    What a conv allocates besides its output is the CPU's kernel choice, not
    the caller's: for the split-attention conv of the tests (32 -> 2 x 32
    channels, 32x32, NHWC) a oneDNN weight reorder of 0.14-0.19 output maps
    with SSE4.1 to AVX2 kernels, 4-5 maps (im2col columns) without oneDNN.
    """

    def __init__(self, conv: nn.Module, x: Tensor) -> None:
        super().__init__()
        with torch.no_grad():
            self.out = conv(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.out.clone()


def sgd_step(model: nn.Module, x: torch.Tensor) -> tuple:
    """One SGD step (lr 0.1) on the trainable parameters, with the mean
    square of every output as the loss; returns the outputs."""
    optim = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.1)
    out = model(x)
    sum(o.square().mean() for o in out).backward()
    optim.step()
    return out
