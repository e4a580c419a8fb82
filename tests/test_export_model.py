"""tools/deployment/export_model.py and resnest_mm.deployment.model_export:
whole toy Faster R-CNN and DeepLabV3 (random weights) to ONNX, run in
onnxruntime at two image sizes through one file, against mmdet's and mmseg's
own ``model.predict`` on the same preprocessed tensor."""
import importlib

import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope
from PIL import Image

from conftest import load_tool, randomize_
from resnest_mm.deployment.detector_onnx import FasterRCNNGraph
from resnest_mm.deployment.model_export import detection_differences
from resnest_mm.deployment.segmentor_onnx import SegmentorGraph
from resnest_mm.deployment.onnx_evaluation import evaluate_onnx
from resnest_mm.toy_data import make_toy_ade20k
from toy_runs import REPO, TOY_FASTER, logged_metric, run_tool

TOY_DEEPLAB = REPO / 'configs/toy/deeplabv3_resnest14_d8_toy.py'
main = load_tool('deployment/export_model.py').main

#: Traced at 128x128; run at that size and at another one (H != W, neither
#: the trace's), both multiples of the detector's padding (32); the detector
#: also at 32x96, where its RPN keeps fewer than 1000 proposals.
SIZES = ((128, 128), (64, 160))
DETECTOR_SIZES = SIZES + ((32, 96), )
#: onnxruntime against PyTorch (measured: boxes 6e-5 px, scores 3e-7,
#: logits 4e-8 .. 1e-6): float rounding of other kernels, with margin.
BOX_RTOL, BOX_ATOL, SCORE_ATOL, LOGIT_ATOL = 1e-3, 1e-2, 1e-4, 1e-4


def _build(config, scope: str):
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        return registry.build(Config.fromfile(config).model)


def _random_checkpoint(model, head_fcs, path):
    """Random convs and norms (``randomize_``) and head layers scaled up, so
    that class scores spread (mmdet's init gives near-equal scores)."""
    randomize_(model)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in head_fcs:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen)
                               * 0.05)
    torch.save({'state_dict': model.state_dict()}, path)
    return model.eval()


def _image(size) -> torch.Tensor:
    """The seeded ``(1, 3, H, W)`` model input of the comparisons at
    ``size``."""
    return torch.randn(1, 3, *size,
                       generator=torch.Generator().manual_seed(size[1]))


def _predict(model, image: torch.Tensor):
    """mmdet's test path without rescaling: ``pred_instances``."""
    from mmdet.structures import DetDataSample
    sample = DetDataSample(metainfo=dict(img_shape=tuple(image.shape[2:]),
                                         scale_factor=(1., 1.)))
    with torch.no_grad():
        return model.predict(image, [sample], rescale=False)[0].pred_instances


def _craft_box_head(model, images) -> None:
    """Box head weights under which ``images`` give several classes, boxes
    of two classes on one object, and fewer than ``max_per_img``
    detections: what the exported graph's per-class NMS and top-k must get
    right (random or mmdet-initialized heads give every RoI the same
    near-uniform scores, so 100 detections of one class).

    Logits of classes 0 and 2 read random directions of the RoI features
    orthogonal to each image's mean feature (so they vary over the RoIs of
    every image, spread 2); class 1 is class 0 less 0.5 and regresses
    almost the same box; the background logit, 8, leaves a few dozen RoIs
    above ``score_thr``. Measured here: 34 to 65 detections, consecutive
    scores at least 4e-6 apart and every score at least 1e-4 from
    ``score_thr``, against 3e-7 between the runtimes, so neither the order
    nor the count is left to rounding."""
    head = model.roi_head.bbox_head
    feats = []
    hook = head.fc_cls.register_forward_hook(
        lambda module, args, out: feats.append(args[0]))
    for image in images:
        _predict(model, image)
    hook.remove()
    basis = torch.linalg.qr(torch.stack([f.mean(0) for f in feats]).T)[0]
    centred = torch.cat([f - f.mean(0) for f in feats])
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        cls = torch.randn(head.fc_cls.weight.shape, generator=gen)
        cls -= cls @ basis @ basis.T
        cls *= 2 / (centred @ cls.T).std(0)[:, None]
        cls[1], cls[3] = cls[0], 0
        head.fc_cls.weight.copy_(cls)
        head.fc_cls.bias.copy_(torch.tensor([0, -0.5, 0, 8]))
        reg = torch.randn(head.fc_reg.weight.shape, generator=gen) * 0.05
        reg[4:8] = reg[:4] + torch.randn(4, reg.shape[1], generator=gen) * 0.01
        head.fc_reg.weight.copy_(reg)


