"""A config's validation set and metric, with a shipped file as the model.

:func:`evaluate_onnx` runs the config's ``val_dataloader`` through
:class:`~resnest_mm.deployment.deployed_model.DeployedModel` (the file's own
runtime: onnxruntime for ``.onnx``, PyTorch for ``.pt2``), which turns the
file's outputs into ``DetDataSample.pred_instances`` / ``SegDataSample``
predictions as mmdet's and mmseg's ``predict`` would, and scores them with
the config's ``val_evaluator``: the numbers ``tools/test.py`` prints for the
PyTorch model (``tools/test.py CONFIG FILE`` runs the same model in the
config's test loop).
"""
from typing import Dict, Optional

import torch

from resnest_mm.deployment.deployed_model import DeployedModel
from resnest_mm.deployment.model_export import load_config


def evaluate_onnx(config: str, onnx_path: str,
                  cfg_options: Optional[dict] = None,
                  loader: str = 'val_dataloader') -> Dict[str, float]:
    """The config's evaluator metrics of the shipped file ``onnx_path``
    (``.onnx`` or ``.pt2``) on the config's ``loader`` (``val_dataloader``
    with ``val_evaluator``, or ``test_dataloader`` with
    ``test_evaluator``); each image runs alone at its padded size."""
    from mmengine.evaluator import Evaluator
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    cfg, scope = load_config(config, cfg_options)
    if scope == 'mmseg' and cfg.model.decode_head.get('num_classes') == 1:
        raise ValueError('decode_head.num_classes is 1; evaluation supports '
                         'softmax (argmax) segmentors only')
    model = DeployedModel(onnx_path, cfg.model.data_preprocessor,
                          config=config)
    with DefaultScope.overwrite_default_scope(scope):
        data_loader = Runner.build_dataloader(cfg[loader])
        evaluator = Evaluator(cfg[loader.replace('dataloader', 'evaluator')])
        evaluator.dataset_meta = data_loader.dataset.metainfo
        for batch in data_loader:
            with torch.no_grad():
                samples = model.test_step(batch)
            evaluator.process(samples, batch)
        return evaluator.evaluate(len(data_loader.dataset))
