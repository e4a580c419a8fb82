"""Run code in a fresh interpreter in which some toolboxes look uninstalled.

A finder at the front of ``sys.meta_path`` answers every import of the hidden
packages (and their submodules) with the ``ModuleNotFoundError`` a missing
package raises, ``name`` set to the package, so code that tells "not
installed" from "installed but broken" sees the former.
"""
import subprocess
import sys
import textwrap
from typing import Sequence

_HIDE = '''
import sys

class Hide:
    def find_spec(self, name, path=None, target=None):
        top = name.split('.')[0]
        if top in {hidden!r}:
            raise ModuleNotFoundError(f'No module named {{top!r}}', name=top)

sys.meta_path.insert(0, Hide())
'''


def run_without(hidden: Sequence[str], code: str) -> str:
    """The stdout of ``code`` (dedented) run with the packages ``hidden``
    uninstalled as far as imports can tell; a failure raises, with stderr."""
    program = _HIDE.format(hidden=tuple(hidden)) + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, '-c', program],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout
