"""The toy COCO generator: deterministic, valid, and read by mmdet as is."""
import json

import numpy as np
import pytest
from mmdet.datasets import CocoDataset

from conftest import load_tool
from toy_runs import tree_digest
from resnest_mm.toy_data import TOY_COCO_CLASSES, make_toy_coco

SPLITS = {'train2017': 12, 'val2017': 4}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    make_toy_coco(tmp_path / 'a', SPLITS, seed=3)
    make_toy_coco(tmp_path / 'b', SPLITS, seed=3)
    make_toy_coco(tmp_path / 'c', SPLITS, seed=4)
    assert tree_digest(tmp_path / 'a') == tree_digest(tmp_path / 'b')
    assert tree_digest(tmp_path / 'a') != tree_digest(tmp_path / 'c')


def test_annotations_describe_the_drawn_objects(tmp_path):
    make_toy_coco(tmp_path, SPLITS, image_size=128)
    data = json.loads(
        (tmp_path / 'annotations/instances_train2017.json').read_text())
    assert [c['name'] for c in data['categories']] == list(TOY_COCO_CLASSES)
    assert len(data['images']) == 12
    assert len({a['id'] for a in data['annotations']}) == len(
        data['annotations']) >= 12
    for ann in data['annotations']:
        x, y, w, h = ann['bbox']
        assert 0 <= x and 0 <= y and x + w <= 128 and y + h <= 128
        assert 0 < ann['area'] <= w * h
        assert ann['segmentation'] and ann['category_id'] in (1, 2, 3)
    # objects differ in size, class and position across the split
    sides = [max(a['bbox'][2:]) for a in data['annotations']]
    assert max(sides) - min(sides) > 20
    assert len({a['category_id'] for a in data['annotations']}) == 3


def test_mmdet_coco_dataset_reads_it(tmp_path):
    make_toy_coco(tmp_path, SPLITS)
    dataset = CocoDataset(
        data_root=str(tmp_path), ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        metainfo=dict(classes=TOY_COCO_CLASSES), test_mode=True, pipeline=[])
    assert len(dataset) == 4
    item = dataset[0]
    assert item['img_path'].endswith('000000000001.jpg')
    labels = np.array([i['bbox_label'] for i in item['instances']])
    assert len(labels) >= 1 and labels.max() < 3


def test_tool_writes_where_the_configs_look(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = load_tool('misc/make_toy_data.py').main(['coco'])
    assert out == 'data/toy_coco'
    assert (tmp_path / out / 'annotations/instances_val2017.json').is_file()
    assert len(list((tmp_path / out / 'train2017').glob('*.jpg'))) == 160


def test_too_small_images_are_refused(tmp_path):
    with pytest.raises(ValueError, match='image_size=32'):
        make_toy_coco(tmp_path, SPLITS, image_size=32)
