"""Inpainting on the sampler's one code path (sampling.replace_known, repaint_walk, inpaint) and the
progressive code's rate and distortion (progressive.progressive_rate, progressive_distortion): exact edge cases,
bit-for-bit agreement with the unconditional sampler, the closed-form conditional law of Gaussian data, and
bad input."""

import math

import pytest
import torch

import minddim as md

S_LIN = md.Schedule.linear()


def randn(*shape, seed=0):
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def wavy(x, t):
    """A nonlinear stand-in for a network on images."""
    return torch.tanh(x + 1e-3 * t.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1))))


def test_replace_known_puts_q_of_x_t_given_x0_where_known_and_keeps_the_rest():
    x, x0, z = randn(3, 1, 4, 4), randn(3, 1, 4, 4, seed=1), randn(3, 1, 4, 4, seed=2)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :, 2:] = 1
    out = md.replace_known(x, x0, mask, torch.tensor([1, 500, 1000]), S_LIN, noise=z)
    expected = md.q_sample(x0, torch.tensor([1, 500, 1000]), S_LIN, noise=z)
    assert torch.equal(out[..., 2:], expected[..., 2:]) and torch.equal(out[..., :2], x[..., :2])
    assert torch.equal(md.replace_known(x, x0, mask.bool(), 0, S_LIN)[..., 2:], x0[..., 2:])


@pytest.mark.parametrize("eta", [1.0, 0.0])
def test_an_all_known_mask_returns_x0_and_an_all_unknown_mask_is_the_sampler_bit_for_bit(eta):
    x0, tau = randn(4, 1, 5, 5), md.timesteps(1000, 12)
    ones = torch.ones(1, 1, 5, 5)
    assert torch.equal(md.inpaint(wavy, x0, ones, S_LIN, tau, eta, generator=torch.Generator().manual_seed(0)), x0)
    out = md.inpaint(wavy, x0, torch.zeros_like(x0, dtype=torch.bool), S_LIN, tau, eta,
                     generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    x_T = torch.randn(x0.shape, dtype=x0.dtype, generator=g)
    assert torch.equal(out, md.sample(wavy, x_T, S_LIN, tau, eta, generator=g))


def test_inpainting_is_seeded_and_keeps_the_known_pixels():
    x0, tau = randn(3, 1, 4, 4, seed=3), md.timesteps(1000, 10)
    mask = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(4)) < 0.5
    run = lambda: md.inpaint(wavy, x0, mask, S_LIN, tau, resample=2, jump=2,  # noqa: E731
                             generator=torch.Generator().manual_seed(5))
    a = run()
    assert torch.equal(a, run()) and torch.equal(a[mask], x0[mask]) and not torch.equal(a[~mask], x0[~mask])


def test_repaint_walk_goes_back_jump_steps_resample_minus_one_times():
    assert md.repaint_walk(5) == [5, 4, 3, 2, 1, 0]
    assert md.repaint_walk(4, resample=2, jump=1) == [4, 3, 4, 3, 2, 3, 2, 1, 2, 1, 0]
    path = md.repaint_walk(10, resample=3, jump=2)
    downs = sum(b < a for a, b in zip(path[:-1], path[1:]))
    ups = sum(b > a for a, b in zip(path[:-1], path[1:]))
    assert all(abs(b - a) == 1 for a, b in zip(path[:-1], path[1:]))
    assert path[0] == 10 and path[-1] == 0 and min(path) == 0 and max(path) == 10
    jump_points = len(range(1, 10 - 2 + 1, 2))            # positions 1, 3, 5, 7 (RePaint's 0, 2, 4, 6)
    assert ups == 2 * 2 * jump_points and downs == 10 + ups


def conditional_error(out, mean, var):
    """Distance of the samples' law of the unknown coordinate to N(mean, var): sqrt(d_mean^2 + d_std^2)."""
    return math.sqrt((out.mean().item() - mean) ** 2 + (out.std().item() - math.sqrt(var)) ** 2)


