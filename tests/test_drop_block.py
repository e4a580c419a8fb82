import pytest
import torch

from resnest_mm.models.drop_block import DropBlock2d


def test_identity_in_eval_mode():
    drop = DropBlock2d(0.3, 3).eval()
    x = torch.randn(2, 4, 16, 16)
    assert torch.equal(drop(x), x)


def test_drops_about_prob_in_square_blocks_and_keeps_the_mean():
    torch.manual_seed(0)
    drop = DropBlock2d(0.2, 3).train()
    x = torch.ones(8, 16, 32, 32)
    out = drop(x)
    dropped = (out == 0).float()
    assert 0.12 < dropped.mean().item() < 0.28
    assert out.mean().item() == pytest.approx(1.0, abs=1e-4)
    # every dropped pixel belongs to a full 3x3 dropped square
    eroded = -torch.nn.functional.max_pool2d(-dropped, 3, 1, 1)
    covered = torch.nn.functional.max_pool2d(eroded, 3, 1, 1)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    assert torch.equal(covered[inner], dropped[inner])


def test_block_larger_than_the_map_is_clamped():
    out = DropBlock2d(0.5, 7).train()(torch.ones(2, 2, 4, 4))
    assert out.shape == (2, 2, 4, 4) and torch.isfinite(out).all()


@pytest.mark.parametrize('prob,size,match', [(1.0, 3, 'prob=1.0'),
                                             (-0.1, 3, 'prob=-0.1'),
                                             (0.1, 4, 'block_size=4'),
                                             (0.1, 0, 'block_size=0')])
def test_bad_arguments_are_named(prob, size, match):
    with pytest.raises(ValueError, match=match):
        DropBlock2d(prob, size)
