"""Helpers for tests that run tools/train.py and tools/test.py for real, and
for the tests of the toy datasets they run on."""
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
TOY_FASTER = REPO / 'configs/toy/faster_rcnn_resnest14_fpn_toy.py'
#: ``run_tool``'s timeout for the toy configs' full trainings: a guard against
#: hangs, not a speed check (the toy Faster R-CNN took 4.6 min on an idle
#: 2-core machine, 54 min to 2 h on a heavily shared one).
TRAIN_TIMEOUT_S = 3 * 3600

#: ``python -c`` program that runs the Python tool named by its first argument
#: as ``__main__``, with ``ResNeSt.forward`` first printing the shape of each
#: input it gets: a test counts the forward passes the unchanged tool makes.
_TRACE_BACKBONE = """
import runpy, sys
from resnest_mm.models.resnest import ResNeSt
forward = ResNeSt.forward
def traced(self, x):
    print('ResNeSt input:', *x.shape, flush=True)
    return forward(self, x)
ResNeSt.forward = traced
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def run_tool(tool: str, args: Sequence[str], cwd: Path,
             timeout: float = 1200, check: bool = True,
             env: Dict[str, str] = None,
             trace_backbone: bool = False) -> subprocess.CompletedProcess:
    """Run ``tools/<tool>`` (a .py or .sh) in ``cwd``; output is captured.

    ``trace_backbone`` (Python tools only): also log every backbone input's
    shape, read back with :func:`backbone_inputs`.
    """
    path = REPO / 'tools' / tool
    if tool.endswith('.sh'):
        if trace_backbone:
            raise ValueError(f'trace_backbone=True with {tool!r}: only '
                             'Python tools can be traced')
        cmd = ['bash', str(path)]
    elif trace_backbone:
        cmd = [sys.executable, '-c', _TRACE_BACKBONE, str(path)]
    else:
        cmd = [sys.executable, str(path)]
    proc = subprocess.run(cmd + [str(a) for a in args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))
    if check and proc.returncode != 0:
        raise AssertionError(f'{tool} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


def logged_metric(proc: subprocess.CompletedProcess, key: str) -> float:
    """The last value of ``key`` (e.g. ``coco/bbox_mAP``) a tool logged."""
    values = re.findall(rf'{re.escape(key)}: (-?[0-9.]+)',
                        proc.stdout + proc.stderr)
    assert values, f'{key} not logged:\n{proc.stdout[-3000:]}'
    return float(values[-1])


def backbone_inputs(
        proc: subprocess.CompletedProcess) -> List[Tuple[int, ...]]:
    """``(B, C, H, W)`` of every backbone forward in a ``trace_backbone`` run,
    in call order."""
    return [tuple(int(n) for n in shape.split()) for shape in
            re.findall(r'^ResNeSt input: ([0-9 ]+)$', proc.stdout, re.M)]


def toy_data_options(root: Path) -> List[str]:
    """``--cfg-options`` that point the toy detection config at ``root``."""
    ann = root / 'annotations/instances_val2017.json'
    return [f'{loader}.dataset.data_root={root}/' for loader in (
        'train_dataloader', 'val_dataloader', 'test_dataloader')] + [
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']


def read_image(path: Path) -> 'np.ndarray':
    """A picture a tool wrote, as BGR ``(H, W, 3)``; it must decode."""
    import cv2
    img = cv2.imread(str(path))
    assert img is not None, f'{path} does not decode'
    return img


def tree_digest(root: Path) -> str:
    """SHA-256 over every file under ``root``: its relative path and bytes,
    in sorted order; equal digests mean byte-identical datasets."""
    sha = hashlib.sha256()
    for path in sorted(root.rglob('*')):
        if path.is_file():
            sha.update(path.relative_to(root).as_posix().encode())
            sha.update(path.read_bytes())
    return sha.hexdigest()