def test_on_gaussian_data_resampling_brings_inpainting_closer_to_the_exact_conditional_law():
    # x0 ~ N(0, C), correlation 0.95: given x^(1) = 1.5, x^(2) ~ N(0.95 * 1.5, 1 - 0.95^2) (closed form)
    C = torch.tensor([[1.0, 0.95], [0.95, 1.0]], dtype=torch.float64)
    model, n = md.GaussianDenoiser(torch.zeros(2), C, S_LIN), 3000
    x0 = torch.zeros(n, 2, dtype=torch.float64)
    x0[:, 0] = 1.5
    mask, tau = torch.tensor([1, 0]), md.timesteps(1000, 50)
    mean, var = 0.95 * 1.5, 1 - 0.95**2
    errors = {}
    for name, kw in (("replacement", {}), ("resampling", {"resample": 3})):
        errors[name] = [conditional_error(md.inpaint(model, x0, mask, S_LIN, tau, 1.0, generator=torch.Generator()
                                                     .manual_seed(seed), **kw)[:, 1], mean, var) for seed in (0, 1)]
    # measured (2 seeds): replacement 0.40, 0.41 (it undershoots the mean: the known pixel's information
    # reaches the unknown one only through the steps); resampling 3x: 0.11, 0.10. Monte Carlo error of the
    # mean and std at n = 3000 is about 0.006, so these are properties of the methods, not noise.
    assert all(0.3 < e < 0.5 for e in errors["replacement"]), errors
    assert all(e < 0.16 for e in errors["resampling"]), errors
    assert max(errors["resampling"]) < 0.5 * min(errors["replacement"])


def test_the_rate_at_t_0_is_the_whole_bound_at_t_T_the_prior_term_and_it_only_falls():
    model = md.GaussianDenoiser(torch.zeros(3), torch.eye(3) * 0.3, md.Schedule.linear(50, 1e-3, 0.2))
    x0 = model.sample_data(16, torch.Generator().manual_seed(0), torch.float64).clamp(-1, 1)
    terms = md.vlb_terms(model, x0, model.schedule, generator=torch.Generator().manual_seed(1))
    rate = md.progressive_rate(terms)
    assert rate.shape == terms.shape
    torch.testing.assert_close(rate[:, 0], md.vlb(model, x0, model.schedule, generator=torch.Generator().manual_seed(1)))
    torch.testing.assert_close(rate[:, -1], terms[:, -1])
    torch.testing.assert_close(rate[:, 10], terms[:, 10:].sum(1))
    assert (rate[:, 1:] <= rate[:, :-1] + 1e-12).all()       # the KL terms are >= 0: the rate only falls with t
    mean_rate = md.progressive_rate(terms.mean(0))
    torch.testing.assert_close(mean_rate, rate.mean(0))


def test_the_distortion_is_zero_at_t_0_and_matches_predict_x0_at_t():
    model = md.GaussianDenoiser(torch.zeros(2), torch.eye(2) * 0.2, S_LIN)
    x0 = model.sample_data(500, torch.Generator().manual_seed(2), torch.float64)
    d = md.progressive_distortion(model, x0, S_LIN, [0, 10, 500, 1000], generator=torch.Generator().manual_seed(3))
    assert d[0] == 0 and (d[1:] > 0).all() and (d[1:].diff() > 0).all()
    g = torch.Generator().manual_seed(3)
    x_t = md.q_sample(x0, 10, S_LIN, generator=g)
    hat = md.predict_x0(x_t, model(x_t, 10), 10, S_LIN)
    assert float(d[1]) == pytest.approx(float(((hat - x0) * 127.5).square().mean().sqrt()), rel=1e-12)
    # at t = T the estimate is nearly the prior mean 0: RMSE ~ 127.5 sqrt(0.2) ~ 57 gray levels
    assert float(d[3]) == pytest.approx(127.5 * math.sqrt(0.2), rel=0.05)


