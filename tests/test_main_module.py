"""``python -m resnest_mm`` says which class ``type='ResNeSt'`` builds in
each registry, a toolbox that is not installed as such, and fails when an
installed toolbox builds another class."""
import subprocess
import sys

import mmdet.models.backbones.resnest as mmdet_resnest
import pytest
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.registry import DefaultScope

from conftest import REPO
from hidden_toolbox import run_without
from resnest_mm.__main__ import OURS, main
from resnest_mm.registry import register_resnest


def test_every_installed_registry_builds_ours():
    run = subprocess.run([sys.executable, '-m', 'resnest_mm'], cwd=REPO,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith('resnest_mm 0.') and 'torch 2.' in lines[0]
    assert lines[1] == "type='ResNeSt' builds"
    rows = dict(line.split() for line in lines[2:])
    assert OURS == 'resnest_mm.models.resnest.ResNeSt'
    assert rows == {scope: OURS for scope in
                    ('mmengine', 'mmdet', 'mmseg', 'mmpretrain')}


def test_a_missing_toolbox_is_listed_as_not_installed():
    out = run_without(['mmseg'], '''
        from resnest_mm.__main__ import built_classes
        for scope, name in built_classes().items():
            print(scope, '|', name)
    ''')
    rows = dict(line.split(' | ') for line in out.splitlines())
    assert rows['mmseg'] == 'not installed'
    assert rows['mmdet'] == rows['mmengine'] == OURS


@pytest.fixture
def mmdet_own_resnest():
    """mmdet's registry building mmdet's own class, as without the plugin."""
    MMDET_MODELS.register_module('ResNeSt', module=mmdet_resnest.ResNeSt,
                                 force=True)
    yield
    register_resnest()


def test_another_class_fails_the_check(mmdet_own_resnest, capsys):
    assert main() == 1
    out, err = capsys.readouterr()
    assert 'mmdet.models.backbones.resnest.ResNeSt' in out
    assert "not resnest_mm's ResNeSt in: mmdet" in err


def test_a_default_scope_of_another_toolbox_does_not_hide_it(
        mmdet_own_resnest, capsys):
    """With mmseg's scope current, mmdet's registry would hand the build to
    mmseg's and report ours; each registry must be asked in its own scope."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        assert main() == 1
    assert "not resnest_mm's ResNeSt in: mmdet" in capsys.readouterr().err
