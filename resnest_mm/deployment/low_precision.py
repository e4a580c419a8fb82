"""The deploy backbone (folded BN) in bfloat16 or int8 on a CPU.

Both return what the fp32 backbone returns, a tuple of float32
``(B, C_i, H / s_i, W / s_i)`` feature maps, so a neck and head in fp32 run on
them unchanged (:class:`~resnest_mm.engine.backbone_precision.
BackbonePrecisionHook` swaps them into a detector or segmentor for
``tools/test.py --backbone-precision``).

- **bf16** (:class:`Bf16Backbone`): the deploy model's weights cast to
  bfloat16 in NHWC, the input cast on the way in and the outputs back to
  float32; optionally under ``torch.compile`` (inductor, weights frozen into
  oneDNN's layout). Fast only where the CPU has bf16 dot products
  (AVX512-BF16 or AMX, see :func:`cpu_features`); elsewhere torch emulates
  bf16 and it runs several times slower than fp32.
- **int8** (:func:`quantize_int8`, :class:`OrtBackbone`): onnxruntime's
  static quantization of the exported deploy backbone: QDQ format,
  per-channel signed weights in [-64, 64] (``reduce_range``), unsigned int8
  activations with MinMax ranges from calibration images, the avd pools
  exported as the equal depthwise convs (:func:`avd_pools_as_convs`).
  Reduced-range
  weights because CPUs without VNNI multiply u8 x s8 pairs into saturating
  int16 sums (AVX2's ``vpmaddubsw``): with full-range weights the toy
  detector's backbone fell to a per-level cosine of 0.990 on photographs on
  an AVX2 CPU, with [-64, 64] 0.997 (2 * 255 * 64 < 2**15: no sum can
  saturate), so one file does not lose accuracy on the CPUs without VNNI.
  onnxruntime rather than PyTorch's PT2E flow: torchao 0.18's
  ``X86InductorQuantizer`` rejects this network's graph ("Input partition
  has more than one output node", annotating the residual's conv + add +
  ReLU), PT2E needs a minute-long ``torch.compile`` per model, and
  onnxruntime's integer kernels run on AVX2 as well as on AVX512-VNNI.

onnxruntime sessions are made with spin-waiting off
(``session.intra_op.allow_spinning = 0``): a spinning worker pool keeps the
cores busy after each run and slows whatever runs next in the process (a
PyTorch model timed beside it, or the neck after the backbone).
"""
import copy
import os
from typing import Dict, Iterable, List, Optional, Tuple

import torch
from torch import Tensor, nn

from resnest_mm.deployment.backbone_onnx import export
from resnest_mm.models import ResNeSt
from resnest_mm.visualization.model_inputs import IMAGENET_MEAN, IMAGENET_STD

#: The precisions a deploy backbone can run in on a CPU.
PRECISIONS = ('fp32', 'bf16', 'int8')
#: The CPU instruction sets that make each low precision fast.
FAST_ON = {'bf16': ('avx512_bf16', 'amx_bf16'),
           'int8': ('avx512_vnni', 'avx_vnni', 'amx_int8')}


def cpu_features(cpuinfo: str = '/proc/cpuinfo') -> Dict[str, object]:
    """The CPU's model name, torch's kernel level and which of the
    instruction sets in :data:`FAST_ON` it has (read from Linux's
    ``cpuinfo``; all ``False`` where there is none)."""
    flags, model = set(), 'unknown'
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(':')
                if key.strip() == 'flags' and not flags:
                    flags = set(value.split())
                elif key.strip() == 'model name' and model == 'unknown':
                    model = value.strip()
    except OSError:
        pass
    wanted = sorted({f for names in FAST_ON.values() for f in names})
    return dict(model=model,
                torch_capability=torch.backends.cpu.get_cpu_capability(),
                **{f: f in flags for f in wanted})


def describe_cpu(cpu: Dict[str, object]) -> str:
    """``cpu_features()`` in words, for a table's provenance: the model,
    torch's kernel level and the fast instruction sets it has."""
    fast = [k for k, v in cpu.items() if v is True]
    return (f"{cpu['model']} (torch kernels {cpu['torch_capability']}; "
            f"{', '.join(fast) or 'no AVX512-BF16/VNNI/AMX'})")


def slow_precision_notes(precisions: Iterable[str]) -> List[str]:
    """One sentence per precision this CPU runs without its fast
    instructions, so that a reader does not take its speed as typical."""
    return [f'This CPU has none of {", ".join(FAST_ON[p])}: {p} runs without '
            'its fast instructions here, so its speed says nothing about a '
            'CPU that has them.' for p in precisions]


