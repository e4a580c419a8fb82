"""resnest_mm: a ResNeSt backbone for MMDetection 3.x and MMSegmentation 1.x.

Install the OpenMMLab stack first (``bash tools/install.sh`` does all of it):
mmcv 2.1.0 must be built from source against the installed torch.
"""
from setuptools import find_packages, setup

version: dict = {}
with open('resnest_mm/version.py') as f:
    exec(f.read(), version)

setup(
    name='resnest_mm',
    version=version['__version__'],
    description='ResNeSt (Split-Attention Networks) backbone for mmdet/mmseg',
    packages=find_packages(include=['resnest_mm', 'resnest_mm.*']),
    python_requires='>=3.8',
    install_requires=['torch>=2.0', 'mmengine>=0.10.4', 'mmcv>=2.0.0,<2.2.0'],
    extras_require={
        'det': ['mmdet>=3.3.0,<3.4.0'],
        'seg': ['mmsegmentation>=1.2.2,<1.3.0', 'ftfy', 'regex'],
        'tests': ['pytest', 'resnest==0.0.5', 'mmpretrain==1.2.0', 'timm==1.0.31',
                  'onnx==1.23.2', 'onnxruntime==1.32.0'],
    },
)
