"""One deployable file of a whole detector or segmentor, in fp32, int8 or
bf16 (``tools/deployment/export_model.py --precision``).

The file holds the test-time graph of :mod:`.detector_onnx` (Faster R-CNN)
or :mod:`.segmentor_onnx` (EncoderDecoder): the data preprocessor's output
``(1, 3, H, W)`` in, boxes, scores and labels (or logits and labels) out,
post-processing included; and, as metadata, the task, the precision, the
class names and the config (:func:`read_metadata`), so that
:class:`~resnest_mm.deployment.deployed_model.DeployedModel` can run it on an
image file alone.

- **fp32** (``.onnx``, onnxruntime): the model as trained.
- **int8** (``.onnx``, onnxruntime): the deploy backbone (folded BN, avd
  pools as depthwise convs) and the dense parts after it (:data:`PARTS`:
  neck, RPN convs, box head; a segmentor's decode head) statically quantized
  as the backbone alone is in :func:`~resnest_mm.deployment.low_precision.
  quantize_int8` (QDQ, per-channel 7-bit weights, uint8 activations with
  MinMax ranges), calibrated on the config's ``train_dataloader`` images
  (:func:`calibration_images`; never the images it is tested on). The layers
  that produce scores and box deltas (:data:`PREDICTORS`) and all
  post-processing (anchors, top-k, box decoding, NMS, RoIAlign, resizing)
  stay float32.
- **bf16** (``.pt2``, a ``torch.export`` program run by PyTorch): the same
  parts with bfloat16 weights and activations (NHWC), the predictors and
  post-processing in float32. onnxruntime's CPU provider has no bfloat16
  convolution (1.32: ``Conv`` in bfloat16 is "NOT_IMPLEMENTED"), PyTorch's
  oneDNN kernels have; they are fast only where the CPU has AVX512-BF16 or
  AMX (:data:`~resnest_mm.deployment.low_precision.FAST_ON`) and emulated,
  several times slower than fp32, elsewhere.

Every check that can refuse a model or a calibration set runs before any
file is written (:func:`check_shippable`, :func:`check_calibration_source`).
"""
import copy
import json
import os
import re
import tempfile
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from resnest_mm.deployment.low_precision import (PRECISIONS, _Calibration,
                                                 avd_pools_as_convs,
                                                 check_precision, deploy_copy)
from resnest_mm.deployment.model_export import export, graph_of
from resnest_mm.models import ResNeSt

#: File extension of each precision's runtime.
EXTENSIONS = {'fp32': '.onnx', 'int8': '.onnx', 'bf16': '.pt2'}
#: The metadata entry (ONNX ``metadata_props`` key, ``.pt2`` extra file).
METADATA_KEY = 'resnest_mm.json'
#: The dense parts run in low precision, by task: attribute paths on the
#: detector or segmentor. (ONNX names their nodes ``/<last name>/...``.)
PARTS = {'mmdet': ('backbone', 'neck', 'rpn_head', 'roi_head.bbox_head'),
         'mmseg': ('backbone', 'neck', 'decode_head')}
#: The layers inside :data:`PARTS` that stay float32: they produce the class
#: scores and box deltas that top-k, NMS and the argmax compare.
PREDICTORS = ('rpn_cls', 'rpn_reg', 'fc_cls', 'fc_reg', 'conv_seg')


def check_shippable(model: nn.Module, scope: str, precision: str,
                    out: str) -> None:
    """Everything that can refuse an export, before anything is written:
    the precision, the file name's extension and the model's parts."""
    check_precision(precision)
    ext = os.path.splitext(out)[1]
    if ext != EXTENSIONS[precision]:
        raise ValueError(f'--out {out!r}: a {precision} model is written as '
                         f'a {EXTENSIONS[precision]} file; name it so')
    graph_of(model, scope)
    if precision != 'fp32' and not isinstance(model.backbone, ResNeSt):
        raise ValueError(f'backbone is {type(model.backbone).__name__}; '
                         f'{precision} export needs type=\'ResNeSt\' '
                         '(resnest_mm)')


def _dataset_sources(dataset: dict) -> List[Tuple[str, ...]]:
    """Where a dataset config reads its images: ``(data_root/ann_file,
    data_root/prefix, ...)`` per dataset, wrappers unwrapped."""
    if 'datasets' in dataset:  # ConcatDataset
        return [s for d in dataset['datasets'] for s in _dataset_sources(d)]
    if 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset, ...
        return _dataset_sources(dataset['dataset'])
    root = dataset.get('data_root') or ''
    files = [dataset.get('ann_file') or '']
    prefix = dataset.get('data_prefix') or {}
    if isinstance(prefix, str):  # MMPretrain's CustomDataset: one folder
        prefix = {'': prefix}
    files += [str(v) for _, v in sorted(prefix.items())]
    return [tuple(os.path.normpath(os.path.join(root, f)) for f in files)]


