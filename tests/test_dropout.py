"""Issue 28 item 2: our CPU dropout is dropout — Bernoulli(1 - p) masks scaled by 1 / (1 - p) (p to 15 bits),
seeded, the gradient through the same mask — and costs nothing where p = 0 or in eval mode."""

from __future__ import annotations

import pytest
import torch

from ablate.models.dropout import Dropout, dropout


def test_dropout_zeroes_a_p_share_scales_the_rest_and_follows_the_seed():
    x = torch.ones(400_000)
    torch.manual_seed(0)
    y = dropout(x, 0.3, True)
    kept = y != 0
    assert kept.float().mean().item() == pytest.approx(0.7, abs=0.003)  # sd of the share: 0.0007
    # the kept scale: 1 / (1 - q) for the 15-bit rate q = round(0.3·2^15) / 2^15 = 9830 / 32768 (1/0.7 within 1e-5)
    assert torch.equal(y[kept], torch.full((int(kept.sum()),), 32768 / (32768 - 9830)))
    torch.manual_seed(0)
    assert torch.equal(dropout(x, 0.3, True), y)  # the global generator: seeds are honoured
    assert not torch.equal(dropout(x, 0.3, True), y)


def test_the_gradient_flows_through_the_same_mask():
    x = torch.randn(1000, requires_grad=True)
    y = dropout(x, 0.5, True)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2)


def test_dropout_returns_its_input_untouched_in_eval_mode_or_at_p_zero():
    x = torch.randn(10)
    assert dropout(x, 0.0, True) is x and dropout(x, 0.5, False) is x
    d = Dropout(0.2).eval()
    assert d(x) is x and isinstance(d, torch.nn.Dropout) and repr(d) == repr(torch.nn.Dropout(0.2))


def test_a_bf16_input_keeps_its_dtype_and_the_exact_rate():
    torch.manual_seed(1)
    y = dropout(torch.ones(200_000, dtype=torch.bfloat16), 0.1, True)
    assert y.dtype == torch.bfloat16
    assert (y == 0).float().mean().item() == pytest.approx(0.1, abs=0.003)


def test_a_rate_is_p_rounded_to_15_bits_and_the_expectation_is_kept_exactly():
    """p = 0.1 drops round(0.1·2^15) = 3277 of 2^15 lane values: rate 0.100006; the kept scale is 2^15 / 29491, so
    E[mask] = 1 exactly; each of an int64's four lanes (the top one has a 0 top bit) drops at that rate."""
    torch.manual_seed(0)
    x = torch.ones(4_000_000)
    y = dropout(x, 0.1, True)
    kept_value = 32768 / (32768 - 3277)
    assert torch.equal(y.unique(), torch.tensor([0.0, kept_value]))
    by_lane = (y == 0).float().view(-1, 4).mean(0)  # sd of each lane's share: 0.0003
    assert torch.allclose(by_lane, torch.full((4,), 3277 / 32768), atol=0.0015)


def test_a_rate_below_the_15_bit_step_or_next_to_one_is_torchs_own():
    """Rounded to 15 bits, 1e-6 would be no dropout at all (kept scale 1) and 1 - 1e-6 a division by zero:
    both are torch's F.dropout, the same numbers from the same seed (kept elements scaled by 1 / (1 - p))."""
    import torch.nn.functional as F

    x = torch.ones(100_000)
    for p in (1e-6, 1 - 1e-6):
        torch.manual_seed(0)
        ours = dropout(x, p, True)
        torch.manual_seed(0)
        assert torch.equal(ours, F.dropout(x, p, True))
    torch.manual_seed(0)
    assert dropout(x, 1e-6, True).max().item() == pytest.approx(1 / (1 - 1e-6), rel=1e-7) != 1.0  # float32