def _assert_class_handling_is_exercised(model, want) -> None:
    """``want`` (mmdet's detections) holds every class, two boxes of
    different classes that overlap beyond the NMS threshold (class-agnostic
    NMS would drop one) and fewer detections than ``max_per_img`` (the cut
    hides no difference)."""
    from torchvision.ops import box_iou
    cfg = model.roi_head.test_cfg
    assert 10 <= len(want) < cfg.max_per_img
    assert len(want.labels.unique()) == model.roi_head.bbox_head.num_classes
    other_class = want.labels[:, None] != want.labels[None]
    overlap = box_iou(want.bboxes, want.bboxes) * other_class
    assert overlap.max() > cfg.nms.iou_threshold


@pytest.fixture(scope='module')
def detector(tmp_path_factory):
    """(model, onnx path, tool report, tool's input): exported by the tool
    at 128x128 and checked on a 128x128 image file."""
    import mmcv
    from resnest_mm.deployment.model_export import preprocess
    root = tmp_path_factory.mktemp('detector')
    # seeded here: the box head's shared fcs keep their construction-time
    # init, and a module-scoped fixture runs before the per-test seed
    torch.manual_seed(0)
    model = _build(TOY_FASTER, 'mmdet')
    randomize_(model).eval()
    picture = root / 'image.png'
    Image.fromarray(np.random.default_rng(0).integers(
        0, 256, (128, 128, 3), dtype=np.uint8)).save(picture)
    tool_input = preprocess(model, mmcv.imread(str(picture)))
    _craft_box_head(model, [_image(size) for size in DETECTOR_SIZES]
                    + [tool_input])
    torch.save({'state_dict': model.state_dict()}, root / 'w.pth')
    path = root / 'faster_rcnn.onnx'
    report = main([str(TOY_FASTER), str(root / 'w.pth'), '--out', str(path),
                   '--shape', '128', '128', '--image', str(picture)])
    return model, str(path), report, tool_input


@pytest.fixture(scope='module')
def segmentor(tmp_path_factory):
    """(model, onnx path, tool report, checkpoint): exported at 96x96."""
    root = tmp_path_factory.mktemp('segmentor')
    model = _build(TOY_DEEPLAB, 'mmseg')
    _random_checkpoint(model, [model.decode_head.conv_seg], root / 'w.pth')
    path = root / 'deeplabv3.onnx'
    report = main([str(TOY_DEEPLAB), str(root / 'w.pth'), '--out', str(path),
                   '--shape', '96', '96'])
    return model, str(path), report, root / 'w.pth'


def _onnxruntime(path: str, image: torch.Tensor):
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return [torch.from_numpy(o)
            for o in session.run(None, {'image': image.numpy()})]


def test_tool_reports_matching_detections(detector):
    model, _, report, tool_input = detector
    _assert_class_handling_is_exercised(model, _predict(model, tool_input))
    assert report['detections'] == report['onnx_detections'] >= 10
    assert report['max_box_diff'] <= BOX_ATOL
    assert report['max_score_diff'] <= SCORE_ATOL
    assert report['labels_equal'] == 1


@pytest.mark.parametrize('size', DETECTOR_SIZES)
def test_detector_matches_mmdet_predict(detector, size):
    """One file, two sizes: the same boxes, scores and labels, in the same
    order (best first), as mmdet's test path without rescaling."""
    model, path = detector[:2]
    image = _image(size)
    want = _predict(model, image)
    _assert_class_handling_is_exercised(model, want)
    boxes, scores, labels = _onnxruntime(path, image)
    assert len(boxes) == len(want)
    torch.testing.assert_close(boxes, want.bboxes, rtol=BOX_RTOL,
                               atol=BOX_ATOL)
    torch.testing.assert_close(scores, want.scores, rtol=0, atol=SCORE_ATOL)
    assert torch.equal(labels, want.labels)
    # boxes in the input's pixels
    assert boxes[:, 2].max() <= size[1] and boxes[:, 3].max() <= size[0]


@pytest.mark.parametrize('size', SIZES)
def test_segmentor_matches_mmseg_predict(segmentor, size):
    from mmseg.structures import SegDataSample
    model, path = segmentor[:2]
    image = torch.randn(2, 3, *size, generator=torch.Generator()
                        .manual_seed(size[1]))
    logits, labels = _onnxruntime(path, image)
    assert logits.shape == (2, 4, *size) and labels.shape == (2, *size)
    for i in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size,
                                             pad_shape=size))
        with torch.no_grad():
            want = model.predict(image[i:i + 1], [sample])[0]
        torch.testing.assert_close(logits[i], want.seg_logits.data,
                                   rtol=0, atol=LOGIT_ATOL)
        equal = (labels[i] == want.pred_sem_seg.data[0]).float().mean()
        assert equal >= 0.999
    assert len(labels.unique()) >= 2  # not one class everywhere


def test_tool_reports_matching_segmentation(segmentor):
    report = segmentor[2]
    assert report['max_logit_diff'] <= LOGIT_ATOL
    assert report['labels_equal'] >= 0.999