def test_the_per_image_distortion_is_each_images_rmse_and_its_root_mean_square_is_the_batch_figure():
    model = md.GaussianDenoiser(torch.zeros(3), torch.eye(3) * 0.2, S_LIN)
    x0 = model.sample_data(6, torch.Generator().manual_seed(4), torch.float64)
    ts = [0, 1, 101, 901]
    batch = md.progressive_distortion(model, x0, S_LIN, ts, generator=torch.Generator().manual_seed(5), clip_x0=1.0)
    each = md.progressive_distortion(model, x0, S_LIN, ts, generator=torch.Generator().manual_seed(5), clip_x0=1.0,
                                     per_image=True)
    assert each.shape == (4, 6) and each.dtype == torch.float64 and (each[0] == 0).all()
    torch.testing.assert_close(each.square().mean(1).sqrt(), batch, rtol=1e-12, atol=0)
    g = torch.Generator().manual_seed(5)
    md.q_sample(x0, 1, S_LIN, generator=g)                        # the draw at t = 1, as the function makes it
    x_t = md.q_sample(x0, 101, S_LIN, generator=g)
    hat = md.predict_x0(x_t, model(x_t, 101), 101, S_LIN).clamp(-1, 1)
    torch.testing.assert_close(each[2], ((hat - x0) * 127.5).square().mean(1).sqrt(), rtol=1e-12, atol=0)
    with pytest.raises(TypeError, match="per_image"):
        md.progressive_distortion(model, x0, S_LIN, ts, per_image=1)


def test_bad_input_gets_an_error_naming_the_argument():
    x0, tau = randn(2, 3), md.timesteps(1000, 5)
    with pytest.raises(ValueError, match="mask"):
        md.inpaint(wavy, x0, torch.ones(2, 2), S_LIN, tau)
    with pytest.raises(ValueError, match="mask"):
        md.inpaint(wavy, x0, torch.full((3,), 0.5), S_LIN, tau)
    with pytest.raises(TypeError, match="mask"):
        md.inpaint(wavy, x0, [1, 0, 1], S_LIN, tau)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="resample"):
            md.inpaint(wavy, x0, torch.ones(3), S_LIN, tau, resample=bad)
        with pytest.raises(ValueError, match="jump"):
            md.inpaint(wavy, x0, torch.ones(3), S_LIN, tau, resample=2, jump=bad)
    with pytest.raises(ValueError, match="jump"):
        md.repaint_walk(5, 2, 6)
    with pytest.raises(TypeError, match="resample"):
        md.repaint_walk(5, 1.5)
    with pytest.raises(ValueError, match="x_T"):
        md.inpaint(wavy, x0, torch.ones(3), S_LIN, tau, x_T=randn(3, 3))
    with pytest.raises(ValueError, match="timesteps"):
        md.inpaint(wavy, x0, torch.ones(3), S_LIN, [5, 3])
    with pytest.raises(ValueError, match="eta"):
        md.inpaint(wavy, x0, torch.ones(3), S_LIN, tau, eta=-1.0)
    with pytest.raises(ValueError, match="model"):
        md.inpaint(lambda x, t: x[:1], x0, torch.ones(3), S_LIN, tau)
    with pytest.raises(ValueError, match="terms"):
        md.progressive_rate(torch.ones(4, 1))
    with pytest.raises(ValueError, match="x0"):
        md.replace_known(randn(2, 3), randn(3, 3), torch.ones(3), 5, S_LIN)


def test_vlb_terms_at_chosen_times_computes_those_columns_and_leaves_the_others_nan():
    model = md.GaussianDenoiser(torch.zeros(2), torch.eye(2) * 0.3, md.Schedule.linear(20, 1e-3, 0.2))
    x0 = model.sample_data(8, torch.Generator().manual_seed(0), torch.float64).clamp(-1, 1)
    calls = []

    def counted(x, t):
        calls.append(int(t[0]))
        return model(x, t)

    part = md.vlb_terms(counted, x0, model.schedule, times=[1, 7, 20], generator=torch.Generator().manual_seed(1))
    assert calls == [1, 7, 20]
    assert torch.isfinite(part[:, [0, 6, 19, 20]]).all() and part[:, [1, 2, 5, 7, 18]].isnan().all()
    full = md.vlb_terms(model, x0, model.schedule)
    torch.testing.assert_close(part[:, 20], full[:, 20])
    for bad, error in (([], ValueError), ([0, 3], ValueError), ([21], ValueError), ([1.5], TypeError)):
        with pytest.raises(error, match="times"):
            md.vlb_terms(model, x0, model.schedule, times=bad)
