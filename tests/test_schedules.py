"""Schedules: the papers' values, 1-based indexing, and the 0-based off-by-one."""

import math

import numpy as np
import pytest
import torch

from minddim import Schedule


def test_linear_matches_ddpm_and_is_one_based():
    s = Schedule.linear()
    assert s.T == 1000 and s.betas.shape == (1001,) and s.betas.dtype == torch.float64
    assert s.betas[0] == 0 and s.alpha_bars[0] == 1
    assert s.betas[1] == pytest.approx(1e-4) and s.betas[1000] == pytest.approx(0.02)
    # independent computation, 0-based as in diffusers / the official DDIM code
    betas0 = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
    alphas_cumprod = np.cumprod(1 - betas0)
    np.testing.assert_allclose(s.alpha_bars[1:].numpy(), alphas_cumprod, rtol=1e-12)
    # alphas_cumprod[k] is our alpha_bars[k + 1]
    assert s.alpha_bars[1] == pytest.approx(1 - 1e-4) and s.alpha_bars[500] == pytest.approx(alphas_cumprod[499])
    # DDPM sec. 4: the linear schedule ends with alpha-bar_T about 4e-5 (signal-to-noise ~ 1e-5)
    assert s.alpha_bars[-1].item() == pytest.approx(4.04e-5, rel=0.01)


def test_cosine_follows_nichol_dhariwal():
    T, s_off = 1000, 0.008
    s = Schedule.cosine(T)
    f = lambda t: math.cos((t / T + s_off) / (1 + s_off) * math.pi / 2) ** 2  # noqa: E731
    for t in (1, 10, 250, 500, 900):
        assert s.alpha_bars[t].item() == pytest.approx(f(t) / f(0), rel=1e-10)
    assert s.betas[1:].max() <= 0.999 and s.betas[1:].min() > 0
    # the cosine schedule destroys information more slowly in the middle than the linear one
    assert s.alpha_bars[500] > Schedule.linear(T).alpha_bars[500] * 5


def test_derived_quantities():
    s = Schedule.linear(100, 1e-3, 0.1)
    ab = s.alpha_bars
    assert torch.allclose(s.alphas, 1 - s.betas)
    assert torch.allclose(ab[1:], torch.cumprod(1 - s.betas[1:], 0))
    assert torch.isinf(s.snr[0]) and torch.allclose(s.snr[1:], ab[1:] / (1 - ab[1:]))
    assert (s.snr[1:].diff() < 0).all(), "SNR must decrease with t"
    bt = s.beta_tildes
    assert bt[1] == 0 and torch.allclose(bt[2:], (1 - ab[1:-1]) / (1 - ab[2:]) * s.betas[2:])
    assert (bt[1:] <= s.betas[1:]).all()


def test_from_betas_prepends_beta_zero():
    s = Schedule.from_betas([0.1, 0.2, 0.3])
    assert s.T == 3 and s.betas.tolist() == pytest.approx([0, 0.1, 0.2, 0.3])
    assert s.alpha_bars.tolist() == pytest.approx([1, 0.9, 0.72, 0.504])


def test_at_shapes_and_casts():
    s = Schedule.linear(10)
    x = torch.zeros(3, 2, 5, dtype=torch.float32)
    v = s.at(s.alpha_bars, torch.tensor([1, 5, 10]), x)
    assert v.shape == (3, 1, 1) and v.dtype == torch.float32
    assert v[1].item() == pytest.approx(s.alpha_bars[5].item(), rel=1e-6)
    assert s.at(s.betas, 4, x).shape == ()


@pytest.mark.parametrize("bad", [[0.0, 0.1], [0.1, 1.0], [-0.1], [float("nan")], [float("inf")], [1.5]])
def test_bad_betas_are_refused(bad):
    with pytest.raises(ValueError, match="betas"):
        Schedule.from_betas(bad)


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="betas"):
        Schedule.from_betas([])
    with pytest.raises(ValueError, match="betas"):
        Schedule(torch.tensor([0.1, 0.2], dtype=torch.float64))  # betas[0] must be 0
    with pytest.raises(ValueError, match="T"):
        Schedule.linear(0)
    with pytest.raises(TypeError, match="T"):
        Schedule.cosine(10.5)
    with pytest.raises(ValueError, match="betas"):
        Schedule.linear(10, 1e-4, 1.2)
