"""The command-line flags and runner set-up ``tools/train.py`` and
``tools/test.py`` share (``--cfg-options``, ``--launcher``, ``--local-rank``),
named as in mmdet's and mmseg's tools."""
import argparse
import os
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from resnest_mm.engine.run_config import setup_cpu_distributed


def parse_run_args(parser: argparse.ArgumentParser,
                   argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Add the shared flags to ``parser`` and parse ``argv``.

    ``--local-rank`` (what ``torch.distributed.launch`` passes) is exported
    as ``LOCAL_RANK`` unless torchrun has set it already.
    """
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_runner(cfg: Config) -> Runner:
    """The config's runner (``runner_type`` or mmengine's ``Runner``), after
    the CPU distributed set-up of
    :func:`~resnest_mm.engine.run_config.setup_cpu_distributed`."""
    setup_cpu_distributed(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