def native_support(precision: str,
                   features: Optional[Dict[str, object]] = None) -> bool:
    """Whether the CPU (``features`` of :func:`cpu_features`, default this
    one) has instructions that make ``precision`` fast."""
    features = cpu_features() if features is None else features
    return any(features.get(f) for f in FAST_ON.get(precision, ()))


def slow_precision_warning(
        precision: str,
        features: Optional[Dict[str, object]] = None) -> Optional[str]:
    """The warning a run in ``precision`` logs when the CPU (``features``
    of :func:`cpu_features`, default this one) lacks the instructions that
    make ``precision`` fast (the metrics hold, the speed does not); ``None``
    where it has them or ``precision`` needs none."""
    if precision not in FAST_ON or native_support(precision, features):
        return None
    return (f'this CPU has none of {", ".join(FAST_ON[precision])}: '
            f'{precision} runs without them, so the metrics hold but the '
            'speed here is no guide to a CPU that has them')


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f'precision={precision!r}; choose from {PRECISIONS}')


def deploy_copy(backbone: ResNeSt, channels_last: bool = False) -> ResNeSt:
    """An eval-mode, float32 deploy copy of a trained backbone, in NCHW or
    (``channels_last``) NHWC."""
    if not isinstance(backbone, ResNeSt):
        raise TypeError('low-precision inference needs resnest_mm\'s ResNeSt '
                        f'backbone, not {type(backbone).__name__}')
    model = copy.deepcopy(backbone).float().eval()
    if model.deploy:
        model.to(memory_format=torch.channels_last if channels_last
                 else torch.contiguous_format)
        model.channels_last = channels_last
    else:
        model.switch_to_deploy(channels_last=channels_last)
    return model.eval()


class Bf16Backbone(nn.Module):
    """A deploy backbone whose convs run in bfloat16, NHWC.

    Args:
        deploy: a deploy-mode :class:`ResNeSt` (see :func:`deploy_copy`).
        compile: run it under ``torch.compile`` with frozen weights (the
            first call compiles: about a minute for ResNeSt-50 on 2 cores).
    """

    def __init__(self, deploy: ResNeSt, compile: bool = False) -> None:
        super().__init__()
        self.model = deploy.to(torch.bfloat16).to(
            memory_format=torch.channels_last).eval()
        self.run = self.model
        if compile:
            import torch._inductor.config as inductor_config
            inductor_config.freezing = True
            self.run = torch.compile(self.model)

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        return tuple(o.float().contiguous() for o in self.run(x))


def ort_session(path: str, threads: Optional[int] = None):
    """An onnxruntime CPU session with spin-waiting off and ``threads``
    intra-op threads (default: torch's thread count)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    options.add_session_config_entry('session.inter_op.allow_spinning', '0')
    return ort.InferenceSession(path, options,
                                providers=['CPUExecutionProvider'])


class OrtBackbone(nn.Module):
    """An exported backbone (fp32 or int8 ONNX file) run by onnxruntime,
    called like the PyTorch backbone: ``(B, 3, H, W)`` float32 in, a tuple of
    float32 feature maps out."""

    def __init__(self, path: str, threads: Optional[int] = None) -> None:
        super().__init__()
        self.path = path
        self.session = ort_session(path, threads)
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        image = x.detach().float().contiguous().cpu().numpy()
        outs = self.session.run(None, {self.input_name: image})
        return tuple(torch.from_numpy(o) for o in outs)


def avd_pools_as_convs(deploy: ResNeSt) -> ResNeSt:
    """A copy of ``deploy`` whose avd pools, ``AvgPool2d(3, s, padding=1)``
    with the zero padding counted, are depthwise 3x3 convs of weight 1/9:
    the same numbers (up to float rounding), which onnxruntime quantizes to
    its depthwise ``QLinearConv`` rather than ``QLinearAveragePool``, its
    slowest int8 kernel per element here (ResNeSt-50, batch 2, 224 px, an
    AVX512-VNNI EPYC: the three pools took about 1.5 of 28 ms; as convs the
    int8 model ran 1.3 ms faster).
    """
    model = copy.deepcopy(deploy)
    for block in model.modules():
        pool = getattr(block, 'avd_layer', None)
        if not isinstance(pool, nn.AvgPool2d):
            continue
        if (pool.kernel_size, pool.padding, pool.ceil_mode,
                pool.count_include_pad) != (3, 1, False, True):
            raise ValueError(f'avd pool {pool} is not a zero-padded 3x3 '
                             'average: no depthwise conv equals it')
        channels = block.conv3.in_channels
        conv = nn.Conv2d(channels, channels, 3, pool.stride, 1,
                         groups=channels, bias=False)
        nn.init.constant_(conv.weight, 1 / 9)
        block.avd_layer = conv
    return model.eval()


class _Calibration:
    """onnxruntime's ``CalibrationDataReader`` over a list of batches."""

    def __init__(self, batches: List[Tensor]) -> None:
        self.batches = iter(batches)

    def get_next(self) -> Optional[dict]:
        batch = next(self.batches, None)
        return None if batch is None else {'image': batch.float().numpy()}