def check_calibration_source(cfg, loader: str = 'train_dataloader') -> None:
    """``ValueError`` unless ``cfg.<loader>`` exists and reads other images
    than the config's ``val_dataloader`` and ``test_dataloader``: ranges
    fitted on the images a model is scored on would flatter its int8
    accuracy."""
    if cfg.get(loader) is None:
        raise ValueError(f"int8 calibration reads the config's {loader}; "
                         'this config has none')
    ours = set(_dataset_sources(cfg[loader]['dataset']))
    for other in ('val_dataloader', 'test_dataloader'):
        if cfg.get(other) is None or other == loader:
            continue
        shared = ours & set(_dataset_sources(cfg[other]['dataset']))
        if shared:
            raise ValueError(
                f'int8 calibration reads {loader}, whose dataset '
                f'{sorted(shared)[0]} is also the {other}\'s: calibrating '
                'on the images the model is scored on is refused; point '
                f'{loader} at training images')


def calibration_images(cfg, preprocessor: nn.Module, images: int,
                       loader: str = 'train_dataloader') -> List[Tensor]:
    """The first ``images`` images of ``cfg.<loader>``, one by one through
    the model's data preprocessor: ``(1, 3, H, W)`` each. The order and the
    pipeline's random steps (flips, crops) are seeded, so an export is
    repeatable; the global random states are restored afterwards. Refuses a
    loader that reads the test or val images
    (:func:`check_calibration_source`)."""
    import random

    import numpy as np
    from mmengine.runner import Runner
    check_calibration_source(cfg, loader)
    if images < 1:
        raise ValueError(f'calib_images={images}: int8 needs at least one '
                         'calibration image')
    single = dict(cfg[loader], batch_size=1, num_workers=0,
                  persistent_workers=False)
    single.pop('batch_sampler', None)
    states = random.getstate(), np.random.get_state()
    random.seed(0)
    np.random.seed(0)
    out = []
    try:
        with torch.no_grad():
            for data in Runner.build_dataloader(single, seed=0):
                out.append(preprocessor(data, False)['inputs'])
                if len(out) == images:
                    break
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
    return out


def _part(model: nn.Module, path: str) -> Optional[nn.Module]:
    for name in path.split('.'):
        model = getattr(model, name, None)
    return model


def _is_predictor(name: str) -> bool:
    return re.match(rf"^({'|'.join(PREDICTORS)})(_\d+)?$", name) is not None


def dense_node(name: str, parts: Sequence[str]) -> bool:
    """Whether the ONNX node ``name`` (``/<part>/<module>/.../<Op>``) lies
    in one of ``parts`` (paths as in :data:`PARTS`) and outside the
    :data:`PREDICTORS`."""
    own = {p.split('.')[-1] for p in parts}
    parts = name.split('/')
    return (len(parts) > 2 and parts[1] in own
            and not any(_is_predictor(p) for p in parts))


def deploy_backbone(model: nn.Module, channels_last: bool = False,
                    avd_as_convs: bool = False) -> nn.Module:
    """A copy of ``model`` with its ResNeSt in deploy mode (folded BN)."""
    model = copy.deepcopy(model).eval()
    backbone = deploy_copy(model.backbone, channels_last=channels_last)
    model.backbone = (avd_pools_as_convs(backbone) if avd_as_convs
                      else backbone)
    return model


