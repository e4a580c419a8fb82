"""conftest's default-scope fixtures: a scope one test sets is gone in the
next, and a scope a module-scoped fixture sets is gone in the next module.

The leaking test and the check run in an inner pytest session (``pytester``)
under this directory's own conftest, in that order and in one process, so
the check means the same whether this file runs alone, first or on any
xdist worker."""
from pathlib import Path

pytest_plugins = ['pytester']

CONFTEST = Path(__file__).with_name('conftest.py')
#: The inner test file: one test sets the mmseg scope for the whole process
#: (as ``init_default_scope`` and every in-process Runner do), the next looks.
INNER_TESTS = '''
from mmengine.registry import DefaultScope, init_default_scope


def _current_scope():
    if not DefaultScope._instance_dict:
        return None
    return DefaultScope.get_current_instance().scope_name


def test_a_test_sets_the_mmseg_scope():
    init_default_scope('mmseg')
    assert _current_scope() == 'mmseg'


def test_the_next_test_does_not_see_it():
    assert _current_scope() != 'mmseg'
'''
#: A module whose module-scoped fixture sets the scope (set up before any
#: function-scoped fixture of its test), and a module that runs after it.
MODULE_FIXTURE_TESTS = '''
import pytest
from mmengine.registry import DefaultScope, init_default_scope


@pytest.fixture(scope='module')
def built_in_mmseg():
    init_default_scope('mmseg')


def test_a_module_fixture_sets_the_mmseg_scope(built_in_mmseg):
    assert DefaultScope.get_current_instance().scope_name == 'mmseg'
'''
NEXT_MODULE_TESTS = '''
from mmengine.registry import DefaultScope


def test_the_next_module_does_not_see_it():
    current = DefaultScope.get_current_instance()
    assert current is None or current.scope_name != 'mmseg'
'''


def run_inner(pytester, **files: str):
    """``files`` (module name -> source) in an inner pytest session, in one
    process, under a copy of this directory's conftest."""
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(**files)
    # importlib mode: the copy is not imported as ``conftest``, the name
    # this directory's conftest already has in this process
    return pytester.runpytest_inprocess('-v', '-p', 'no:cacheprovider',
                                        '--import-mode=importlib')


def test_a_scope_set_in_one_test_is_gone_in_the_next(pytester):
    result = run_inner(pytester, test_scopes=INNER_TESTS)
    # both ran, the check after the leak, in one process
    result.stdout.fnmatch_lines([
        '*::test_a_test_sets_the_mmseg_scope PASSED*',
        '*::test_the_next_test_does_not_see_it PASSED*',
    ])
    result.assert_outcomes(passed=2)


def test_a_scope_set_by_a_module_fixture_is_gone_in_the_next_module(
        pytester):
    result = run_inner(pytester, test_a_sets=MODULE_FIXTURE_TESTS,
                       test_b_looks=NEXT_MODULE_TESTS)
    result.stdout.fnmatch_lines([
        '*test_a_sets.py::test_a_module_fixture_sets_the_mmseg_scope PASSED*',
        '*test_b_looks.py::test_the_next_module_does_not_see_it PASSED*',
    ])
    result.assert_outcomes(passed=2)