def quantize_int8(deploy: ResNeSt, calibration: Iterable[Tensor],
                  path: str) -> str:
    """Export ``deploy`` to ONNX and quantize it statically to ``path``.

    ``calibration``: preprocessed image batches ``(B, 3, H, W)`` (sizes may
    differ); the activation ranges are their min/max. The fp32 export is
    kept beside it as ``<path stem>_fp32.onnx`` (with the avd pools as
    convs, :func:`avd_pools_as_convs`). Returns ``path``.
    """
    from onnxruntime.quantization import QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    batches = list(calibration)
    if not batches:
        raise ValueError('int8 quantization needs calibration images; got '
                         'none')
    stem = os.path.splitext(path)[0]
    fp32_path, prepared = f'{stem}_fp32.onnx', f'{stem}_prepared.onnx'
    export(avd_pools_as_convs(deploy), fp32_path,
           input_size=int(batches[0].shape[-1]))
    # constant folding and ORT's graph optimisations before quantizing; the
    # symbolic shape pass cannot follow the split-attention reshapes
    quant_pre_process(fp32_path, prepared, skip_symbolic_shape=True)
    quantize_static(prepared, path, _Calibration(batches),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, reduce_range=True)
    os.remove(prepared)
    return path


def low_precision_backbone(backbone: ResNeSt, precision: str,
                           work_dir: str,
                           calibration: Iterable[Tensor] = (),
                           compile: bool = False) -> nn.Module:
    """A trained ``backbone`` as a module of the same call signature running
    in ``precision``: fp32 = the eval-mode deploy model, bf16 =
    :class:`Bf16Backbone`, int8 = :class:`OrtBackbone` on the quantized file
    ``<work_dir>/backbone_int8.onnx`` (calibrated on ``calibration``)."""
    check_precision(precision)
    deploy = deploy_copy(backbone)
    if precision == 'fp32':
        return deploy
    if precision == 'bf16':
        return Bf16Backbone(deploy, compile=compile)
    os.makedirs(work_dir, exist_ok=True)
    path = quantize_int8(deploy, calibration,
                         os.path.join(work_dir, 'backbone_int8.onnx'))
    return OrtBackbone(path)


#: scikit-image's photographs (shipped in its wheel, no download): the
#: features are checked on the first set, int8 is calibrated on the second.
CHECK_PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png',
                'motorcycle_left.png')
CALIBRATION_PHOTOS = ('rocket.jpg', 'motorcycle_right.png',
                      'hubble_deep_field.jpg', 'ihc.png', 'retina.jpg')


def photo_batches(names: Iterable[str], size: int,
                  mean: Optional[Iterable[float]] = None,
                  std: Optional[Iterable[float]] = None) -> List[Tensor]:
    """scikit-image sample photographs, each resized to ``size`` x ``size``
    and normalised as ``(rgb - mean) / std`` with ``mean`` and ``std`` on
    0-255 RGB, as in a config's data preprocessor (default: ImageNet's):
    ``(1, 3, size, size)`` each."""
    import numpy as np
    import skimage
    from PIL import Image
    folder = os.path.join(os.path.dirname(skimage.__file__), 'data')
    mean = [255 * m for m in IMAGENET_MEAN] if mean is None else list(mean)
    std = [255 * s for s in IMAGENET_STD] if std is None else list(std)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    batches = []
    for name in names:
        image = Image.open(os.path.join(folder, name)).convert('RGB')
        pixels = np.asarray(image.resize((size, size), Image.BILINEAR))
        x = torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float()
        batches.append((x - mean_t) / std_t)
    return batches


def level_cosines(reference: Iterable[Tensor],
                  other: Iterable[Tensor]) -> List[float]:
    """Per level, the cosine similarity of the two feature maps, each
    flattened over the whole batch. Computed in float64: float32 sums over
    a few million elements put a map's cosine with itself above 1."""
    return [torch.nn.functional.cosine_similarity(
        a.double().flatten(), b.double().flatten(), dim=0).item()
        for a, b in zip(reference, other)]
