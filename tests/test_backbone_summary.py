import subprocess
import sys

import pytest

from resnest_mm.analysis.backbone_summary import summarize


def test_lists_every_level_with_its_real_shape():
    lines = summarize('resnest14d', 64, out_indices=(1, 3))
    assert lines[0].startswith('resnest14d depth=14 params=')
    assert 'out[1] channels= 512 stride= 8 shape=(1, 512, 8, 8)' in lines[1]
    assert 'out[3] channels=2048 stride=32 shape=(1, 2048, 2, 2)' in lines[2]


def test_too_small_input_is_refused():
    with pytest.raises(ValueError, match='--input-size 16 is too small'):
        summarize('resnest14d', 16)


def test_command_line_with_cfg_options():
    out = subprocess.run(
        [sys.executable, 'tools/analysis_tools/backbone_summary.py',
         '--arch', 'resnest14d', '--input-size', '64', '--cfg-options', 'strides=1,2,1,1',
         'dilations=1,1,2,4', 'contract_dilation=True'],
        capture_output=True, text=True, check=True).stdout
    assert 'stride= 8 shape=(1, 2048, 8, 8)' in out
