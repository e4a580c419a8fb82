"""tools/model_converters/convert_weights.py: convert, report, refuse."""
import pytest
import resnest.torch as official
import torch

from conftest import load_tool, randomize_
from resnest_mm.models import ResNeSt
from resnest_mm.weights import convert_checkpoint, read_weights
from resnest_mm.weights.arch_check import ARCH_METADATA_KEY
from resnest_mm.weights.convert_file import convert_file
from test_convert_equivalence import _fast_cpu  # noqa: F401 (autouse)


@pytest.fixture(scope='module')
def fast_2s1x64d(tmp_path_factory):
    """An official release-style file whose variant the shapes leave open."""
    path = tmp_path_factory.mktemp('src') / 'resnest50_fast_2s1x64d.pth'
    torch.save(randomize_(official.resnest50_fast_2s1x64d()).state_dict(),
               path)
    return str(path)


def test_converts_reports_and_writes_a_loadable_checkpoint(fast_2s1x64d,
                                                            tmp_path):
    dst = str(tmp_path / 'out.pth')
    lines = convert_file(fast_2s1x64d, dst, arch='resnest50_fast_2s1x64d')
    assert lines[0].endswith(': official layout, kept 474 tensors, left out '
                             '2: classifier head (fc.weight, fc.bias)')
    assert lines[-1].startswith('target: resnest50_fast_2s1x64d (depth=50, '
                                'stem_channels=64, radix=2, groups=1, '
                                'avd_first=True); wrote ')
    written = torch.load(dst, weights_only=True)
    assert written['meta']['source_format'] == 'official'
    assert written['state_dict']._metadata[''][ARCH_METADATA_KEY] == dict(
        arch='resnest50_fast_2s1x64d', avd_first=True)
    expected = convert_checkpoint(read_weights(fast_2s1x64d)).state_dict
    assert all(torch.equal(written['state_dict'][k], v)
               for k, v in expected.items())
    ResNeSt(arch='resnest50_fast_2s1x64d').load_state_dict(
        written['state_dict'], strict=True)


def test_without_a_target_the_weights_choose_and_ambiguity_is_noted(
        fast_2s1x64d, tmp_path):
    dst = str(tmp_path / 'out.pth')
    lines = convert_file(fast_2s1x64d, dst)
    assert ('note: the weights fit resnest50d and resnest50_fast_2s1x64d, '
            'which differ only in avd_first; taking resnest50d, pass --arch '
            'resnest50_fast_2s1x64d for the other') in lines
    # avd_first was a guess, so it is not recorded
    recorded = torch.load(dst, weights_only=True)['state_dict']._metadata['']
    assert recorded[ARCH_METADATA_KEY] == dict(arch='resnest50d')


def test_another_variant_is_refused(fast_2s1x64d, tmp_path):
    with pytest.raises(SystemExit, match="error: checkpoint does not fit this "
                       "ResNeSt: layer3 has 6 blocks in the checkpoint, 23 in "
                       "the model.*arch='resnest50d'"):
        convert_file(fast_2s1x64d, str(tmp_path / 'out.pth'),
                     arch='resnest101e')
    assert not (tmp_path / 'out.pth').exists()


def test_a_contradicting_from_is_refused(fast_2s1x64d, tmp_path):
    with pytest.raises(ValueError, match="source_format='mmpretrain' but the "
                       'keys are in the official layout'):
        convert_file(fast_2s1x64d, str(tmp_path / 'out.pth'), 'mmcls')


def test_keys_without_a_place_stop_the_tool_unless_allowed(fast_2s1x64d,
                                                           tmp_path):
    src = tmp_path / 'extra.pth'
    torch.save(dict(torch.load(fast_2s1x64d, weights_only=True),
                    **{'layer2.0.se.fc.weight': torch.zeros(1)}), src)
    dst = tmp_path / 'out.pth'
    with pytest.raises(SystemExit, match=r"1 keys of .* have no place in "
                       r"ResNeSt: \['layer2.0.se.fc.weight'\]; nothing written"):
        convert_file(str(src), str(dst))
    assert not dst.exists()
    lines = convert_file(str(src), str(dst), allow_unplaced=True)
    assert "dropped without a place: ['layer2.0.se.fc.weight']" in lines
    assert dst.exists()


def test_cfg_options_and_main(fast_2s1x64d, tmp_path, capsys):
    dst = str(tmp_path / 'out.pth')
    load_tool('model_converters/convert_weights.py').main([
        fast_2s1x64d, dst, '--from', 'timm', '--cfg-options', 'depth=50',
        'stem_channels=64', 'radix=2', 'avd_first=True'])
    assert 'avd_first=True); wrote' in capsys.readouterr().out
    recorded = torch.load(dst, weights_only=True)['state_dict']._metadata['']
    assert recorded[ARCH_METADATA_KEY] == dict(arch=None, avd_first=True)

