"""The flags tools/train.py and tools/test.py share, and the torchrun
wrappers that pass them on."""
import os
import stat
import subprocess

import pytest

from conftest import load_tool
from toy_runs import REPO

test_tool = load_tool('test.py')
train_tool = load_tool('train.py')


@pytest.mark.parametrize('parse, positional', [
    (train_tool.parse_args, ['cfg.py']),
    (test_tool.parse_args, ['cfg.py', 'ckpt.pth']),
])
def test_shared_flags(parse, positional, monkeypatch):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    args = parse(positional + [
        '--cfg-options', 'train_cfg.max_epochs=3', 'model.backbone.radix=4',
        '--launcher', 'pytorch', '--local-rank', '2'])
    assert args.cfg_options == {'train_cfg.max_epochs': 3,
                                'model.backbone.radix': 4}
    assert args.launcher == 'pytorch'
    assert os.environ['LOCAL_RANK'] == '2'


def test_torchrun_rank_wins_over_flag(monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '1')
    train_tool.parse_args(['cfg.py', '--local_rank', '0'])
    assert os.environ['LOCAL_RANK'] == '1'


def test_unknown_launcher_is_rejected(capsys):
    with pytest.raises(SystemExit):
        test_tool.parse_args(['cfg.py', 'ckpt.pth', '--launcher', 'k8s'])
    assert "invalid choice: 'k8s'" in capsys.readouterr().err


@pytest.mark.parametrize('wrapper, args, expected', [
    ('dist_train.sh', ['c.py', '4', '--resume'],
     ['train.py', 'c.py', '--resume', '--launcher', 'pytorch']),
    ('dist_test.sh', ['c.py', 'k.pth', '3', '--tta'],
     ['test.py', 'c.py', 'k.pth', '--tta', '--launcher', 'pytorch']),
])
def test_dist_wrappers_call_torchrun(wrapper, args, expected, tmp_path,
                                     monkeypatch):
    """The wrappers hand torchrun the process count, the rendezvous from
    the environment, the tool, its arguments and ``--launcher pytorch``
    (a stand-in torchrun on PATH records what it gets)."""
    fake = tmp_path / 'torchrun'
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > '
                    f'{tmp_path}/argv\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv('PATH', f'{tmp_path}:{os.environ["PATH"]}')
    monkeypatch.setenv('PORT', '29611')
    subprocess.run(['bash', str(REPO / 'tools' / wrapper), *args],
                   check=True)
    argv = (tmp_path / 'argv').read_text().split('\n')[:-1]
    nproc = args[1] if wrapper == 'dist_train.sh' else args[2]
    assert f'--nproc_per_node={nproc}' in argv
    assert '--master_port=29611' in argv
    script = next(i for i, a in enumerate(argv) if a.endswith('.py'))
    assert argv[script] == str(REPO / 'tools' / expected[0])
    assert argv[script + 1:] == expected[1:]


def test_cpu_process_group_is_ended_at_exit(monkeypatch):
    """``--launcher pytorch`` without a GPU starts a gloo group and leaves
    ``destroy_process_group`` to run at exit, before the interpreter tears
    gloo's threads down."""
    import atexit
    import socket

    import torch.distributed as dist
    from mmengine.config import Config

    from resnest_mm.engine.run_config import setup_cpu_distributed
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    for key, value in dict(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                           RANK='0', WORLD_SIZE='1', LOCAL_RANK='0').items():
        monkeypatch.setenv(key, value)
    at_exit = []
    monkeypatch.setattr(atexit, 'register', at_exit.append)
    setup_cpu_distributed(Config(dict(launcher='pytorch')))
    try:
        assert dist.is_initialized()
        assert at_exit == [dist.destroy_process_group]
    finally:
        dist.destroy_process_group()
