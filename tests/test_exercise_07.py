"""Exercise 07 (the U-Net's time embedding and the FID): the answer key's references against the package and scipy,
the closed form of the FID's small-sample bias against Monte Carlo, the claims of the prompts, and the package's
own routes refused.  The generic properties (the reference passes, every listed mistake is rejected with its hint,
a stub is "not implemented yet", the hint ladder) are tested for every question, these included, in
tests/test_grading.py."""

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import minddim as md
from minddim import grading
from minddim.grading.keys import ex07_mnist as key

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ("timestep_embedding", "frechet_distance", "fid_bias")


def test_the_questions_are_registered_with_the_solution_notebooks_points():
    assert grading.questions(ROOT / "solutions" / "07_mnist.py") == [
        ("timestep_embedding", 1), ("frechet_distance", 1), ("fid_bias", 3)]
    assert all(name in grading.CHECKS for name in QUESTIONS)


# -- 1. the embedding -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [2, 3, 7, 16, 64, 128])
def test_the_embedding_reference_is_the_package_and_a_float64_route_passes(dim):
    """The prompt's formula, computed in float64 and cast at the end, is the package's within the check's atol."""
    t = torch.arange(1, 1001)
    h = dim // 2
    w = 10_000.0 ** (-torch.arange(h, dtype=torch.float64) / h)
    a = t.double()[:, None] * w
    mine = torch.cat([a.sin(), a.cos(), torch.zeros(len(t), dim % 2, dtype=torch.float64)], 1).float()
    got = grading.CHECKS["timestep_embedding"].reference(t, dim)
    assert torch.equal(got, md.timestep_embedding(t, dim)) and got.dtype == torch.float32
    spec = grading.CHECKS["timestep_embedding"]
    assert torch.allclose(mine, got, rtol=spec.rtol, atol=spec.atol)
    assert (mine - got).abs().max() < spec.atol / 2          # room to spare


def test_the_embedding_is_what_md_unet_feeds_its_time_mlp():
    """md.UNet embeds t with dim = base: the question's function is the network's input."""
    unet = md.UNet(base=8, mults=(1, 2), groups=4)
    seen = {}
    unet.time.register_forward_pre_hook(lambda mod, inp: seen.update(emb=inp[0]))      # returns None: input kept
    t = torch.tensor([1, 500, 1000])
    with torch.no_grad():
        unet(torch.zeros(3, 1, 28, 28), t)
    torch.testing.assert_close(seen["emb"], grading.CHECKS["timestep_embedding"].reference(t, 8))


# -- 2. the Frechet distance ----------------------------------------------------------------------------------------
def _random_spd(d, g):
    a = torch.randn(d, 2 * d, generator=g, dtype=torch.float64)
    return a @ a.T / (2 * d) + 0.05 * torch.eye(d, dtype=torch.float64)


@pytest.mark.parametrize("d", [1, 2, 5, 32])
def test_the_frechet_reference_agrees_with_scipy_sqrtm(d):
    from scipy import linalg

    g = torch.Generator().manual_seed(d)
    mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    c1, c2 = _random_spd(d, g), _random_spd(d, g)
    root = linalg.sqrtm(c1.numpy() @ c2.numpy()).real
    scipy_value = float(((mu1 - mu2) ** 2).sum() + np.trace(c1.numpy() + c2.numpy() - 2 * root))
    assert key.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(scipy_value, rel=1e-9, abs=1e-9)


