"""resnest_mm: ResNeSt backbones for MMDetection 3.x, MMSegmentation 1.x and
MMPretrain 1.x.

In an environment with torch and mmcv, ``pip install -e .`` adds the plugin
alone; ``bash tools/install.sh`` installs the whole pinned stack (mmcv 2.1.0
built from source against the installed torch). docs/en/get_started.md.
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

version: dict = {}
with open('resnest_mm/version.py') as f:
    exec(f.read(), version)
with open('README.md', encoding='utf-8') as f:
    readme = f.read()

#: What openmim reads from an installed package's ``.mim`` folder:
#: ``mim search`` the model index, ``mim train/test`` the configs and tools.
MIM_FILES = ('model-index.yml', 'configs', 'tools')
MIM_DIR = osp.join('resnest_mm', '.mim')


def add_mim_extension() -> None:
    """Put the model index, configs and tools into ``resnest_mm/.mim``, as
    mmdet's and mmseg's setup.py do: symlinks for an editable install
    (``develop``, or ``editable_wheel`` under pip >= 21.3), copies for a wheel
    or sdist, nothing for other commands (``egg_info``, ``dist_info``)."""
    if {'develop', 'editable_wheel'} & set(sys.argv):
        mode = 'copy' if os.name == 'nt' else 'symlink'  # no symlinks there
    elif {'bdist_wheel', 'sdist'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    os.makedirs(MIM_DIR, exist_ok=True)
    for name in MIM_FILES:
        target = osp.join(MIM_DIR, name)
        if osp.islink(target) or osp.isfile(target):
            os.remove(target)
        elif osp.isdir(target):
            shutil.rmtree(target)
        if mode == 'symlink':
            os.symlink(osp.relpath(name, MIM_DIR), target)
        elif osp.isdir(name):
            shutil.copytree(name, target,
                            ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copyfile(name, target)


add_mim_extension()

setup(
    name='resnest_mm',
    version=version['__version__'],
    description='ResNeSt (Split-Attention Networks) backbones for mmdet, '
    'mmseg and mmpretrain',
    long_description=readme,
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(include=['resnest_mm', 'resnest_mm.*']),
    # The copies add_mim_extension made (a wheel holds them; an editable
    # install reads the symlinks in the source tree).
    package_data={'resnest_mm': [
        '.mim/model-index.yml', '.mim/configs/**/*.py',
        '.mim/configs/**/*.yml', '.mim/tools/**/*.py', '.mim/tools/**/*.sh'
    ]},
    python_requires='>=3.8',
    # No torch: as with mmdet and mmseg, pip must never replace the user's
    # torch (import resnest_mm names a torch older than 2.4).
    install_requires=['mmengine>=0.10.4', 'mmcv>=2.0.0,<2.2.0'],
    extras_require={
        'det': ['mmdet>=3.3.0,<3.4.0'],
        'seg': ['mmsegmentation>=1.2.2,<1.3.0', 'ftfy', 'regex'],
        # classification (MMPretrain configs, the toy classifier); 1.2.0 is
        # the version tested
        'cls': ['mmpretrain>=1.2.0,<1.3.0'],
        # ONNX export and int8 inference (tools/deployment/, --backbone-precision)
        'deploy': ['onnx==1.23.2', 'onnxruntime==1.32.0',
                   'scikit-image==0.25.2'],
        'tests': ['pytest', 'resnest==0.0.5', 'mmpretrain==1.2.0', 'timm==1.0.31',
                  'onnx==1.23.2', 'onnxruntime==1.32.0'],
    },
)
