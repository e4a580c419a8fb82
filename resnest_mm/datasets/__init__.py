"""Data pipeline steps; registered in mmseg by :mod:`resnest_mm.registry`."""
from resnest_mm.datasets.seg_checks import CheckSegMap

__all__ = ['CheckSegMap']
