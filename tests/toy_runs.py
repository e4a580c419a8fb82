"""Helpers for tests that run tools/train.py and tools/test.py for real."""
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence

REPO = Path(__file__).resolve().parents[1]
TOY_FASTER = REPO / 'configs/toy/faster_rcnn_resnest14_fpn_toy.py'


def run_tool(tool: str, args: Sequence[str], cwd: Path,
             timeout: float = 1200, check: bool = True,
             env: Dict[str, str] = None) -> subprocess.CompletedProcess:
    """Run ``tools/<tool>`` (a .py or .sh) in ``cwd``; output is captured."""
    path = REPO / 'tools' / tool
    cmd = ['bash', str(path)] if tool.endswith('.sh') else [
        sys.executable, str(path)]
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


def toy_data_options(root: Path) -> List[str]:
    """``--cfg-options`` that point the toy detection config at ``root``."""
    ann = root / 'annotations/instances_val2017.json'
    return [f'{loader}.dataset.data_root={root}/' for loader in (
        'train_dataloader', 'val_dataloader', 'test_dataloader')] + [
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']