def quantize_model(model: nn.Module, scope: str, path: str,
                   calibration: Sequence[Tensor], shape: Sequence[int],
                   parts: Optional[Sequence[str]] = None,
                   opset: int = 17) -> str:
    """The int8 ONNX file of ``model``: exported with the deploy backbone,
    the nodes of ``parts`` (default :data:`PARTS`; less the
    :data:`PREDICTORS`) quantized with ranges from ``calibration``
    ``(1, 3, H, W)`` images."""
    import onnx
    from onnxruntime.quantization import (QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    if not calibration:
        raise ValueError('int8 quantization needs calibration images; got '
                         'none')
    with tempfile.TemporaryDirectory() as tmp:
        fp32, prepared = (os.path.join(tmp, 'fp32.onnx'),
                          os.path.join(tmp, 'prepared.onnx'))
        export(deploy_backbone(model, avd_as_convs=True), scope, fp32, shape,
               opset)
        # constant folding and ORT's graph optimisations first; the symbolic
        # shape pass cannot follow the split-attention reshapes
        quant_pre_process(fp32, prepared, skip_symbolic_shape=True)
        nodes = [n.name for n in onnx.load(prepared).graph.node
                 if dense_node(n.name, parts or PARTS[scope])]
        quantize_static(prepared, path, _Calibration(list(calibration)),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, reduce_range=True,
                        nodes_to_quantize=nodes)
    return path


def _cast(value, dtype: torch.dtype):
    """Every floating tensor in ``value`` (nested tuples and lists) in
    ``dtype``; 4-D ones in NHWC when bfloat16."""
    if isinstance(value, Tensor):
        if not value.is_floating_point():
            return value
        value = value.to(dtype)
        if dtype == torch.bfloat16 and value.dim() == 4:
            value = value.contiguous(memory_format=torch.channels_last)
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(_cast(v, dtype) for v in value)
    return value


def bf16_model(model: nn.Module, scope: str) -> nn.Module:
    """A copy of ``model`` whose :data:`PARTS` compute in bfloat16, NHWC
    (deploy backbone, BN folded into the convs before it elsewhere): each
    part casts its inputs to bfloat16 and its outputs back to float32; the
    :data:`PREDICTORS` keep float32 weights and inputs."""
    from mmcv.cnn import fuse_conv_bn
    model = deploy_backbone(model, channels_last=True)
    for path in PARTS[scope]:
        part = _part(model, path)
        if part is None:
            continue
        if path != 'backbone':
            fuse_conv_bn(part)
        part.to(torch.bfloat16).to(memory_format=torch.channels_last)
        part.register_forward_pre_hook(
            lambda _, args: _cast(args, torch.bfloat16))
        part.register_forward_hook(
            lambda _, args, out: _cast(out, torch.float32))
        for name, layer in part.named_modules():
            if _is_predictor(name.split('.')[-1]):
                layer.float()
                layer.register_forward_pre_hook(
                    lambda _, args: _cast(args, torch.float32))
    return model.eval()


def export_bf16(model: nn.Module, scope: str, path: str,
                shape: Sequence[int], metadata: Dict[str, object]) -> str:
    """``torch.export`` of :func:`bf16_model`'s graph, saved with
    ``metadata``: batch 1 (as the detector's ONNX file), height and width
    dynamic from 65 px (the detector's stride-64 level must have two
    pixels a side)."""
    graph = graph_of(bf16_model(model, scope), scope).eval()
    dims = {2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    image = torch.randn(1, 3, *shape)
    with torch.no_grad():
        program = torch.export.export(graph, (image, ),
                                      dynamic_shapes={'image': dims},
                                      strict=False)
    torch.export.save(program, path,
                      extra_files={METADATA_KEY: json.dumps(metadata)})
    return path


def metadata(cfg, scope: str, precision: str,
             calibration: Optional[str] = None) -> Dict[str, object]:
    """What :class:`~resnest_mm.deployment.deployed_model.DeployedModel`
    reads back: task, precision, runtime, class names, config text."""
    model_cfg = cfg.model
    head = (model_cfg.get('decode_head') if scope == 'mmseg'
            else model_cfg.get('roi_head', {}).get('bbox_head'))
    classes = (cfg.get('test_dataloader', {}).get('dataset', {})
               .get('metainfo', {}).get('classes'))
    return dict(format=1, scope=scope, precision=precision,
                runtime='torch' if precision == 'bf16' else 'onnxruntime',
                num_classes=(head or {}).get('num_classes'),
                classes=list(classes) if classes else None,
                calibration=calibration, config=cfg.pretty_text)


def write_onnx_metadata(path: str, meta: Dict[str, object]) -> None:
    import onnx
    model = onnx.load(path)
    entry = next((p for p in model.metadata_props if p.key == METADATA_KEY),
                 None) or model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.save(model, path)


def read_metadata(path: str) -> Optional[Dict[str, object]]:
    """The metadata a shipped file holds; ``None`` for an ONNX file
    exported without it."""
    if path.endswith('.pt2'):  # a zip archive: read the entry, not the
        import zipfile             # whole program
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist()
                     if n.endswith(f'/extra/{METADATA_KEY}')]
            return json.loads(archive.read(names[0])) if names else None
    import onnx
    model = onnx.load(path, load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return None


def ship(model: nn.Module, scope: str, cfg, precision: str, out: str,
         shape: Sequence[int], calibration: Iterable[Tensor] = (),
         calibration_note: Optional[str] = None, opset: int = 17) -> str:
    """Write ``model`` (eval mode, weights loaded) in ``precision`` to
    ``out``, traced on a ``shape`` image: see the module docstring.
    ``calibration``: int8's preprocessed ``(1, 3, H, W)`` images
    (:func:`calibration_images`); ``opset``: the ONNX files'."""
    check_shippable(model, scope, precision, out)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    meta = metadata(cfg, scope, precision,
                    calibration_note if precision == 'int8' else None)
    if precision == 'bf16':
        return export_bf16(model, scope, out, shape, meta)
    if precision == 'int8':
        quantize_model(model, scope, out, list(calibration), shape,
                       opset=opset)
    else:
        export(model, scope, out, shape, opset)
    write_onnx_metadata(out, meta)
    return out


__all__ = ['EXTENSIONS', 'PARTS', 'PRECISIONS', 'PREDICTORS', 'ship',
           'calibration_images', 'check_calibration_source',
           'check_shippable', 'read_metadata']
