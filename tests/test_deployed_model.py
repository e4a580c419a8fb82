"""tools/deployment/export_model.py --precision, resnest_mm.deployment.shipping
and DeployedModel on the toy configs with random weights: what is refused
before anything is written, the metadata a file carries, bf16 and int8 files
against the fp32 model, an image file run from Python.

The trained toy detector's int8 file (pairing with fp32, tools/test.py on the
file) is tested in tests/test_det_end_to_end.py, beside the trained model.
"""
import cv2
import numpy as np
import pytest
import torch

from conftest import load_tool, randomize_
from resnest_mm.deployment.deployed_model import DeployedModel
from resnest_mm.deployment.low_precision import (CALIBRATION_PHOTOS,
                                                 CHECK_PHOTOS, photo_batches)
from resnest_mm.deployment.model_export import (build_model, pair_detections,
                                                preprocess, pytorch_outputs)
from resnest_mm.deployment.shipping import (calibration_images,
                                            check_calibration_source,
                                            check_shippable,
                                            dense_node, read_metadata, ship)
from resnest_mm.deployment.model_export import load_config
from resnest_mm.toy_data import make_toy_coco
from toy_runs import REPO, TOY_FASTER

TOY_RETINANET = REPO / 'configs/toy/retinanet_resnest14_fpn_toy.py'
TOY_DEEPLAB = REPO / 'configs/toy/deeplabv3_resnest14_d8_toy.py'
main = load_tool('deployment/export_model.py').main


@pytest.fixture(scope='module')
def toy_coco(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_coco')
    make_toy_coco(root / 'data/toy_coco', {'train2017': 4, 'val2017': 2})
    return root / 'data/toy_coco'


def _data_options(root) -> list:
    return [f'{loader}.dataset.data_root={root}/' for loader in (
        'train_dataloader', 'val_dataloader', 'test_dataloader')]


@pytest.fixture(scope='module')
def detector():
    """The toy Faster R-CNN with random convs and norms and spread class
    scores (mmdet's init gives near-equal ones), 100 proposals per image."""
    model, scope = build_model(str(TOY_FASTER), cfg_options={
        'model.test_cfg.rpn.max_per_img': 100})  # (a tenth: faster bf16)
    randomize_(model)
    head = model.roi_head.bbox_head
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer, scale in ((head.fc_cls, 1.0), (head.fc_reg, 0.05)):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen)
                               * scale)
    return model.eval(), scope


@pytest.mark.parametrize('config, options, precision, match', [
    (TOY_RETINANET, [], 'fp32',
     r'detector is RetinaNet; export supports FasterRCNN'),
    (TOY_FASTER, ['model.test_cfg.rcnn.nms.class_agnostic=True'], 'int8',
     r"test_cfg.rcnn.nms is .*class_agnostic.*supports dict\(type='nms'"),
    (TOY_DEEPLAB, ['model.test_cfg.mode=slide'], 'int8',
     r"test_cfg.mode is 'slide'; ONNX export supports 'whole' only"),
])
def test_unsupported_models_are_refused_before_writing(
        tmp_path, config, options, precision, match):
    """Each names the part and what is supported; no file, no folder."""
    ext = 'pt2' if precision == 'bf16' else 'onnx'
    out = tmp_path / 'out' / f'model_{precision}.{ext}'
    args = [str(config), 'none', '--precision', precision, '--out', str(out)]
    with pytest.raises(ValueError, match=match):
        main(args + (['--cfg-options', *options] if options else []))
    assert not (tmp_path / 'out').exists()


def test_calibration_on_the_test_images_is_refused(tmp_path, toy_coco):
    """A train_dataloader that reads the val images (the toy config tests on
    them too): refused, naming the loader it shares them with, before
    anything is written."""
    out = tmp_path / 'out' / 'model_int8.onnx'
    options = _data_options(toy_coco) + [
        'train_dataloader.dataset.ann_file=annotations/'
        'instances_val2017.json',
        'train_dataloader.dataset.data_prefix.img=val2017/']
    with pytest.raises(ValueError, match=r"reads train_dataloader, whose "
                       r".*instances_val2017.json.* also the "
                       r"val_dataloader's"):
        main([str(TOY_FASTER), 'none', '--precision', 'int8', '--out',
              str(out), '--cfg-options', *options])
    assert not (tmp_path / 'out').exists()


