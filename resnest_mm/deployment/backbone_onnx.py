"""The backbone alone in ONNX: deploy mode (folded BN), named outputs.

The graph has one input, ``image`` ``(B, 3, H, W)``, and one named output per
returned level, ``c2`` .. ``c5`` for strides 4 .. 32 (``c<log2 stride>``, the
FPN convention); batch, height and width are dynamic. The BatchNorms are
folded into the convs first (``ResNeSt.switch_to_deploy``), so the file holds
only convs, ReLUs, pools, reshapes and the split-attention softmax. Uses
torch's TorchScript-based exporter (``dynamo=False``), which needs no package
beyond ``onnx``; onnxruntime only for the check.
"""
import math
import os
from typing import Dict, List, Optional

import torch

from resnest_mm.models import ResNeSt


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
