"""``python -m resnest_mm``: check an installation.

Prints the versions of the stack and, for mmengine's root ``MODELS`` and each
toolbox's, the class that ``dict(type='ResNeSt', depth=50)`` builds there.
Every installed toolbox must build ours; the exit status is 1 when one
builds another class or fails to build.
"""
import importlib
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Dict

from mmengine.registry import DefaultScope

import resnest_mm
from resnest_mm.models import ResNeSt
from resnest_mm.registry import TOOLBOXES

#: Distributions whose versions the first line shows.
STACK = ('torch', 'mmcv', 'mmengine')
OURS = f'{ResNeSt.__module__}.{ResNeSt.__qualname__}'


def built_classes() -> Dict[str, str]:
    """Registry (``'mmengine'`` or a toolbox) -> the full name of the class
    ``type='ResNeSt'`` builds there, ``'not installed'``, or the error."""
    found = {}
    for scope in ('mmengine', ) + TOOLBOXES:
        try:
            registry = importlib.import_module(f'{scope}.registry')
        except ModuleNotFoundError as err:
            if err.name != scope:
                raise
            found[scope] = 'not installed'
            continue
        try:
            # A default scope set by the caller would send the build to
            # that scope's registry; each registry is asked in its own.
            with DefaultScope.overwrite_default_scope(scope):
                model = registry.MODELS.build(dict(type='ResNeSt', depth=50))
        except Exception as err:  # reported, with the exit status
            found[scope] = f'error: {type(err).__name__}: {err}'
            continue
        found[scope] = f'{type(model).__module__}.{type(model).__qualname__}'
    return found


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return 'not installed'


def main() -> int:
    classes = built_classes()
    stack = ', '.join(f'{name} {_version(name)}' for name in STACK)
    print(f'resnest_mm {resnest_mm.__version__}: {stack}')
    print("type='ResNeSt' builds")
    width = max(map(len, classes)) + 2
    for scope, name in classes.items():
        print(f'  {scope:<{width}}{name}')
    wrong = [s for s, name in classes.items()
             if name not in (OURS, 'not installed')]
    if wrong:
        print(f'not resnest_mm\'s ResNeSt in: {", ".join(wrong)}',
              file=sys.stderr)
    return 1 if wrong else 0


if __name__ == '__main__':
    sys.exit(main())
