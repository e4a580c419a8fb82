"""check_classifier_channels: a classifier whose head (or neck) does not take
the channels of the ResNeSt backbone's last level is refused with both
numbers; everything that fits, or that it cannot judge, passes."""
import pytest
from mmengine.config import Config

import resnest_mm  # noqa: F401  (registers ResNeSt)
from resnest_mm.engine.model_checks import (backbone_last_channels,
                                            check_classifier_channels)
from toy_runs import REPO

TOY_CLS = REPO / 'configs/toy/resnest14_cls_toy.py'


def classifier(**model) -> Config:
    """A toy classifier config (1024 channels at the last level) with
    ``model`` merged in."""
    cfg = Config.fromfile(TOY_CLS)
    cfg.merge_from_dict({f'model.{k}': v for k, v in model.items()})
    return cfg


def test_toy_and_imagenet_configs_fit():
    check_classifier_channels(classifier())
    for name in ('resnest50_32xb64_in1k', 'resnest101_32xb64_in1k',
                 'resnest50_fast_1s4x24d_32xb64_in1k'):
        cfg = Config.fromfile(REPO / 'configs' / f'{name}.py')
        assert backbone_last_channels(cfg) == cfg.model.head.in_channels \
            == 2048
        check_classifier_channels(cfg)


def test_head_wider_than_the_backbone_is_refused_with_both_numbers():
    cfg = classifier(**{'head.in_channels': 2048})
    with pytest.raises(ValueError) as err:
        check_classifier_channels(cfg)
    assert str(err.value).startswith(
        'model.head.in_channels=2048, but the ResNeSt backbone\'s last level '
        '(its default out_indices) has 1024 channels: set '
        'model.head.in_channels=1024')


def test_changed_out_indices_are_named():
    # the classifier's head reads the last level returned: layer3's 512 here
    cfg = classifier(**{'backbone.out_indices': (1, 2)})
    with pytest.raises(ValueError, match=r'model\.head\.in_channels=1024, '
                       r'.*\(out_indices=\(1, 2\)\) has 512 channels'):
        check_classifier_channels(cfg)
    cfg.model.head.in_channels = 512
    check_classifier_channels(cfg)


def test_a_neck_with_in_channels_is_checked_instead_of_the_head():
    cfg = classifier(**{'neck': dict(type='LinearNeck', in_channels=2048,
                                     out_channels=256),
                        'head.in_channels': 256})
    with pytest.raises(ValueError, match=r'^model\.neck\.in_channels=2048, '
                       r'.* has 1024 channels'):
        check_classifier_channels(cfg)


def test_what_it_cannot_judge_passes():
    # a neck that may change the channels without naming them
    check_classifier_channels(classifier(**{
        'neck': dict(type='SomeNeck', _delete_=True),
        'head.in_channels': 7}))
    # a backbone other than ResNeSt (nothing is built)
    check_classifier_channels(classifier(**{
        'backbone': dict(type='ResNet', depth=18, _delete_=True),
        'head.in_channels': 7}))
    # detection and segmentation configs
    check_classifier_channels(Config.fromfile(
        REPO / 'configs/toy/faster_rcnn_resnest14_fpn_toy.py'))
