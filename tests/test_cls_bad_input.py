"""Bad classification input fails fast with an error that names the culprit:
missing data folders, a head that does not take the backbone's channels, a
config of no toolbox the tools serve."""
import pytest
from mmengine.config import Config

from conftest import load_tool
from resnest_mm.toy_data import make_toy_classification
from toy_runs import REPO

TOY_CLS = REPO / 'configs/toy/resnest14_cls_toy.py'
test_tool = load_tool('test.py')
train_tool = load_tool('train.py')


@pytest.fixture
def toy_dir(tmp_path, monkeypatch):
    """A tiny toy dataset where the toy config looks for it (data/toy_cls)."""
    monkeypatch.chdir(tmp_path)
    make_toy_classification(tmp_path / 'data/toy_cls',
                            {'train': 2, 'val': 1})
    return tmp_path


def _train(tmp_path, *options):
    args = [str(TOY_CLS), '--work-dir', str(tmp_path / 'wd')]
    if options:
        args += ['--cfg-options', *options]
    return train_tool.main(args)


def test_missing_class_folders_are_named(toy_dir):
    (toy_dir / 'data/toy_cls/val').rename(toy_dir / 'elsewhere')
    with pytest.raises(FileNotFoundError) as err:
        _train(toy_dir)
    message = str(err.value)
    assert ("val_dataloader.dataset.data_prefix: folder 'data/toy_cls/val' "
            'does not exist') in message
    assert 'make_toy_data.py {coco,ade20k,cls}' in message


def test_missing_data_root_is_named(toy_dir):
    with pytest.raises(FileNotFoundError, match=r"train_dataloader\.dataset"
                       r"\.data_root: folder 'nowhere/' does not exist"):
        _train(toy_dir, 'train_dataloader.dataset.data_root=nowhere/')


@pytest.mark.parametrize('options,numbers', [
    (['model.head.in_channels=2048'],
     r'model\.head\.in_channels=2048, .* has 1024 channels'),
    (['model.backbone.base_channels=16'],
     r'model\.head\.in_channels=1024, .* has 512 channels'),
])
def test_head_that_does_not_take_the_backbone_is_refused(toy_dir, options,
                                                         numbers):
    with pytest.raises(ValueError, match=numbers):
        _train(toy_dir, *options)
    assert not (toy_dir / 'wd').exists()  # refused before the Runner


def test_test_tool_checks_the_head_too(toy_dir):
    (toy_dir / 'ckpt.pth').write_bytes(b'')
    with pytest.raises(ValueError, match=r'model\.head\.in_channels=512, '
                       r'.* has 1024 channels: set model\.head\.in_channels='
                       r'1024'):
        test_tool.main([str(TOY_CLS), str(toy_dir / 'ckpt.pth'),
                        '--cfg-options', 'model.head.in_channels=512'])


def test_config_of_another_toolbox_is_refused(toy_dir):
    cfg = Config.fromfile(TOY_CLS)
    cfg.default_scope = 'mmocr'
    cfg.dump(toy_dir / 'ocr.py')
    with pytest.raises(ValueError, match=r"default_scope='mmocr' .* "
                       r"\('mmdet', 'mmseg', 'mmpretrain'\) \(inherit from an "
                       r'mmdet::, mmseg:: or mmpretrain:: base config\)'):
        train_tool.main([str(toy_dir / 'ocr.py')])


def test_classification_out_must_be_a_pickle(toy_dir):
    with pytest.raises(ValueError, match=r"--out 'preds/': classification "
                       r'results are dumped as a pickle; use a \.pkl path'):
        from resnest_mm.engine.run_config import add_dump_metric
        add_dump_metric(None, Config.fromfile(TOY_CLS), 'preds/')


def test_int8_calibration_on_the_val_folder_is_refused(toy_dir):
    """The calibration-source check reads CustomDataset's folder prefix:
    a train set pointed at the val folder is refused, not calibrated on."""
    import torch
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(Config.fromfile(TOY_CLS).model)
    torch.save(dict(state_dict=model.state_dict()), toy_dir / 'ckpt.pth')
    with pytest.raises(ValueError, match=r"int8 calibration reads "
                       r"train_dataloader, whose dataset .*data/toy_cls/val.* "
                       r"is also the val_dataloader's"):
        test_tool.main([str(TOY_CLS), str(toy_dir / 'ckpt.pth'),
                        '--work-dir', str(toy_dir / 'wd'),
                        '--backbone-precision', 'int8', '--cfg-options',
                        'train_dataloader.dataset.data_prefix=val'])
