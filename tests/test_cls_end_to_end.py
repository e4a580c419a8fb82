"""The toy classifier end to end with the repo's tools: tools/train.py learns
it (a shorter run: 400 images per class, the config's 8 epochs),
tools/test.py scores the checkpoint as training did, dumps the predictions
and draws them, the backbone runs in int8 and bf16 at about the same accuracy,
and export_onnx exports the classifier's backbone from its checkpoint."""
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import resnest_mm  # noqa: F401  (registers ResNeSt)
from conftest import load_tool
from resnest_mm.toy_data import make_toy_classification
from toy_runs import REPO, logged_metric, run_tool

TOY_CLS = REPO / 'configs/toy/resnest14_cls_toy.py'
EPOCHS = 8
#: Images per class: 400 train (2/5 of the documented run), the full 50 val.
SPLITS = {'train': 400, 'val': 50}
# Measured on this split (a 2-core AMD EPYC, one thread): top-1 76.0 after
# the 8 epochs (96.7 for the documented run on 1000 per class), untrained
# 33.3 (one class for every image). Chance is 33.3; another CPU's rounding
# moves training by a few points.
MIN_TRAINED_TOP1 = 60.0
MAX_UNTRAINED_TOP1 = 45.0
#: int8 / bf16 backbone: at most this many points from fp32 (150 images).
MAX_PRECISION_DROP = 5.0
KEY = 'accuracy/top1'


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Train the toy classifier once with tools/train.py."""
    root = tmp_path_factory.mktemp('toy_cls')
    make_toy_classification(root / 'data/toy_cls', SPLITS)
    proc = run_tool('train.py', [TOY_CLS, '--work-dir', root / 'wd'],
                    cwd=root)
    return root, root / 'wd' / f'epoch_{EPOCHS}.pth', proc


@pytest.fixture(scope='module')
def tested(trained):
    root, checkpoint, _ = trained
    out = root / 'test/preds.pkl'
    proc = run_tool('test.py', [TOY_CLS, checkpoint, '--work-dir',
                                root / 'test', '--out', out], cwd=root)
    return logged_metric(proc, KEY), out


def _untrained_checkpoint(path):
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(Config.fromfile(TOY_CLS).model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


def test_trained_classifier_beats_chance_and_untrained(trained, tested,
                                                        tmp_path):
    root, _, train_proc = trained
    top1, _ = tested
    # tools/test.py scores the checkpoint as the last validation did
    assert top1 == pytest.approx(logged_metric(train_proc, KEY), abs=1e-3)
    untrained = logged_metric(run_tool('test.py', [
        TOY_CLS, _untrained_checkpoint(tmp_path / 'untrained.pth'),
        '--work-dir', tmp_path / 'u'], cwd=root), KEY)
    print(f'top-1: trained {top1:.1f}, untrained {untrained:.1f}')
    assert untrained < MAX_UNTRAINED_TOP1
    assert top1 > MIN_TRAINED_TOP1


def test_out_dumps_one_prediction_per_image(tested):
    top1, out = tested
    with open(out, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 3 * SPLITS['val']
    correct = [int(p['pred_label'][0]) == int(p['gt_label'][0])
               for p in predictions]
    assert 100 * sum(correct) / len(correct) == pytest.approx(top1, abs=0.01)


def test_show_dir_draws_every_test_image(trained, tmp_path):
    root, checkpoint, _ = trained
    run_tool('test.py', [TOY_CLS, checkpoint, '--work-dir', tmp_path / 'w',
                         '--show-dir', tmp_path / 'vis'], cwd=root)
    drawn = sorted(p.name for p in (tmp_path / 'vis').glob('*.png'))
    assert len(drawn) == 3 * SPLITS['val']
    assert 'triangle_000050.jpg_0.png' in drawn


@pytest.mark.parametrize('precision', ['int8', 'bf16'])
def test_low_precision_backbone_keeps_the_accuracy(trained, tested,
                                                   precision, tmp_path):
    root, checkpoint, _ = trained
    top1, _ = tested
    low = logged_metric(run_tool('test.py', [
        TOY_CLS, checkpoint, '--work-dir', tmp_path, '--backbone-precision',
        precision], cwd=root), KEY)
    print(f'top-1 {precision} {low:.1f}, fp32 {top1:.1f}')
    assert abs(low - top1) <= MAX_PRECISION_DROP
    if precision == 'int8':
        assert (tmp_path / 'backbone_int8.onnx').is_file()


def test_export_onnx_takes_the_classifier_checkpoint(trained, tmp_path):
    """tools/deployment/export_onnx.py with the classifier's backbone
    arguments: the checkpoint's backbone.* tensors load (strict), its head
    is left out, and onnxruntime computes what PyTorch does."""
    _, checkpoint, _ = trained
    diffs = load_tool('deployment/export_onnx.py').main([
        '--arch', 'resnest14d', '--checkpoint', str(checkpoint),
        '--cfg-options', 'stem_channels=32', 'base_channels=32',
        '--input-size', '32', '--out', str(tmp_path / 'cls_backbone.onnx')])
    assert set(diffs) == {'c2', 'c3', 'c4', 'c5'}
    assert max(diffs.values()) < 1e-4
