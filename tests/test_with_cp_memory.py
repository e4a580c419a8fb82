"""with_cp lowers the real memory of a train step, at equal gradients.

Memory is measured as ``benchmark.py`` does on CPU (the profiler's
allocation events), which is first checked against known allocations.
"""
import torch

from conftest import randomize_
from resnest_mm.models import ResNeSt
from resnest_mm.benchmark.timing import memory_bytes, train_step

MIB = 2**20
CPU = torch.device('cpu')


def test_memory_of_known_allocations():
    def step():
        a = torch.empty(MIB, dtype=torch.uint8)
        b = torch.empty(3 * MIB, dtype=torch.uint8)  # 4 MiB held: the peak
        del a, b
        return torch.empty(2 * MIB, dtype=torch.uint8)  # 2 MiB still held

    kept = torch.empty(8 * MIB, dtype=torch.uint8)  # before: not counted
    assert memory_bytes(step, CPU) == (4 * MIB, 2 * MIB)
    del kept


def test_with_cp_peak_is_at_least_40_percent_lower_at_equal_gradients():
    """docs/en/benchmarks.md's figure, ResNeSt-50d at batch 8, 512^2: train-step peak
    5125 -> 2143 MiB (0.418x), on a 1/16 scale model of it.

    The peak is activations (linear in width and in batch x pixels) plus
    weight gradients and the kernels' workspace (quadratic in width, or
    fixed). A quarter of the width (``stem_channels=base_channels=16``) at a
    quarter of the pixels (batch 2) keeps their proportions: 320 -> 134 MiB,
    each 1/16 of the claim's, 0.418x. Measured with_cp / plain peaks at
    width 16, batch 2: 0.72 at 64^2, 0.60 at 128^2, 0.47 at 256^2, 0.433 at
    384^2, 0.418 at 512^2 (full width at 256^2: 0.595, as width 16 at 128^2:
    the same proportions). At 512^2 other kernels move it by 0.005 (oneDNN
    limited to SSE4.1 or AVX: 0.414, oneDNN off: 0.418, one thread: 0.418),
    where at 64^2 they span 0.72-0.82 (an AVX-512 EPYC: 0.82): there the
    weight gradients and the kernels' workspace are most of the peak. The
    test takes 11 s with one thread on two loaded cores.
    """
    kw = dict(depth=50, stem_channels=16, base_channels=16, norm_eval=False)
    plain = randomize_(ResNeSt(**kw)).train()
    ckpt = ResNeSt(with_cp=True, **kw).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 512, 512)
    held = [memory_bytes(lambda m=m: m(x), CPU)[1] for m in (plain, ckpt)]
    peaks = [memory_bytes(train_step(m, x, CPU, 'fp32', free_grads=False),
                          CPU)[0] for m in (plain, ckpt)]
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-5, rtol=1e-4,
                                   msg=name)
    # Kept from forward to backward: block inputs only (and the stem);
    # measured 0.307x.
    assert held[1] <= 0.4 * held[0], held
    # The peak also holds one recomputed block and the weight gradients.
    assert peaks[1] <= 0.6 * peaks[0], peaks
