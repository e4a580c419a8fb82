"""``type='ResNeSt'`` builds our class from mmdet's, mmseg's and mmengine's MODELS."""
import subprocess
import sys
import textwrap

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS as MMENGINE_MODELS

import resnest_mm
from resnest_mm.models import ResNeSt


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
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


@pytest.mark.parametrize('missing,present', [('mmseg', 'mmdet'),
                                             ('mmdet', 'mmseg')])
def test_works_with_only_one_toolbox_installed(missing, present):
    code = textwrap.dedent(f'''
        import sys

        class Hide:  # as if {missing} were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] == {missing!r}:
                    raise ModuleNotFoundError(f'No module named {{name!r}}',
                                              name=name)

        sys.meta_path.insert(0, Hide())
        import resnest_mm
        from {present}.registry import MODELS
        from resnest_mm.registry import register_resnest
        print(register_resnest(), type(MODELS.build(
            dict(type='ResNeSt', depth=14))).__name__)
    ''')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == f"['{present}'] ResNeSt"


def test_registration_is_repeatable():
    assert resnest_mm.registry.register_resnest() == ['mmdet', 'mmseg']