def test_calibration_reads_train_images_only(toy_coco):
    options = {k: v for k, v in (o.split('=')
                                 for o in _data_options(toy_coco))}
    cfg, _ = load_config(str(TOY_FASTER), options)
    check_calibration_source(cfg)  # the toy config as it is: train != val
    model, _ = build_model(str(TOY_FASTER))
    images = calibration_images(cfg, model.data_preprocessor, 3)
    assert [tuple(i.shape) for i in images] == [(1, 3, 128, 128)] * 3
    # a test set of its own, read by a wrapped train set
    cfg.val_dataloader.dataset.data_root = '/elsewhere/'
    cfg.train_dataloader.dataset = dict(type='RepeatDataset', times=2,
                                        dataset=cfg.test_dataloader.dataset)
    with pytest.raises(ValueError, match="also the test_dataloader's"):
        check_calibration_source(cfg)


def test_file_name_must_fit_the_precision(detector):
    model, scope = detector
    with pytest.raises(ValueError, match=r"--out 'model.onnx': a bf16 model "
                       r'is written as a \.pt2 file'):
        check_shippable(model, scope, 'bf16', 'model.onnx')
    check_shippable(model, scope, 'int8', 'model.onnx')


def test_only_dense_parts_are_quantized():
    parts = ('backbone', 'neck', 'rpn_head', 'roi_head.bbox_head')
    assert dense_node('/backbone/layer1/layer1.0/conv1/Conv', parts)
    assert dense_node('/bbox_head/shared_fcs.0/Gemm', parts)
    assert dense_node('/rpn_head/rpn_conv_2/Conv', parts)
    for post in ('/rpn_head/rpn_cls_1/Conv', '/rpn_head/rpn_reg/Conv',
                 '/bbox_head/fc_cls/Gemm', '/TopK_3', '/RoiAlign_1',
                 '/NonMaxSuppression', '/Sigmoid_2'):
        assert not dense_node(post, parts), post
    assert not dense_node('/neck/fpn_convs.0/conv/Conv', ('backbone', ))


@pytest.fixture(scope='module')
def shipped(detector, tmp_path_factory):
    """The random toy detector in fp32 and bf16 (int8: the trained toy
    detector's, in tests/test_det_end_to_end.py)."""
    model, scope = detector
    cfg, _ = load_config(str(TOY_FASTER))
    root = tmp_path_factory.mktemp('shipped')
    return {precision: ship(model, scope, cfg, precision,
                            str(root / f'toy_{precision}.{ext}'), (128, 128))
            for precision, ext in (('fp32', 'onnx'), ('bf16', 'pt2'))}


def test_metadata_says_what_the_file_is(shipped):
    for precision, path in shipped.items():
        meta = read_metadata(path)
        assert meta['scope'] == 'mmdet' and meta['precision'] == precision
        assert meta['classes'] == ['circle', 'square', 'triangle']
        assert meta['num_classes'] == 3
        assert meta['runtime'] == ('torch' if precision == 'bf16'
                                   else 'onnxruntime')
        assert "type='FasterRCNN'" in meta['config']
    assert read_metadata(shipped['fp32'])['calibration'] is None


def test_bf16_file_pairs_with_fp32(detector, shipped):
    """At a size other than the trace's: the fp32 model's detections scored
    0.55 or more find a bf16 partner of the same label (IoU >= 0.5) scored
    0.5 or more, and the other way round. The random model's boxes overlap
    densely, so a few pairs go astray: measured 88-96% paired, scores
    within 0.05; bounds 80%, 0.1."""
    model, scope = detector
    deployed = DeployedModel(shipped['bf16'])
    image = preprocess(model, np.random.default_rng(1).integers(
        0, 256, (96, 160, 3), dtype=np.uint8))
    got = deployed.outputs(image)
    want = pytorch_outputs(model, scope, image)
    report = pair_detections(got, want, min_score=0.55, score_margin=0.05)
    print(report)
    assert report['want_confident'] >= 10
    assert report['want_paired'] >= 0.8 * report['want_confident']
    assert report['got_paired'] >= 0.8 * report['got_confident']
    assert report['paired_max_score_diff'] <= 0.1


def test_deployed_model_runs_an_image_file(detector, shipped, tmp_path):
    """``predict_image``: the config's test pipeline, the file, boxes in the
    original image's pixels (the file saw it resized to 128 px)."""
    image = np.random.default_rng(2).integers(0, 256, (64, 96, 3),
                                              dtype=np.uint8)
    path = tmp_path / 'image.png'
    cv2.imwrite(str(path), image)
    deployed = DeployedModel(shipped['fp32'])
    sample = deployed.predict_image(str(path))
    boxes = sample.pred_instances.bboxes
    assert sample.ori_shape == (64, 96) and sample.img_shape == (85, 128)
    assert len(boxes) > 0
    assert boxes[:, 2].max() <= 96 and boxes[:, 3].max() <= 64
    from_array = deployed.predict_image(image)
    torch.testing.assert_close(from_array.pred_instances.bboxes, boxes)


