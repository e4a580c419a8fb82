"""mmdet's own analysis tools, unchanged, on the toy configs (mmseg 1.2.2's
fail for any model: see docs/en/visualization.md).

The tools ship inside the installed packages
(``<pkg>/.mim/tools/analysis_tools/``); they load a config with
``Config.fromfile``, which runs its ``custom_imports`` (``resnest_mm``), so
``type='ResNeSt'`` resolves without a copy of any tool. Each test runs one as
a user would, in a subprocess, in a folder holding small generated toy data
at the configs' relative ``data/...`` paths.
"""
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

import mmdet
import numpy as np
import pytest
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope

from resnest_mm.toy_data import make_toy_coco
from toy_runs import TOY_FASTER, read_image

MMDET_TOOLS = Path(mmdet.__file__).parent / '.mim/tools/analysis_tools'
COCO_SPLITS = {'train2017': 8, 'val2017': 4}
IMAGE_SIZE = 128  # make_toy_coco's default: the toy images' side


def run_toolbox(tool: Path, args: Sequence,
                cwd: Path) -> subprocess.CompletedProcess:
    """Run an installed toolbox tool (``<pkg>/.mim/tools/...``) in ``cwd``."""
    proc = subprocess.run([sys.executable, str(tool), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f'{tool.name} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


def printed_size(text: str, key: str) -> float:
    """``Params: 3.33M`` -> 3.33e6 (mmengine's ``_format_size``)."""
    match = re.search(rf'^{key}: ([0-9.]+)([KMGT]?)$', text, re.M)
    assert match, f'no {key!r} line in:\n{text[-3000:]}'
    scale = {'': 1, 'K': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12}[match[2]]
    return float(match[1]) * scale


def num_params(config: Path) -> int:
    """Parameters of the detector ``config`` builds, counted here."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(Config.fromfile(config).model)
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory) -> Path:
    """A folder with toy COCO data where the toy detection configs look."""
    root = tmp_path_factory.mktemp('toolbox_det')
    make_toy_coco(root / 'data/toy_coco', COCO_SPLITS, image_size=IMAGE_SIZE)
    return root


def test_mmdet_get_flops_counts_every_parameter(coco_root):
    proc = run_toolbox(MMDET_TOOLS / 'get_flops.py',
                       [TOY_FASTER, '--num-images', 1], cwd=coco_root)
    expected = num_params(TOY_FASTER)
    # printed with 3 decimals in millions: +- 500 parameters
    assert abs(printed_size(proc.stdout, 'Params') - expected) <= 500, \
        (proc.stdout, expected)
    assert f'Input shape: ({IMAGE_SIZE}, {IMAGE_SIZE})' in proc.stdout
    # a 128 px image through a ResNeSt-14 + FPN + two heads: 0.1-10 GFLOPs
    assert 1e8 < printed_size(proc.stdout, 'Flops') < 1e10, proc.stdout


def _boxes_by_image(ann_file: Path) -> dict:
    data = json.loads(ann_file.read_text())
    boxes = {img['id']: [] for img in data['images']}
    for ann in data['annotations']:
        boxes[ann['image_id']].append(ann['bbox'])
    return {img['file_name']: boxes[img['id']] for img in data['images']}


def _outline(img: np.ndarray, box: List[float]) -> np.ndarray:
    """The pixels on the edges of a COCO ``[x, y, w, h]`` box."""
    x1, y1, w, h = (int(round(v)) for v in box)
    x2, y2 = min(x1 + w, img.shape[1] - 1), min(y1 + h, img.shape[0] - 1)
    return np.concatenate([img[y1, x1:x2], img[y2, x1:x2],
                           img[y1:y2, x1], img[y1:y2, x2]])


def test_mmdet_browse_dataset_draws_the_boxes(coco_root, tmp_path):
    # the first 3 training images, not flipped (pipeline step 3: RandomFlip)
    run_toolbox(MMDET_TOOLS / 'browse_dataset.py', [
        TOY_FASTER, '--not-show', '--output-dir', tmp_path, '--cfg-options',
        'train_dataloader.dataset.indices=3',
        'train_dataloader.dataset.pipeline.3.prob=0.0'], cwd=coco_root)
    images = coco_root / 'data/toy_coco/train2017'
    boxes = _boxes_by_image(
        coco_root / 'data/toy_coco/annotations/instances_train2017.json')
    names = sorted(boxes)[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    for name in names:
        drawn = read_image(tmp_path / name).astype(float)
        source = read_image(images / name).astype(float)
        assert drawn.shape == source.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
        diff = np.abs(drawn - source)
        # JPEG noise elsewhere, a coloured line on every annotated box
        assert np.median(diff) < 8, name
        for box in boxes[name]:
            assert _outline(diff, box).mean() > 30, (name, box)
