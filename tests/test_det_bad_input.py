"""Bad detection input fails fast with an error that names the culprit."""
import json

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import load_tool
from resnest_mm.toy_data import make_toy_coco
from toy_runs import TOY_FASTER

test_tool = load_tool('test.py')
train_tool = load_tool('train.py')
SPLITS = {'train2017': 8, 'val2017': 4}


@pytest.fixture
def toy_dir(tmp_path, monkeypatch):
    """A tiny toy dataset where the toy config looks for it (data/toy_coco)."""
    monkeypatch.chdir(tmp_path)
    make_toy_coco(tmp_path / 'data/toy_coco', SPLITS)
    return tmp_path


def _train(tmp_path, *options):
    args = [str(TOY_FASTER), '--work-dir', str(tmp_path / 'wd')]
    if options:
        args += ['--cfg-options', *options]
    return train_tool.main(args)


def test_missing_annotation_file(toy_dir):
    (toy_dir / 'data/toy_coco/annotations/instances_train2017.json').unlink()
    with pytest.raises(FileNotFoundError) as err:
        _train(toy_dir)
    message = str(err.value)
    assert 'train_dataloader.dataset.ann_file' in message
    assert 'data/toy_coco/annotations/instances_train2017.json' in message
    assert 'tools/misc/make_toy_data.py' in message


def test_missing_image_folder(toy_dir):
    (toy_dir / 'data/toy_coco/val2017').rename(toy_dir / 'elsewhere')
    with pytest.raises(FileNotFoundError,
                       match=r'val_dataloader\.dataset\.data_prefix\.img'):
        _train(toy_dir)


def test_empty_annotation_list_is_refused_not_a_hang(toy_dir):
    ann_file = toy_dir / 'data/toy_coco/annotations/instances_train2017.json'
    data = json.loads(ann_file.read_text())
    ann_file.write_text(json.dumps(dict(data, annotations=[])))
    with pytest.raises(ValueError, match='train_dataloader: the dataset has '
                       'no samples') as err:
        _train(toy_dir)
    assert 'instances_train2017.json' in str(err.value)


def test_unknown_depth_in_config(toy_dir):
    with pytest.raises(ValueError, match=r'depth=34 is not a ResNeSt depth; '
                       r'choose one of \[14, 26, 50, 101, 152, 200, 269\]'):
        _train(toy_dir, 'model.backbone.depth=34')


def test_corrupt_image_is_named(toy_dir):
    """Testing untrained weights still reads every image."""
    bad = toy_dir / 'data/toy_coco/val2017/000000000002.jpg'
    bad.write_bytes(b'\xff\xd8 these bytes are not a JPEG')
    checkpoint = toy_dir / 'init.pth'
    init_default_scope('mmdet')
    model = MODELS.build(Config.fromfile(TOY_FASTER).model)
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    with pytest.raises(AssertionError,
                       match=f'failed to load image: .*{bad.name}'):
        test_tool.main([str(TOY_FASTER), str(checkpoint),
                        '--work-dir', str(toy_dir / 'wd')])


@pytest.mark.parametrize('args, error, match', [
    (['no/such/config.py'], FileNotFoundError, "config file 'no/such"),
    ([str(TOY_FASTER), '--resume', 'missing.pth'], FileNotFoundError,
     "--resume 'missing.pth': no such checkpoint"),
])
def test_bad_command_line(toy_dir, args, error, match):
    with pytest.raises(error, match=match):
        train_tool.main(args)


def test_missing_checkpoint_for_test(toy_dir):
    with pytest.raises(FileNotFoundError, match="checkpoint 'nope.pth'"):
        test_tool.main([str(TOY_FASTER), 'nope.pth'])
