"""setup.py adds the plugin to an existing mmdet/mmseg environment without
replacing anything there: no torch requirement at all (pip would otherwise
fetch a CUDA build over the user's torch), an mmcv range that takes the
mmcv 2.0/2.1 of mmdet 3.3 and mmseg 1.2 users, and, in this environment,
nothing to install but the plugin itself."""
import json
import shutil
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

from conftest import REPO


@pytest.fixture(scope='module')
def pip_report(tmp_path_factory) -> dict:
    """pip's dry-run report for ``pip install ".[det,seg]"`` of a copy of the
    checkout, offline, with this environment's setuptools."""
    src = tmp_path_factory.mktemp('src')
    for name in ('setup.py', 'README.md'):
        shutil.copy(REPO / name, src)
    shutil.copytree(REPO / 'resnest_mm', src / 'resnest_mm',
                    ignore=shutil.ignore_patterns('__pycache__', '.mim'))
    run = subprocess.run([
        sys.executable, '-m', 'pip', 'install', '--dry-run', '--quiet',
        '--report', '-', '--no-index', '--no-build-isolation',
        '--disable-pip-version-check', f'{src}[det,seg]'
    ], capture_output=True, text=True, cwd=src)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def test_nothing_but_the_plugin_would_be_installed(pip_report):
    names = [item['metadata']['name'] for item in pip_report['install']]
    assert names == ['resnest_mm']


def test_no_torch_requirement_and_mmcv_of_the_toolboxes_users(pip_report):
    requires = [Requirement(r) for r in
                pip_report['install'][0]['metadata']['requires_dist']]
    names = {r.name for r in requires}
    assert not names & {'torch', 'torchvision'}
    assert {'mmengine', 'mmcv'} <= names
    mmcv, = [r for r in requires if r.name == 'mmcv']
    for version in ('2.0.0', '2.0.1', '2.1.0'):
        assert mmcv.specifier.contains(version), (mmcv, version)
    assert not mmcv.specifier.contains('2.2.0')  # mmdet 3.3 refuses it
