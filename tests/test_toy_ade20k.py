"""The toy ADE20K-format dataset: layout, labels, determinism, and that the
unchanged ``ADE20KDataset`` reads it."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.registry import DefaultScope

import resnest_mm  # noqa: F401  (registers CheckSegMap)
from conftest import load_tool
from toy_runs import tree_digest
from resnest_mm.toy_data import (TOY_ADE20K_CLASSES, TOY_ADE20K_LABELS,
                                 make_toy_ade20k)
from resnest_mm.toy_data.ade20k import texture

SMALL = {'training': 6, 'validation': 3}


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('toy_ade20k')
    make_toy_ade20k(root, splits=SMALL)
    return root


def test_ade20k_layout(toy_root):
    for split, count in SMALL.items():
        images = sorted((toy_root / 'images' / split).iterdir())
        labels = sorted((toy_root / 'annotations' / split).iterdir())
        assert [p.name for p in images] == [f'{i:06d}.jpg'
                                            for i in range(1, count + 1)]
        assert [p.stem for p in labels] == [p.stem for p in images]
        assert {p.suffix for p in labels} == {'.png'}


def test_labels_are_other_or_toy_ade20k_ids_and_match_image_size(toy_root):
    allowed = {0, *TOY_ADE20K_LABELS.values()}
    seen = set()
    for png in sorted(toy_root.glob('annotations/*/*.png')):
        labels = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        img = cv2.imread(str(png).replace('annotations', 'images')
                         .replace('.png', '.jpg'))
        assert labels.dtype == np.uint8 and labels.ndim == 2
        assert labels.shape == img.shape[:2] == (128, 128)
        values = set(np.unique(labels).tolist())
        assert values <= allowed
        assert 0 in values and len(values) >= 2  # "other" plus a region
        seen |= values
    assert seen == allowed


def test_label_values_are_the_ade20k_class_ids():
    from mmseg.datasets import ADE20KDataset
    ade_classes = ADE20KDataset.METAINFO['classes']
    for name, label in TOY_ADE20K_LABELS.items():
        assert ade_classes[label - 1] == name
    assert TOY_ADE20K_CLASSES == tuple(TOY_ADE20K_LABELS)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    splits = {'training': 2, 'validation': 1}
    for name, seed in (('a', 0), ('b', 0), ('c', 1)):
        make_toy_ade20k(tmp_path / name, splits=splits, seed=seed)
    assert tree_digest(tmp_path / 'a') == tree_digest(tmp_path / 'b')
    assert tree_digest(tmp_path / 'a') != tree_digest(tmp_path / 'c')


def _load(root: Path, split: str, metainfo=None):
    """Every sample of ``split`` through the real ADE20KDataset."""
    from mmseg.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = DATASETS.build(dict(
            type='ADE20KDataset', data_root=str(root), metainfo=metainfo,
            data_prefix=dict(img_path=f'images/{split}',
                             seg_map_path=f'annotations/{split}'),
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='LoadAnnotations')]))
    return dataset, [dataset[i] for i in range(len(dataset))]


def test_real_ade20k_dataset_with_toy_classes(toy_root):
    dataset, samples = _load(toy_root, 'training',
                             dict(classes=TOY_ADE20K_CLASSES))
    assert len(samples) == SMALL['training']
    assert dataset.metainfo['classes'] == TOY_ADE20K_CLASSES
    assert dataset.metainfo['reduce_zero_label'] is True
    for sample in samples:
        raw = cv2.imread(sample['seg_map_path'], cv2.IMREAD_UNCHANGED)
        expected = np.full_like(raw, 255)  # 0 = "other" -> ignored
        for index, name in enumerate(TOY_ADE20K_CLASSES):
            expected[raw == TOY_ADE20K_LABELS[name]] = index
        np.testing.assert_array_equal(sample['gt_seg_map'], expected)
        assert sample['img'].shape == (128, 128, 3)


def test_real_ade20k_dataset_with_all_150_classes(toy_root):
    dataset, samples = _load(toy_root, 'validation')
    assert len(dataset.metainfo['classes']) == 150
    loaded = set()
    for sample in samples:
        loaded |= set(np.unique(sample['gt_seg_map']).tolist())
    assert loaded <= {255, *(v - 1 for v in TOY_ADE20K_LABELS.values())}


@pytest.mark.parametrize('kind,axis', [('grass', 0), ('water', 1)])
def test_stripes_run_along_their_axis(kind, axis):
    pattern = texture(kind, 32, 32, period=8, phase=(0, 0))
    # Constant along the stripes, alternating across them.
    assert (np.diff(pattern, axis=axis) == 0).all()
    assert np.diff(pattern, axis=1 - axis).any()
    assert pattern.mean() == pytest.approx(0.5)


def test_textures_differ_between_classes():
    patterns = [texture(k, 32, 32, 8, (0, 0)) for k in TOY_ADE20K_CLASSES]
    for i in range(len(patterns)):
        for j in range(i + 1, len(patterns)):
            assert (patterns[i] != patterns[j]).mean() > 0.2


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match='kind=.sky. has no texture'):
        texture('sky', 8, 8, 6, (0, 0))
    with pytest.raises(ValueError, match='image_size=32'):
        make_toy_ade20k(tmp_path, image_size=32)
    with pytest.raises(ValueError, match='max_regions=1'):
        make_toy_ade20k(tmp_path, max_regions=1)


def test_make_toy_data_tool_writes_ade20k(tmp_path):
    out = load_tool('misc/make_toy_data.py').main(
        ['ade20k', '--out-dir', str(tmp_path / 'd')])
    assert out == str(tmp_path / 'd')
    assert len(list((tmp_path / 'd/images/training').iterdir())) == 96
    assert len(list((tmp_path / 'd/annotations/validation').iterdir())) == 24
