"""The toy classification generator: deterministic, balanced, one whole
shape per image, and read by MMPretrain's CustomDataset as it is."""

import cv2
import numpy as np
import pytest
from mmpretrain.datasets import CustomDataset

from conftest import load_tool
from toy_runs import tree_digest
from resnest_mm.toy_data import TOY_CLS_CLASSES, make_toy_classification

SPLITS = {'train': 4, 'val': 2}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    make_toy_classification(tmp_path / 'a', SPLITS, seed=3)
    make_toy_classification(tmp_path / 'b', SPLITS, seed=3)
    make_toy_classification(tmp_path / 'c', SPLITS, seed=4)
    assert tree_digest(tmp_path / 'a') == tree_digest(tmp_path / 'b')
    assert tree_digest(tmp_path / 'a') != tree_digest(tmp_path / 'c')


def test_one_folder_per_class_balanced(tmp_path):
    written = make_toy_classification(tmp_path, SPLITS, image_size=48)
    assert written == {'train': 12, 'val': 6}
    for split, per_class in SPLITS.items():
        folders = sorted(p.name for p in (tmp_path / split).iterdir())
        assert folders == list(TOY_CLS_CLASSES)
        for kind in TOY_CLS_CLASSES:
            files = sorted((tmp_path / split / kind).glob('*.jpg'))
            assert [f.name for f in files] == [
                f'{kind}_{i:06d}.jpg' for i in range(1, per_class + 1)]
            assert cv2.imread(str(files[0])).shape == (48, 48, 3)


def _shape_pixels(img: np.ndarray) -> np.ndarray:
    """The drawn shape: the largest blob of pixels far from the image's
    background gradient (read off its left and right edges)."""
    ramp = np.linspace(0.0, 1.0, img.shape[1])[None, :, None]
    left, right = np.median(img[:, :2], (0, 1)), np.median(img[:, -2:], (0, 1))
    background = left + (right - left) * ramp
    far = np.abs(img.astype(float) - background).max(axis=2) > 45
    far = cv2.morphologyEx(far.astype(np.uint8), cv2.MORPH_OPEN,
                           np.ones((3, 3), np.uint8))
    count, blobs, stats, _ = cv2.connectedComponentsWithStats(far)
    assert count > 1, 'no shape found'
    return blobs == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def test_each_image_holds_one_whole_shape_of_its_class(tmp_path):
    make_toy_classification(tmp_path, {'train': 40}, image_size=32)
    fills = {}
    for kind in TOY_CLS_CLASSES:
        for path in sorted((tmp_path / 'train' / kind).glob('*.jpg')):
            mask = _shape_pixels(cv2.imread(str(path)))
            ys, xs = np.nonzero(mask)
            # inside the image (the border rows and columns stay clear)
            assert ys.min() > 0 and xs.min() > 0, path
            assert ys.max() < 31 and xs.max() < 31, path
            box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
            fills.setdefault(kind, []).append(mask.sum() / box)
    # a circle fills pi/4 of its box, a triangle half of it (a bit more
    # here, its corners rounded by the JPEG and the blob's opening)
    print({kind: round(float(np.median(f)), 3) for kind, f in fills.items()})
    assert np.median(fills['circle']) == pytest.approx(np.pi / 4, abs=0.08)
    assert np.median(fills['triangle']) < np.median(fills['circle']) - 0.08


def test_mmpretrain_custom_dataset_reads_it(tmp_path):
    make_toy_classification(tmp_path, SPLITS)
    dataset = CustomDataset(data_root=str(tmp_path), data_prefix='val',
                            pipeline=[])
    assert dataset.CLASSES == TOY_CLS_CLASSES
    assert len(dataset) == 6
    labels = [dataset.get_data_info(i)['gt_label'] for i in range(6)]
    assert sorted(labels) == [0, 0, 1, 1, 2, 2]
    for i in range(6):
        info = dataset.get_data_info(i)
        assert f'/val/{TOY_CLS_CLASSES[info["gt_label"]]}/' in info['img_path']


def test_tool_writes_where_the_config_looks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = load_tool('misc/make_toy_data.py').main(['cls'])
    assert out == 'data/toy_cls'
    for split, per_class in (('train', 1000), ('val', 50)):
        for kind in TOY_CLS_CLASSES:
            assert len(list((tmp_path / out / split / kind).glob('*.jpg'))) \
                == per_class


def test_bad_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match='image_size=16'):
        make_toy_classification(tmp_path, SPLITS, image_size=16)
    with pytest.raises(ValueError, match=r"splits\['val'\]=0"):
        make_toy_classification(tmp_path, {'train': 2, 'val': 0})
