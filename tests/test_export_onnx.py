"""tools/deployment/export_onnx.py: deploy-mode backbone -> ONNX ->
onnxruntime round trip."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from conftest import load_tool, randomize_
from resnest_mm.models import ResNeSt
from resnest_mm.deployment.backbone_onnx import (build_deploy_model,
                                                 output_names)

main = load_tool('deployment/export_onnx.py').main

#: onnxruntime against the eval-mode model, whose BatchNorms the export
#: folded: the deploy-mode bound of tests/test_deploy.py.
TOL = 1e-4


def test_round_trip_on_a_small_variant(tmp_path, capsys):
    path = tmp_path / 'resnest14d.onnx'
    diffs = main(['--arch', 'resnest14d', '--input-size', '64',
                  '--check-batch-size', '2', '--out', str(path)])
    # named levels, checked at batch 2 against a trace at batch 1
    assert list(diffs) == ['c2', 'c3', 'c4', 'c5']
    assert max(diffs.values()) <= TOL
    graph = onnx.load(str(path)).graph
    assert [o.name for o in graph.output] == ['c2', 'c3', 'c4', 'c5']
    assert [i.name for i in graph.input] == ['image']
    # folded: no BatchNormalization node left
    assert 'BatchNormalization' not in {n.op_type for n in graph.node}
    assert 'max abs diff' in capsys.readouterr().out


def test_trained_statistics_and_another_image_size(tmp_path):
    """Weights with non-trivial BatchNorm statistics (``randomize_``: with
    the default mean 0, variance 1 a wrong fold still passes) from
    ``--checkpoint``, traced at 64x64; the same file then runs a 96x64
    batch of 3 (height and width are dynamic) as the eval-mode model."""
    model = randomize_(ResNeSt(arch='resnest14d')).eval()
    checkpoint = tmp_path / 'random.pth'
    torch.save(model.state_dict(), checkpoint)
    path = tmp_path / 'resnest14d.onnx'
    main(['--arch', 'resnest14d', '--checkpoint', str(checkpoint),
          '--input-size', '64', '--out', str(path)])
    x = torch.randn(3, 3, 96, 64)
    session = ort.InferenceSession(str(path),
                                   providers=['CPUExecutionProvider'])
    got = session.run(None, {'image': x.numpy()})
    with torch.no_grad():
        want = [w.numpy() for w in model(x)]
    assert [g.shape for g in got] == [(3, c, 96 // s, 64 // s) for c, s in
                                      zip(model.out_channels,
                                          model.out_strides)]
    diffs = [float(np.abs(g - w).max()) for g, w in zip(got, want)]
    assert max(diffs) <= TOL, diffs


def test_names_follow_the_returned_strides():
    model = build_deploy_model('resnest14d', out_indices=(1, 3),
                               strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2))
    assert output_names(model) == ['c3', 'c4']


def test_too_small_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match='--input-size 16 is too small'):
        main(['--arch', 'resnest14d', '--input-size', '16',
              '--out', str(tmp_path / 'x.onnx')])
