"""openmim on the installed package: setup.py's ``.mim`` folder (model index,
configs, tools) is what ``mim search resnest_mm`` and ``mim train resnest_mm``
read.

mim looks for ``<site-packages>/resnest_mm/.mim``, which a wheel install has
and the checkout's PEP 660 editable install does not (docs/en/tools.md), so the
tests build a wheel from a copy of the checkout, unpack it into a folder and
run mim with that folder first on ``PYTHONPATH``: the same files a
``pip install .`` puts into site-packages.
"""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from modelindex import load

from resnest_mm.toy_data import make_toy_coco
from toy_runs import REPO

#: Not part of a source checkout's package: build outputs, data, run dirs.
NOT_SOURCE = shutil.ignore_patterns('.git', '.mim', 'build', 'data',
                                    'work_dirs', '*.egg-info', '__pycache__',
                                    '.pytest_cache')


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    """A folder holding resnest_mm as ``pip install .`` installs it."""
    root = tmp_path_factory.mktemp('mim')
    source = root / 'src'
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                    '--no-build-isolation', '-w', str(root / 'dist'),
                    str(source)], check=True, capture_output=True)
    wheel, = (root / 'dist').glob('resnest_mm-*.whl')
    with zipfile.ZipFile(wheel) as f:
        f.extractall(root / 'site')
    return root / 'site'


def _mim(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(site))
    proc = subprocess.run([sys.executable, '-m', 'mim', *args], cwd=cwd,
                          env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def test_wheel_holds_the_index_configs_and_tools(site):
    mim = site / 'resnest_mm/.mim'
    assert (mim / 'model-index.yml').is_file()
    assert (mim / 'configs/metafile.yml').is_file()
    assert (mim / 'configs/toy/faster_rcnn_resnest14_fpn_toy.py').is_file()
    assert (mim / 'tools/train.py').is_file()
    assert not any(p.is_symlink() for p in mim.rglob('*'))


def test_mim_search_lists_every_model(site, tmp_path):
    proc = _mim(site, 'search', 'resnest_mm', cwd=tmp_path)
    listed = {line.split(':', 1)[1].strip()
              for line in proc.stdout.splitlines()
              if line.startswith('config id:')}
    index = load(str(REPO / 'model-index.yml'))
    assert listed == {m.name for m in index.models}
    assert len(listed) > 20


def test_mim_train_runs_our_train_tool(site, tmp_path):
    """``mim train resnest_mm <config>`` finds the packaged config and runs the
    packaged ``tools/train.py`` (one epoch of the toy detector on four
    images)."""
    make_toy_coco(tmp_path / 'data/toy_coco', {'train2017': 4, 'val2017': 2})
    _mim(site, 'train', 'resnest_mm', 'faster_rcnn_resnest14_fpn_toy.py',
         '--work-dir', 'wd', '--cfg-options', 'train_cfg.max_epochs=1',
         cwd=tmp_path)
    state = torch.load(tmp_path / 'wd/epoch_1.pth', weights_only=True)
    assert 'backbone.layer4.0.conv2.fc2.weight' in state['state_dict']
