"""Broken segmentation data fails early, naming the file and what is wrong:
a label PNG of the wrong size, a label value that is no class, a missing
split folder."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

import resnest_mm  # noqa: F401  (registers CheckSegMap)
from conftest import load_tool
from resnest_mm.datasets import CheckSegMap
from resnest_mm.toy_data import (TOY_ADE20K_CLASSES, TOY_ADE20K_LABELS,
                                 make_toy_ade20k)

test_tool = load_tool('test.py')
train_tool = load_tool('train.py')
TOY_CONFIG = 'configs/toy/deeplabv3_resnest14_d8_toy.py'


@pytest.fixture
def toy_root(tmp_path) -> Path:
    make_toy_ade20k(tmp_path / 'toy',
                    splits={'training': 2, 'validation': 2})
    return tmp_path / 'toy'


def _toy_dataset(root: Path, loader: str = 'train_dataloader'):
    """The toy config's dataset (with its pipeline) on the data at root."""
    from mmseg.registry import DATASETS
    cfg = Config.fromfile(TOY_CONFIG)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return DATASETS.build(dict(cfg[loader].dataset, data_root=str(root)))


def _rewrite_label(root: Path, name: str, edit) -> str:
    path = root / 'annotations' / name
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(path), edit(labels))
    return str(path)


@pytest.mark.parametrize('loader', ['train_dataloader', 'test_dataloader'])
def test_label_png_of_another_size_is_named(toy_root, loader):
    split = 'training' if loader == 'train_dataloader' else 'validation'
    path = _rewrite_label(toy_root, f'{split}/000001.png',
                          lambda labels: labels[:120])
    dataset = _toy_dataset(toy_root, loader)
    with pytest.raises(ValueError) as err:
        dataset[0]
    message = str(err.value)
    assert f'{path} is 120x128 (HxW) but its image' in message
    assert f'images/{split}/000001.jpg is 128x128' in message


def test_label_value_that_is_no_class_is_named(toy_root):
    def add_bad_value(labels):
        labels[:4, :4] = 200  # ADE20K ids stop at 150
        return labels
    path = _rewrite_label(toy_root, 'training/000002.png', add_bad_value)
    dataset = _toy_dataset(toy_root)
    dataset[0]  # the untouched image loads
    with pytest.raises(ValueError) as err:
        dataset[1]
    assert str(err.value) == (
        f'{path}: label values [200] in the file (loaded as [199] by '
        'reduce_zero_label: 0 = other -> 255, v -> v - 1) are outside '
        '0..3 (num_classes=4) or 255 (ignore)')


def test_ade20k_classes_outside_the_toy_subset_are_ignored(toy_root):
    """Not an error: mmseg's class subset turns other ADE20K ids into 255
    (ignored) where they are, and the toy ones into 0..3. Sky, ADE20K's 3,
    is 2 after reduce_zero_label: kept, it would pass as the toy class 2."""
    def add_sky(labels):
        labels[:4, :4] = 3  # ADE20K 'sky', not a toy class
        return labels
    path = _rewrite_label(toy_root, 'validation/000001.png', add_sky)
    raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    expected = np.full_like(raw, 255)  # sky and 0 = "other"
    for index, name in enumerate(TOY_ADE20K_CLASSES):
        expected[raw == TOY_ADE20K_LABELS[name]] = index
    # the test pipeline loads the labels unresized and uncropped
    sample = _toy_dataset(toy_root, 'test_dataloader')[0]
    loaded = sample['data_samples'].gt_sem_seg.data[0].numpy()
    assert (loaded[:4, :4] == 255).all(), loaded[:4, :4]
    np.testing.assert_array_equal(loaded, expected)


@pytest.mark.parametrize('folder,key', [
    ('images/training', 'train_dataloader.dataset.data_prefix.img_path'),
    ('annotations/validation',
     'val_dataloader.dataset.data_prefix.seg_map_path'),
])
def test_missing_split_folder_is_named_by_train(toy_root, tmp_path, folder,
                                                key):
    (toy_root / folder).rename(toy_root / 'moved')
    with pytest.raises(FileNotFoundError) as err:
        train_tool.main([TOY_CONFIG, '--work-dir', str(tmp_path / 'w'),
                         '--cfg-options', *_data_root_options(toy_root)])
    assert f"{key}: folder '{toy_root / folder}' does not exist" in str(
        err.value)


def test_missing_split_folder_is_named_by_test(toy_root, tmp_path):
    (toy_root / 'images/validation').rename(toy_root / 'moved')
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'')
    with pytest.raises(FileNotFoundError) as err:
        test_tool.main([TOY_CONFIG, str(checkpoint), '--work-dir',
                        str(tmp_path / 'w'), '--cfg-options',
                        *_data_root_options(toy_root)])
    assert ('test_dataloader.dataset.data_prefix.img_path: folder '
            f"'{toy_root / 'images/validation'}' does not exist") in str(
                err.value)


def _data_root_options(root: Path):
    return [f'{loader}.dataset.data_root={root}'
            for loader in ('train_dataloader', 'val_dataloader',
                           'test_dataloader')]


def _results(labels, reduce_zero_label=False, shape=(4, 4)):
    return dict(gt_seg_map=np.asarray(labels, np.uint8), ori_shape=shape,
                seg_map_path='a.png', img_path='a.jpg',
                reduce_zero_label=reduce_zero_label)


def test_check_passes_classes_and_ignore_and_lists_bad_values():
    check = CheckSegMap(num_classes=3)
    good = _results(np.array([[0, 1, 2, 255]] * 4))
    assert check(good) is good
    labels = np.arange(16).reshape(4, 4)
    with pytest.raises(ValueError, match=r'a.png: label values \[3, 4, 5, 6, '
                       r'7\] and 8 more are outside 0..2 \(num_classes=3\)'):
        check(_results(labels))


def test_check_needs_loaded_labels_and_a_class_count():
    with pytest.raises(KeyError, match='after LoadAnnotations'):
        CheckSegMap(num_classes=3)(dict(ori_shape=(4, 4)))
    with pytest.raises(ValueError, match='num_classes=0 must be a positive'):
        CheckSegMap(num_classes=0)


def test_check_is_registered_in_mmseg():
    from mmseg.registry import TRANSFORMS
    with DefaultScope.overwrite_default_scope('mmseg'):
        check = TRANSFORMS.build(dict(type='CheckSegMap', num_classes=4))
    assert isinstance(check, CheckSegMap)
    assert repr(check) == 'CheckSegMap(num_classes=4, ignore_index=255)'
