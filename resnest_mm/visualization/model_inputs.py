"""Models and input images for the split-attention viewer.

Two ways in:

* a detector, segmentor or classifier config: the model is built through
  ``MODELS`` under the config's ``default_scope`` (``mmdet``, ``mmseg``,
  ``mmpretrain``), the image goes through the config's test pipeline
  (annotation steps dropped) and the model's data preprocessor, and the
  backbone is ``model.backbone``;
* a bare ``arch`` preset (``resnest50d``): the image is resized (longer side
  ``size``, both sides multiples of 32) and normalised with the ImageNet
  mean and std.

Each returns the network input ``(1, 3, H, W)`` and the picture the maps are
drawn over, ``(H, W, 3)`` uint8 RGB in the same frame.
"""
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import load_checkpoint
from PIL import Image
from torch import Tensor, nn

from resnest_mm.engine.run_config import read_config
from resnest_mm.models import ResNeSt

#: Test-pipeline steps that need annotations, dropped for a bare image.
ANNOTATION_STEPS = ('LoadAnnotations', 'CheckSegMap')
#: ImageNet's RGB mean and std on 0-1 (the configs' data preprocessors hold
#: them times 255).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_file(path: str, argument: str) -> None:
    """Raise ``FileNotFoundError`` naming ``argument`` if ``path`` is not a
    file (URLs and ``scheme://`` checkpoints are left to their loader)."""
    if '://' not in path and not os.path.isfile(path):
        raise FileNotFoundError(f'{argument}={path!r}: no such file')


def image_out_dirs(images: Sequence[str], out_dir: str) -> List[str]:
    """``<out_dir>/<image name without extension>`` for each image; raises
    ``ValueError`` naming both images where two would share a folder (one's
    views would silently replace the other's)."""
    dirs, seen = [], {}
    for image in images:
        path = os.path.join(out_dir,
                            os.path.splitext(os.path.basename(image))[0])
        if path in seen:
            raise ValueError(
                f'images {seen[path]!r} and {image!r} would both write to '
                f'{path!r}: rename one, or view them with separate --out-dir')
        seen[path] = image
        dirs.append(path)
    return dirs


def _load_weights(model: nn.Module, checkpoint: Optional[str]) -> None:
    if checkpoint is not None:
        check_file(checkpoint, 'checkpoint')
        load_checkpoint(model, checkpoint, map_location='cpu')


def build_config_model(config: str,
                       checkpoint: Optional[str] = None,
                       cfg_options: Optional[dict] = None,
                       device: str = 'cpu') -> Tuple[nn.Module, Config]:
    """The config's model in eval mode, with ``checkpoint`` loaded, and the
    config (after ``cfg_options``).

    A top-level ``data_preprocessor`` (MMPretrain's configs keep the
    normalisation there) fills the model's, as mmengine's Runner does.
    """
    cfg = read_config(config, cfg_options)
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        model = MODELS.build(model_cfg)
    if not isinstance(getattr(model, 'backbone', None), nn.Module):
        raise ValueError(f'config={config!r} builds a {type(model).__name__} '
                         'without a backbone attribute')
    _load_weights(model, checkpoint)
    return model.to(device).eval(), cfg


def _test_pipeline(cfg: Config) -> list:
    if 'test_dataloader' in cfg:
        steps = cfg.test_dataloader.dataset.pipeline
    elif 'test_pipeline' in cfg:
        steps = cfg.test_pipeline
    else:
        raise ValueError('the config has neither test_dataloader nor '
                         'test_pipeline: cannot prepare an image')
    return [
        step for step in steps
        if step['type'].split('.')[-1] not in ANNOTATION_STEPS
    ]


@torch.no_grad()
def config_image_batch(model: nn.Module, cfg: Config,
                       image_path: str) -> Tuple[Tensor, np.ndarray]:
    """``image_path`` through the test pipeline and ``model``'s data
    preprocessor: ``(1, 3, H, W)`` network input and the ``(H, W, 3)`` RGB
    picture (padded like the input)."""
    check_file(image_path, 'image')
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        pipeline = Compose(_test_pipeline(cfg))
        data = pipeline(dict(img_path=image_path, img_id=0))
    batch = model.data_preprocessor(
        dict(inputs=[data['inputs']], data_samples=[data['data_samples']]),
        False)['inputs']
    # mmcv loads BGR; the preprocessor pads at the bottom and right
    picture = data['inputs'].flip(0).permute(1, 2, 0).cpu().numpy()
    padded = np.zeros((*batch.shape[2:], 3), dtype=np.uint8)
    padded[:picture.shape[0], :picture.shape[1]] = picture
    return batch, padded


def build_arch_backbone(arch: str,
                        checkpoint: Optional[str] = None,
                        device: str = 'cpu') -> ResNeSt:
    """A ``ResNeSt(arch=arch)`` backbone in eval mode, ``checkpoint`` loaded
    (a backbone, official or timm file; see :mod:`resnest_mm.weights`)."""
    backbone = ResNeSt(arch=arch)
    _load_weights(backbone, checkpoint)
    return backbone.to(device).eval()


def arch_image_batch(image_path: str,
                     size: int = 224) -> Tuple[Tensor, np.ndarray]:
    """``image_path`` resized (longer side ``size``, sides rounded to
    multiples of 32) and ImageNet-normalised: ``(1, 3, H, W)`` and the
    ``(H, W, 3)`` RGB picture."""
    check_file(image_path, 'image')
    if size < 32:
        raise ValueError(f'size={size} must be at least 32')
    image = Image.open(image_path).convert('RGB')
    scale = size / max(image.size)
    width, height = (max(32, round(side * scale / 32) * 32)
                     for side in image.size)
    picture = np.array(image.resize((width, height), Image.BILINEAR))
    batch = torch.from_numpy(picture).permute(2, 0, 1).float()[None] / 255
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (batch - mean) / std, picture
