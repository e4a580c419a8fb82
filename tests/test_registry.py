"""``type='ResNeSt'`` builds our class from mmdet's, mmseg's, MMPretrain's
and mmengine's MODELS, also when any one toolbox is not installed."""
import subprocess
import sys
import textwrap

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS as MMENGINE_MODELS

import resnest_mm
from hidden_toolbox import run_without
from resnest_mm.models import ResNeSt
from resnest_mm.registry import TOOLBOXES


@pytest.mark.parametrize('scope', TOOLBOXES)
def test_toolbox_registry_builds_ours(scope):
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    model = registry.build(dict(type='ResNeSt', depth=14, out_indices=(1, 3)))
    assert type(model) is ResNeSt
    assert model.out_channels == (512, 2048)


def test_mmengine_root_registry_builds_ours():
    assert type(MMENGINE_MODELS.build(dict(type='ResNeSt', depth=14))) is ResNeSt


def test_detector_config_with_custom_imports_builds_ours(tmp_path):
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(textwrap.dedent('''
        custom_imports = dict(imports=['resnest_mm'], allow_failed_imports=False)
        default_scope = 'mmdet'
        model = dict(type='ResNeSt', depth=50, stem_channels=64,
                     out_indices=(0, 1, 2, 3))
    '''))
    code = textwrap.dedent(f'''
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        cfg = Config.fromfile({str(cfg_file)!r})
        init_default_scope(cfg.default_scope)
        from mmdet.registry import MODELS
        model = MODELS.build(cfg.model)
        print(type(model).__module__)
    ''')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip().endswith('resnest_mm.models.resnest')


@pytest.mark.parametrize('missing', TOOLBOXES)
def test_works_without_any_one_toolbox(missing):
    """Registration goes on with the others, and every module of the package
    imports (none needs the missing toolbox)."""
    present = [t for t in TOOLBOXES if t != missing]
    out = run_without([missing], f'''
        import importlib, pkgutil
        import resnest_mm
        from resnest_mm.registry import register_resnest
        names = [m.name for m in pkgutil.walk_packages(
            resnest_mm.__path__, 'resnest_mm.')]
        for name in names:
            importlib.import_module(name)
        print(len(names), register_resnest())
        for toolbox in {present!r}:
            models = importlib.import_module(toolbox + '.registry').MODELS
            print(toolbox, type(models.build(
                dict(type='ResNeSt', depth=14))).__name__)
    ''')
    lines = out.strip().splitlines()
    count, registered = lines[0].split(' ', 1)
    assert int(count) > 40
    assert registered == repr(present)
    assert lines[1:] == [f'{toolbox} ResNeSt' for toolbox in present]


def test_registration_is_repeatable():
    assert resnest_mm.registry.register_resnest() == list(TOOLBOXES)
