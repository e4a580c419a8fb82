"""conftest's ``_default_scope`` fixture: a scope one test sets is gone in the
next (pytest runs a file's tests in order, on one xdist worker)."""
from mmengine.registry import DefaultScope, init_default_scope


def _current_scope() -> str | None:
    if not DefaultScope._instance_dict:
        return None
    return DefaultScope.get_current_instance().scope_name


def test_a_test_sets_the_mmseg_scope():
    init_default_scope('mmseg')
    assert _current_scope() == 'mmseg'


def test_the_next_test_does_not_see_it():
    assert _current_scope() != 'mmseg'