def test_the_frechet_reference_is_md_frechet_distance_on_the_features_fitted_gaussians():
    g = torch.Generator().manual_seed(7)
    a = torch.randn(300, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    b = 0.5 + torch.randn(200, 6, generator=g, dtype=torch.float64)
    fit = [(x.mean(0), torch.from_numpy(np.cov(x.numpy(), rowvar=False))) for x in (a, b)]
    assert key.frechet_distance(*fit[0], *fit[1]) == pytest.approx(md.frechet_distance(a, b), rel=1e-9)


def test_for_commuting_covariances_the_distance_is_the_closed_form_and_separate_roots_are_right_only_then():
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(5, generator=g, dtype=torch.float64) + 0.1, torch.rand(5, generator=g, dtype=torch.float64) + 0.1
    mu1, mu2 = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    closed = float(((mu1 - mu2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum())
    assert key.frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(closed, rel=1e-12)
    separate = grading.CHECKS["frechet_distance"].mistakes[next(h for h in grading.CHECKS["frechet_distance"].mistakes
                                                                if h.startswith("(C1 C2)^(1/2) is not"))]
    assert separate(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(closed, rel=1e-12)
    first = grading.CHECKS["frechet_distance"].cases()[0].inputs          # the ellipses 45 degrees apart
    assert separate(**first) > 1.1 * key.frechet_distance(**first)        # tr C1^1/2 C2^1/2 < tr (C1 C2)^1/2


# -- 3. the FID's bias ----------------------------------------------------------------------------------------------
def _fid_fitted(x, y):
    """The Frechet distance between Gaussians fitted to x (n, d) and y (m, d), or to x and N(0, I) when y is None."""
    d = x.shape[1]
    fit = lambda z: (z.mean(0), torch.cov(z.T).reshape(d, d))      # noqa: E731
    mu2, c2 = fit(y) if y is not None else (torch.zeros(d, dtype=x.dtype), torch.eye(d, dtype=x.dtype))
    return key.frechet_distance(*fit(x), mu2, c2)


@pytest.mark.parametrize("d,n,m,draws", [(8, 1000, 1000, 400), (16, 2000, math.inf, 200), (3, 500, 2000, 1000)])
def test_the_bias_formula_agrees_with_monte_carlo(d, n, m, draws):
    """E[FID] over `draws` pairs of fitted Gaussians, against d (d + 5) / 4 (1/n + 1/m): within 4 % (the Monte Carlo
    standard error is under 1.5 %; the formula's next order is a small fraction of d / n at these sizes); every listed mistake is further off."""
    g = torch.Generator().manual_seed(d)
    values = torch.tensor([_fid_fitted(torch.randn(n, d, generator=g, dtype=torch.float64),
                                       None if m == math.inf else torch.randn(m, d, generator=g, dtype=torch.float64))
                           for _ in range(draws)])
    mean, se = float(values.mean()), float(values.std()) / math.sqrt(draws)
    formula = key.fid_bias(d, n, m)
    assert se < 0.015 * formula
    assert abs(mean / formula - 1) < 0.04, (mean, se, formula)
    for hint, wrong in grading.CHECKS["fid_bias"].mistakes.items():      # each that differs here: further off
        assert wrong(d, n, m) == formula or abs(wrong(d, n, m) - mean) > abs(formula - mean) + 2 * se, hint


def test_the_bias_at_the_notebooks_sizes():
    """White features of dimension 128: about 4.7 at n = 1000 against m = 10,000, and 0.43 left at n = inf."""
    assert key.fid_bias(128, 1000, 10_000) == pytest.approx(4.68, abs=0.01)
    assert key.fid_bias(128, math.inf, 10_000) == pytest.approx(0.43, abs=0.01)


# -- the package's routes are refused, the checks are fast ----------------------------------------------------------
def test_calling_the_package_is_refused():
    v = grading.run_check("timestep_embedding", lambda t, dim: md.timestep_embedding(t, dim))
    assert not v.passed and "minddim.timestep_embedding" in v.message

    def via_features(mu1, cov1, mu2, cov2):        # md.frechet_distance takes features: any call of it is refused
        return md.frechet_distance(torch.stack([mu1, mu1 + 1, mu1 - 1]), torch.stack([mu2, mu2 + 1, mu2 - 1]))
    v = grading.run_check("frechet_distance", via_features)
    assert not v.passed and "minddim.frechet_distance" in v.message


def test_each_check_runs_in_under_a_second_on_one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name in QUESTIONS:
            start = time.perf_counter()
            assert grading.run_check(name, grading.CHECKS[name].reference, _watch=False).passed
            assert time.perf_counter() - start < 1.0, name
    finally:
        torch.set_num_threads(threads)
