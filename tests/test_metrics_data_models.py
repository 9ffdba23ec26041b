"""Sample-quality metrics against closed forms; toy data; the time embedding and the MLP."""

import math

import pytest
import torch

import minddim as md


def test_sliced_wasserstein_of_a_shift_is_the_closed_form():
    """For N(0, I) against N(delta, I) in D dims, SW_2 = |delta| / sqrt(D) (E[(theta . u)^2] = 1/D)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20_000, 2, generator=g)
    y = torch.randn(20_000, 2, generator=g) + torch.tensor([1.0, 0.0])
    sw = md.sliced_wasserstein(x, y, n_projections=500, generator=g)
    assert sw == pytest.approx(1 / math.sqrt(2), rel=0.03)
    same = md.sliced_wasserstein(x, torch.randn(20_000, 2, generator=g), generator=g)
    assert same < 0.03
    assert md.sliced_wasserstein(x, x) == 0.0
    # different sample sizes are fine
    assert md.sliced_wasserstein(x, y[:5000], n_projections=500) == pytest.approx(1 / math.sqrt(2), rel=0.05)


def test_mmd_matches_its_closed_form_for_gaussians():
    """For k(a,b) = exp(-|a-b|^2/(2h^2)) and x ~ N(mu1, s^2 I), y ~ N(mu2, s^2 I) in D dims,
    E k(x, y) = (h^2/(h^2 + 2 s^2))^(D/2) exp(-|mu1 - mu2|^2 / (2 (h^2 + 2 s^2)))."""
    g = torch.Generator().manual_seed(1)
    n, D, s = 3000, 2, 1.0
    delta = torch.tensor([0.5, 0.0])
    x = torch.randn(n, D, generator=g) * s
    y = torch.randn(n, D, generator=g) * s + delta
    expected = 0.0
    for h in (0.5, 1.0, 2.0):
        c = h * h + 2 * s * s
        same = (h * h / c) ** (D / 2)
        cross = same * math.exp(-delta.pow(2).sum().item() / (2 * c))
        expected += 2 * same - 2 * cross
    got = md.mmd(x, y, bandwidths=(0.5, 1.0, 2.0))
    assert got == pytest.approx(expected, rel=0.15)
    assert abs(md.mmd(x, torch.randn(n, D, generator=g), bandwidths=(0.5, 1.0, 2.0))) < 0.1 * expected


@pytest.mark.parametrize("name", md.TOY_SETS)
def test_toy_sets_are_seeded_2d_and_unit_scale(name):
    a, b, c = md.toy_data(name, 5000, seed=1), md.toy_data(name, 5000, seed=1), md.toy_data(name, 5000, seed=2)
    assert a.shape == (5000, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 0.3 < a.std(0).min() and a.std(0).max() < 2.0 and a.mean(0).abs().max() < 0.6


def test_toy_set_variances_are_what_the_data_module_says():
    """minddim/data.py's docstring: variances between about 0.5 and 2 per coordinate, from 0.55 (two_moons' second
    coordinate) up to 2.04 (eight_gaussians'); 100,000 draws put each within 2% (their relative std is below 1%)."""
    var = {name: md.toy_data(name, 100_000, seed=0).double().var(0) for name in md.TOY_SETS}
    assert var["two_moons"][1] == pytest.approx(0.55, rel=0.02)
    assert min(v.min() for v in var.values()) == var["two_moons"][1]
    assert max(v.max() for v in var.values()) == pytest.approx(2.04, rel=0.02)


def test_eight_gaussians_data_follow_their_mixture():
    x = md.toy_data("eight_gaussians", 50_000, seed=0).double()
    # each coordinate: E x^2 = 0.2^2 + 4 E[cos^2] = 2.04, mean 0
    assert x.mean(0).abs().max() < 0.03
    assert torch.allclose(x.var(0), torch.tensor([2.04, 2.04], dtype=torch.float64), rtol=0.03)
    w, m, c = md.toy_mixture("eight_gaussians")
    assert w.shape == (8,) and m.shape == (8, 2) and c.shape == (8, 2, 2)
    assert torch.allclose(m.norm(dim=1), torch.full((8,), 2.0, dtype=torch.float64))


def test_checkerboard_lives_on_the_black_squares():
    x = md.toy_data("checkerboard", 10_000)
    cells = (x.floor() + 2).long()
    assert ((cells[:, 0] + cells[:, 1]) % 2 == 1).all() or ((cells[:, 0] + cells[:, 1]) % 2 == 0).all()
    assert x.abs().max() <= 2


def test_timestep_embedding():
    t = torch.tensor([0, 1, 500])
    e = md.timestep_embedding(t, 8)
    assert e.shape == (3, 8)
    assert torch.allclose(e[0], torch.tensor([0, 0, 0, 0, 1, 1, 1, 1.0]))
    freqs = 10_000 ** (-torch.arange(4) / 4)
    assert torch.allclose(e[2, :4], torch.sin(500 * freqs), atol=1e-4)
    assert md.timestep_embedding(t, 7).shape == (3, 7)


def test_mlp_shapes_and_time_dependence():
    torch.manual_seed(0)
    net = md.MLP()
    x = torch.randn(5, 2)
    out1, out2 = net(x, torch.full((5,), 10)), net(x, torch.full((5,), 900))
    assert out1.shape == (5, 2) and not torch.allclose(out1, out2)
    assert net(x.double(), torch.full((5,), 3)).dtype == torch.float64


def test_reference_spread_measures_the_metric_on_perfect_samples():
    ref = torch.randn(4000, 2, generator=torch.Generator().manual_seed(0))
    draw = lambda seed: torch.randn(500, 2, generator=torch.Generator().manual_seed(100 + seed))  # noqa: E731
    mean, std = md.reference_spread(draw, ref, md.mmd, repeats=6)
    assert abs(mean) < 3 * std + 1e-3 and 0 < std < 0.01
    shifted = md.mmd(draw(0) + 0.5, ref)
    assert shifted > mean + 10 * std
    with pytest.raises(ValueError, match="repeats"):
        md.reference_spread(draw, ref, md.mmd, repeats=1)


def test_mmd_reuses_the_reference_self_term_only_while_the_reference_is_unchanged():
    from minddim import metrics

    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(300, 2, generator=g), torch.randn(400, 2, generator=g)
    x64, y64 = x.double(), y.double()
    h2 = tuple(h ** 2 for h in (0.1, 0.2, 0.5, 1.0, 2.0))

    def uncached(a, b):  # the three kernel sums of the unbiased estimate, written out
        return float(metrics._mean_kernel(a, a, h2, True) + metrics._mean_kernel(b, b, h2, True)
                     - 2 * metrics._mean_kernel(a, b, h2, False))

    first = md.mmd(x, y)
    assert first == uncached(x64, y64) == md.mmd(x, y) == md.mmd(x, y.clone())       # the same number, cached or not
    assert md.mmd(x, y, bandwidths=(1.0,)) != first                                    # other bandwidths, other term
    y.mul_(3)                                                                          # modified in place: recomputed
    assert md.mmd(x, y) == uncached(x64, y.double()) != first
    n = len(metrics._SELF_TERMS)
    del y
    assert len(metrics._SELF_TERMS) < n                                                # freed with its tensor


def test_within_class_spread_is_the_mean_trace_of_the_class_covariances():
    """Two classes drawn from N(m_c, diag(s_c^2)): tr Cov = sum s_c^2, so the mean over classes is
    (4 * 1 + 4 * 0.25) / 2 = 2.5; 20,000 rows a class put the estimate within 2% (its std is about 0.5%)."""
    from minddim.metrics import within_class_spread

    g = torch.Generator().manual_seed(0)
    n = 20_000
    a = torch.randn(n, 4, generator=g) + 5.0
    b = 0.5 * torch.randn(n, 4, generator=g) - 3.0
    labels = torch.cat([torch.zeros(n), torch.ones(n)]).long()
    spread = within_class_spread(torch.cat([a, b]), labels)
    assert spread == pytest.approx(2.5, rel=0.02)
    # collapse: one class's rows all equal -> its trace is 0, the mean halves the other's
    assert within_class_spread(torch.cat([a, torch.zeros(n, 4)]), labels) == pytest.approx(2.0, rel=0.02)
    # the class means do not enter (a shift between classes changes nothing)
    assert within_class_spread(torch.cat([a, b + 100]), labels) == pytest.approx(spread, rel=1e-9)


def test_within_class_spread_rejects_bad_input():
    from minddim.metrics import within_class_spread

    with pytest.raises(ValueError, match="labels"):
        within_class_spread(torch.zeros(4, 2), torch.zeros(3).long())
    with pytest.raises(ValueError, match="features"):
        within_class_spread(torch.zeros(4), torch.zeros(4).long())
    with pytest.raises(ValueError, match="class 1 has one row"):
        within_class_spread(torch.zeros(3, 2), torch.tensor([0, 0, 1]))
