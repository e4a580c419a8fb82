"""tools/export_onnx.py: deploy-mode backbone -> ONNX -> onnxruntime round trip."""
import onnx
import pytest

from tools.export_onnx import build_deploy_model, main, output_names


def test_round_trip_on_a_small_variant(tmp_path, capsys):
    path = tmp_path / 'resnest14d.onnx'
    diffs = main(['--arch', 'resnest14d', '--input-size', '64',
                  '--check-batch-size', '2', '--out', str(path)])
    # named levels, checked at batch 2 against a trace at batch 1
    assert list(diffs) == ['c2', 'c3', 'c4', 'c5']
    assert max(diffs.values()) <= 1e-4
    graph = onnx.load(str(path)).graph
    assert [o.name for o in graph.output] == ['c2', 'c3', 'c4', 'c5']
    assert [i.name for i in graph.input] == ['image']
    # folded: no BatchNormalization node left
    assert 'BatchNormalization' not in {n.op_type for n in graph.node}
    assert 'max abs diff' in capsys.readouterr().out


def test_names_follow_the_returned_strides():
    model = build_deploy_model('resnest14d', out_indices=(1, 3),
                               strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2))
    assert output_names(model) == ['c3', 'c4']


def test_too_small_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match='--input-size 16 is too small'):
        main(['--arch', 'resnest14d', '--input-size', '16',
              '--out', str(tmp_path / 'x.onnx')])