def test_evaluate_onnx_scores_as_mmseg_test_tool(segmentor, tmp_path):
    """The config's val loader and IoU metric on 4 toy images (128 px, the
    export's 96 px trace resized by the dynamic axes): onnxruntime through
    ``evaluate_onnx`` and the PyTorch model through tools/test.py agree."""
    make_toy_ade20k(tmp_path / 'toy_ade20k', {'validation': 4})
    option = f'val_dataloader.dataset.data_root={tmp_path}/toy_ade20k/'
    got = evaluate_onnx(str(TOY_DEEPLAB), segmentor[1],
                        {'val_dataloader.dataset.data_root':
                         f'{tmp_path}/toy_ade20k/'})
    proc = run_tool('test.py', [TOY_DEEPLAB, segmentor[3], '--work-dir',
                                tmp_path / 'wd', '--cfg-options',
                                option.replace('val_', 'test_')],
                    cwd=tmp_path)
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert abs(got[key] - logged_metric(proc, key)) <= 0.05, key
    assert got['mIoU'] > 1  # a random model, but not an empty prediction


class _Pool(torch.nn.Module):
    """The detector graph's RoI pooling alone, to export on its own."""

    def __init__(self, graph: FasterRCNNGraph) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, rois, *feats):
        return self.graph.pool(feats, rois)


def test_roi_pooling_matches_mmdet_on_every_level(detector, tmp_path):
    """RoIs of 6 to 450 px on a 512 px image's pyramid, so that every level
    of ``SingleRoIExtractor`` is used (128 px images reach levels 0, 1 only):
    ONNX RoiAlign (half_pixel) + level selection as mmcv's RoIAlign through
    mmdet's extractor."""
    import onnxruntime as ort
    model = detector[0]
    extractor = model.roi_head.bbox_roi_extractor
    gen = torch.Generator().manual_seed(0)
    feats = [torch.randn(1, 64, 512 // s, 512 // s, generator=gen)
             for s in extractor.featmap_strides]
    side = torch.linspace(6, 450, 40)
    corner = torch.rand(40, 2, generator=gen) * (512 - side[:, None])
    rois = torch.cat([torch.zeros(40, 1), corner, corner + side[:, None]], 1)
    levels = extractor.map_roi_levels(rois, len(feats))
    assert set(levels.tolist()) == {0, 1, 2, 3}
    with torch.no_grad():
        want = extractor(feats, rois)
    names = ['rois'] + [f'feat{i}' for i in range(len(feats))]
    path = str(tmp_path / 'pool.onnx')
    torch.onnx.export(_Pool(FasterRCNNGraph(model)), (rois, *feats), path,
                      input_names=names, opset_version=17, dynamo=False)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    got = session.run(None, {n: t.numpy()
                             for n, t in zip(names, (rois, *feats))})[0]
    torch.testing.assert_close(torch.from_numpy(got), want, rtol=0,
                               atol=1e-5)


def test_unsupported_models_are_refused(detector, segmentor, monkeypatch):
    model = detector[0]
    monkeypatch.setattr(model.rpn_head, 'test_cfg', ConfigDict(
        nms=dict(type='soft_nms', iou_threshold=0.7)))
    with pytest.raises(ValueError, match=r'test_cfg.rpn.nms is .*soft_nms'):
        FasterRCNNGraph(model)
    model = segmentor[0]
    monkeypatch.setattr(model, 'test_cfg', ConfigDict(mode='slide'))
    with pytest.raises(ValueError, match="test_cfg.mode is 'slide'"):
        SegmentorGraph(model)


def test_missing_config_is_named(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match="config file '.*nowhere.py' does not exist"):
        main([str(tmp_path / 'nowhere.py'), 'none',
              '--out', str(tmp_path / 'model.onnx')])


def test_detections_of_equal_score_are_paired_in_either_order():
    boxes = torch.tensor([[0., 0, 10, 10], [20, 20, 40, 40], [5, 5, 8, 8]])
    scores, labels = torch.tensor([0.9, 0.5, 0.5]), torch.tensor([1, 2, 3])
    swap = [0, 2, 1]  # the two 0.5 detections in the other order
    got = (boxes[swap] + 0.25, scores[swap], labels[swap])
    assert detection_differences(got, (boxes, scores, labels)) == (
        pytest.approx(dict(detections=3, onnx_detections=3, max_box_diff=0.25,
                           max_score_diff=0, labels_equal=1)))
    got = (boxes[swap] + 5, scores[swap], torch.tensor([1, 3, 3]))
    assert detection_differences(got, (boxes, scores, labels)) == (
        pytest.approx(dict(detections=3, onnx_detections=3, max_box_diff=5,
                           max_score_diff=0, labels_equal=2 / 3)))
    fewer = (boxes[:2], scores[:2], labels[:2])
    assert detection_differences(fewer, (boxes, scores, labels)) == dict(
        detections=3, onnx_detections=2)