def test_a_file_and_a_config_of_other_tasks_are_refused(shipped):
    with pytest.raises(ValueError, match='is a mmdet model; the config is '
                       'mmseg'):
        DeployedModel(shipped['fp32'], config=str(TOY_DEEPLAB))
    with pytest.raises(ValueError, match='the config is mmpretrain; shipped '
                       'files are detectors'):
        DeployedModel(shipped['fp32'],
                      config=str(REPO / 'configs/toy/resnest14_cls_toy.py'))


def test_segmentor_in_int8(tmp_path):
    """The toy DeepLabV3 (random weights) in int8 (backbone and decode head
    quantized, conv_seg float), on a photograph at a size other than the
    trace's: the logits' class contrasts (each pixel's logits less their
    mean) keep a cosine of 0.95 to fp32's (measured: 0.9998), and 90% of
    the labels agree (measured: 0.97; random weights: one class covers most
    pixels, and many are near ties)."""
    from mmengine.config import Config
    model, scope = build_model(str(TOY_DEEPLAB))
    randomize_(model)
    model.eval()
    cfg = Config.fromfile(str(TOY_DEEPLAB))
    calibration = photo_batches(CALIBRATION_PHOTOS[:2], 96)
    image = photo_batches(CHECK_PHOTOS[:1], 128)[0][:, :, :, :96]
    want = pytorch_outputs(model, scope, image)
    path = ship(model, scope, cfg, 'int8', str(tmp_path / 'seg_int8.onnx'),
                (96, 96), calibration)
    got = DeployedModel(path).outputs(image)
    assert got[0].shape == want[0].shape == (1, 4, 128, 96)

    def contrasts(logits):
        return (logits - logits.mean(1, keepdim=True)).flatten()
    cosine = torch.nn.functional.cosine_similarity(
        contrasts(got[0]), contrasts(want[0]), dim=0).item()
    equal = (got[1] == want[1]).float().mean().item()
    print(f'int8: cosine {cosine:.4f}, {equal:.3f} of the labels equal')
    assert cosine >= 0.95
    assert equal >= 0.9


class _Suppress(torch.nn.Module):
    """Score threshold then per-group NMS, as the detector's last step."""

    def forward(self, boxes, scores):
        from resnest_mm.deployment.detector_onnx import batched_nms
        keep = (scores > 0.5).nonzero()[:, 0]
        boxes, scores = boxes[keep], scores[keep]
        groups = torch.zeros_like(scores, dtype=torch.long)
        keep = batched_nms(boxes, scores, groups, 0.5)[:100]
        return boxes[keep], scores[keep]


def test_exported_nms_keeps_any_number_of_boxes(tmp_path):
    """A bf16 program's NMS returns 2, 1 or 0 boxes (torchvision's own fake
    kernel would make the program assert 2 or more: an image with one
    detection, or none, would fail)."""
    boxes = torch.tensor([[0., 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
    dynamic = {0: torch.export.Dim.DYNAMIC}
    program = torch.export.export(
        _Suppress(), (boxes, torch.tensor([0.9, 0.8, 0.7])),
        dynamic_shapes={'boxes': dynamic, 'scores': dynamic}, strict=False)
    torch.export.save(program, tmp_path / 'nms.pt2')
    run = torch.export.load(tmp_path / 'nms.pt2').module()
    for scores, kept in (([0.9, 0.8, 0.7], 2), ([0.9, 0.1, 0.1], 1),
                         ([0.1, 0.1, 0.1], 0)):
        assert len(run(boxes, torch.tensor(scores))[0]) == kept


def test_calibration_images_repeat(toy_coco):
    """Seeded order and flips: two exports calibrate on the same tensors."""
    options = {k: v for k, v in (o.split('=')
                                 for o in _data_options(toy_coco))}
    cfg, _ = load_config(str(TOY_FASTER), options)
    model, _ = build_model(str(TOY_FASTER))
    first = calibration_images(cfg, model.data_preprocessor, 4)
    np.random.rand()  # another state of the global generators
    second = calibration_images(cfg, model.data_preprocessor, 4)
    for a, b in zip(first, second):
        assert torch.equal(a, b)
