"""DropBlock against the paper's drop rate, checked on timm's ``DropBlock2d``.

Ghiasi et al. (2018) draw seeds at ``gamma = prob / k**2 * H*W /
((H-k+1) * (W-k+1))`` (eq. 1) and grow each into a ``k x k`` block, so a
pixel is dropped with probability ``1 - (1 - gamma)**n``, ``n`` the number of
seed positions whose block covers it. Where the seeds may fall is the one
difference: we draw them only where a whole block fits (the paper's Fig. 2),
timm 1.0 everywhere, with blocks clipped by the border, so it drops more
than ``prob`` on small maps (at prob 0.1, block 3: 0.12 of a 14x14 map, 0.24
of a 4x4 one; ours 0.096 and 0.100). The formula is checked on timm with its
seed positions, ours with ours.

Sizes are among those DropBlock sees in ResNeSt's stages 3 and 4: 14x14 and
7x7 for 224 px images, 4x4 and 2x2 for the tests' 64 px ones, where the
official recipe's block 3 or a larger one is clamped. Rates are compared per
pixel over ``MAPS`` independent maps: each estimate is binomial, with
standard error ``sqrt(P (1 - P) / MAPS)``, and must lie within ``Z`` of them
(that one pixel of a few hundred is beyond 5 by chance: about 1e-4).
Without the ``H*W / ((H-k+1) * (W-k+1))`` correction of gamma the rates miss
by 15 (14x14) to 46 (4x4) standard errors; at 2x2 the block is 1x1 and the
correction 1.
"""
import pytest
import torch
import torch.nn.functional as F
from timm.layers import DropBlock2d as TimmDropBlock2d
from torch import Tensor

from resnest_mm.models.drop_block import DropBlock2d

#: The official ResNeSt recipe's DropBlock rate.
PROB = 0.1
#: Independent maps per estimate.
MAPS = 20_000
#: Allowed distance from the expected rate, in standard errors.
Z = 5.0


def expected_rate(height: int, width: int, k: int, prob: float,
                  whole_blocks_only: bool) -> Tensor:
    """``(H, W)`` probability that each pixel is dropped: seeds at the
    paper's ``gamma`` where a whole ``k x k`` block fits, or everywhere."""
    gamma = prob / k**2 * height * width / ((height - k + 1) *
                                            (width - k + 1))
    seeds = torch.ones(1, 1, height, width)
    if whole_blocks_only:
        seeds = F.pad(torch.ones(1, 1, height - k + 1, width - k + 1),
                      [k // 2] * 4)
    covering = F.conv2d(seeds, torch.ones(1, 1, k, k), padding=k // 2)[0, 0]
    return 1 - (1 - gamma)**covering


def drop_rate(layer: torch.nn.Module, height: int, width: int) -> Tensor:
    """``(H, W)`` fraction of ``MAPS`` maps of ones in which ``layer``
    zeroed each pixel."""
    out = layer.train()(torch.ones(MAPS, 1, height, width))
    return (out[:, 0] == 0).double().mean(0)


def assert_rates(rate: Tensor, expected: Tensor) -> None:
    error = (expected * (1 - expected) / MAPS).sqrt()
    z = (rate - expected.to(rate)).abs() / error.to(rate)
    worst = divmod(int(z.argmax()), rate.shape[1])
    assert z.max() <= Z, (f'pixel {worst}: rate {rate[worst]:.4f}, expected '
                          f'{expected[worst]:.4f} ({z.max():.1f} standard '
                          f'errors)\nrates\n{rate}\nexpected\n{expected}')


@pytest.mark.parametrize('size', [14, 7, 4])
def test_expected_rate_is_timms_with_its_seed_positions(size):
    """The formula against an independent implementation (block 3, which
    every size here holds: timm clamps to the map size without keeping
    the block odd)."""
    rate = drop_rate(TimmDropBlock2d(PROB, 3), size, size)
    assert_rates(rate, expected_rate(size, size, 3, PROB, False))


@pytest.mark.parametrize('height,width,block_size,clamped', [
    (14, 14, 3, 3),
    (7, 7, 3, 3),
    (4, 4, 3, 3),
    (4, 4, 7, 3),  # larger than the map: the largest odd block that fits
    (4, 7, 5, 3),  # 4 rows: an even 4 would have no centre
    (2, 2, 3, 1),  # a 1x1 block: dropout at rate prob
    (2, 2, 7, 1),
])
def test_drop_rate_per_pixel_is_the_papers(height, width, block_size,
                                           clamped):
    rate = drop_rate(DropBlock2d(PROB, block_size), height, width)
    assert_rates(rate, expected_rate(height, width, clamped, PROB, True))


@pytest.mark.parametrize('height,width,block_size,clamped', [
    (32, 32, 3, 3), (14, 14, 5, 5), (4, 4, 7, 3), (4, 7, 5, 3)])
def test_blocks_are_whole_squares_inside_the_map(height, width, block_size,
                                                 clamped):
    """Every dropped pixel lies in a ``clamped x clamped`` square of dropped
    pixels that fits in the map (timm clips its border blocks instead), and
    the kept ones are rescaled to keep the mean."""
    out = DropBlock2d(0.2, block_size).train()(torch.ones(64, 8, height,
                                                          width))
    dropped = (out == 0).float()
    assert dropped.any()
    # squares inside the map that are entirely dropped, by their corner
    whole = -F.max_pool2d(-dropped, clamped, stride=1)
    covered = F.conv_transpose2d(whole.view(-1, 1, *whole.shape[-2:]),
                                 torch.ones(1, 1, clamped, clamped))
    assert torch.equal(covered.view_as(dropped).clamp(max=1), dropped)
    assert out.mean().item() == pytest.approx(1.0, abs=1e-4)


def test_identity_in_eval_mode():
    drop = DropBlock2d(0.3, 3).eval()
    x = torch.randn(2, 4, 16, 16)
    assert torch.equal(drop(x), x)


@pytest.mark.parametrize('prob,size,match', [(1.0, 3, 'prob=1.0'),
                                             (-0.1, 3, 'prob=-0.1'),
                                             (0.1, 4, 'block_size=4'),
                                             (0.1, 0, 'block_size=0')])
def test_bad_arguments_are_named(prob, size, match):
    with pytest.raises(ValueError, match=match):
        DropBlock2d(prob, size)
