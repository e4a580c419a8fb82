"""Export a ResNeSt backbone (deploy mode) to ONNX and check it with onnxruntime.

    python tools/export_onnx.py --arch resnest50d --input-size 224 \\
        --out work_dirs/resnest50d.onnx [--checkpoint ours.pth]

The graph has one input, ``image`` ``(B, 3, H, W)``, and one named output per
returned level, ``c2`` .. ``c5`` for strides 4 .. 32 (``c<log2 stride>``, the
FPN convention); batch, height and width are dynamic. BatchNorms are folded
into the convs first (``ResNeSt.switch_to_deploy``), so the file holds only
convs, ReLUs, pools, reshapes and the split-attention softmax. The export is
checked by running the same random image through PyTorch and onnxruntime
(CPU) and reporting the largest absolute difference over all outputs.
Uses torch's TorchScript-based exporter (``dynamo=False``), which needs no
package beyond ``onnx``; onnxruntime only for the check.
"""
import argparse
import math
import os
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import DictAction

from resnest_mm.models import ARCH_PRESETS, ResNeSt


def output_names(model: ResNeSt) -> List[str]:
    """``c<k>`` per returned level, with stride ``2**k``."""
    return [f'c{int(math.log2(s))}' for s in model.out_strides]


def build_deploy_model(arch: str, checkpoint: Optional[str] = None,
                       **kwargs) -> ResNeSt:
    """Our backbone with weights (optional) loaded, then in deploy mode.

    ``checkpoint``: a backbone state dict in our (= mmdet's/mmseg's) layout,
    or a detector/segmentor checkpoint, whose ``backbone.`` entries are used.
    ONNX has no memory layout, so the model stays NCHW.
    """
    model = ResNeSt(arch=arch, **kwargs)
    if checkpoint is not None:
        from mmengine.runner import CheckpointLoader
        state = CheckpointLoader.load_checkpoint(checkpoint, 'cpu')
        state = state.get('state_dict', state)
        if any(k.startswith('backbone.') for k in state):
            state = {k[len('backbone.'):]: v for k, v in state.items()
                     if k.startswith('backbone.')}
        model.load_state_dict(state, strict=True)
    return model.switch_to_deploy(channels_last=False)


def export(model: ResNeSt, path: str, input_size: int,
           opset: int = 17) -> List[str]:
    """Write ``model`` (deploy mode) to ``path``; returns the output names."""
    names = output_names(model)
    dynamic = {'image': {0: 'batch', 2: 'height', 3: 'width'}}
    dynamic.update({n: {0: 'batch', 2: f'{n}_height', 3: f'{n}_width'}
                    for n in names})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    x = torch.randn(1, 3, input_size, input_size)
    torch.onnx.export(model, (x,), path, input_names=['image'],
                      output_names=names, dynamic_axes=dynamic,
                      opset_version=opset, dynamo=False)
    return names


def check_with_onnxruntime(model: ResNeSt, path: str, batch_size: int,
                           input_size: int, seed: int = 0
                           ) -> Dict[str, float]:
    """Max absolute difference per output between PyTorch and onnxruntime."""
    import onnxruntime as ort
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, 3, input_size, input_size, generator=gen)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    got = session.run(None, {'image': x.numpy()})
    with torch.no_grad():
        want = model(x)
    names = [o.name for o in session.get_outputs()]
    return {name: float(abs(g - w.numpy()).max())
            for name, g, w in zip(names, got, want)}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='resnest50d',
                        choices=sorted(ARCH_PRESETS))
    parser.add_argument('--checkpoint', default=None,
                        help='weights in our (mmdet/mmseg) layout')
    parser.add_argument('--input-size', type=int, default=224,
                        help='side of the example image used to trace')
    parser.add_argument('--check-batch-size', type=int, default=2,
                        help='batch of the onnxruntime check (tests the '
                        'dynamic batch axis)')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--out', default='work_dirs/resnest.onnx')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='extra ResNeSt arguments, key=value')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    if args.input_size < 32:
        raise ValueError(f'--input-size {args.input_size} is too small; '
                         'ResNeSt downsamples by 32, use at least 32')
    model = build_deploy_model(args.arch, args.checkpoint, **args.cfg_options)
    names = export(model, args.out, args.input_size, args.opset)
    diffs = check_with_onnxruntime(model, args.out, args.check_batch_size,
                                   args.input_size)
    print(f'exported {args.out}: outputs {", ".join(names)} (strides '
          f'{", ".join(map(str, model.out_strides))})')
    for name, diff in diffs.items():
        print(f'  {name}: max abs diff vs PyTorch {diff:.3g}')
    print(f'max abs diff {max(diffs.values()):.3g}')
    return diffs


if __name__ == '__main__':
    main()
