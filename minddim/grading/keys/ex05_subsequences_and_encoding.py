"""The answer key of exercise 05: subsequences and encoding (solutions/05_subsequences_and_encoding.py).

For each question: the inputs it is checked on, the package's reference and the known mistakes, each with its
hint (see :mod:`minddim.grading.spec`).
"""

from __future__ import annotations

import torch

from ... import sampling
from ..spec import Case, register
from ._cases import LONG, SHORT, _gaussian_model, _per, _randn


register(
    "uniform_timesteps",
    forbidden=("sampling.timesteps",),
    hints=('tau: S evenly spread times in 1..T at which the fast sampler evaluates the model',
           'notebook 05, section 1 (Subsequences tau); DDIM sec. 4.2 and app. D.2'),
    cases=lambda: [Case(f"T = {T}, S = {S}", {"T": T, "S": S}) for T, S in ((1000, 10), (1000, 50), (1000, 30), (10, 10), (7, 1))],
    reference=lambda T, S: sampling.timesteps(T, S, "uniform").tolist(),
    mistakes={
        "0-based: this course's time runs 1..T, so add one to floor((i - 1) T / S) (the official code's "
        "range(0, T, T // S) when S divides T)":
            lambda T, S: [(i * T) // S for i in range(S)],
        "return tau in increasing order (tau_1 < ... < tau_S); the sampler walks it backwards":
            lambda T, S: [(i * T) // S + 1 for i in range(S)][::-1],
        "range(1, T + 1, T // S) has more than S entries when S does not divide T: use floor((i - 1) T / S) + 1":
            lambda T, S: list(range(1, T + 1, T // S)),
    })


def _slerp_cases():
    g = torch.Generator().manual_seed(9)
    return [Case("w = 0.3, batch 3 of 16-dim latents", {"z0": _randn((3, 16), torch.float32, g), "z1": _randn((3, 16), torch.float32, g), "w": 0.3}),
            Case("w = 0", {"z0": _randn((2, 4), torch.float64, g), "z1": _randn((2, 4), torch.float64, g), "w": 0.0}),
            Case("w = 1, images (batch 2, 1x4x4)", {"z0": _randn((2, 1, 4, 4), torch.float32, g), "z1": _randn((2, 1, 4, 4), torch.float32, g), "w": 1.0}),
            Case("orthogonal unit vectors, w = 0.5", {"z0": torch.tensor([[1.0, 0.0]]), "z1": torch.tensor([[0.0, 1.0]]), "w": 0.5})]


register(
    "slerp",
    hints=('interpolation between two Gaussian latents that keeps their norm: along the great circle, not the chord',
           'notebook 05, section 3 (Interpolation); DDIM sec. 5.3 and app. D.5, eq. 67'),
    cases=_slerp_cases,
    reference=lambda z0, z1, w: sampling.slerp(z0, z1, w),
    mistakes={
        "that is linear interpolation (1 - w) z0 + w z1; slerp follows the great circle, weights sin((1 - w) theta) / sin(theta)":
            lambda z0, z1, w: (1 - w) * z0 + w * z1,
    })


def _encode_cases():
    g = torch.Generator().manual_seed(13)
    return [Case(f"S = {S} (exact Gaussian model)", {"model": _gaussian_model(LONG), "x0": _randn((5, 2), torch.float64, g),
                                                      "schedule": LONG, "timesteps": sampling.timesteps(1000, S)})
            for S in (5, 20)]


def _encode_with(eval_at="prev", from_zero=True):
    def f(model, x0, schedule, timesteps):
        tau = timesteps.tolist()
        walk = [0] + tau if from_zero else tau
        x, ab = x0, schedule.alpha_bars
        for tp, t in zip(walk[:-1], walk[1:]):
            te = t if eval_at == "next" else (tp if tp > 0 else tau[0])
            eps = model(x, torch.full((x.shape[0],), te))
            x0_hat = (x - (1 - ab[tp]).sqrt() * eps) / ab[tp].sqrt()
            x = ab[t].sqrt() * x0_hat + (1 - ab[t]).sqrt() * eps
        return x
    return f


register(
    "encode",
    hints=("DDIM's deterministic sampler run backwards: x_0 to the x_{tau_S} that decodes back to it (approximately; exactly as S grows)",
           'notebook 05, section 3 (Encoding data into x_T and back); DDIM sec. 4.3 and eq. 13'),
    cases=_encode_cases,
    reference=lambda model, x0, schedule, timesteps: sampling.encode(model, x0, schedule, timesteps),
    mistakes={
        "evaluate the model where you are (x at t_prev, time t_prev) before stepping to t: explicit Euler; "
        "only the first step, from t = 0, uses tau_1": _encode_with("next"),
        "the walk starts at the data, t = 0 (alpha-bar_0 = 1): its first step goes from x_0 to tau_1, then tau_1 to "
        "tau_2, ..., S steps in all": _encode_with(from_zero=False),
    }, rtol=1e-6, atol=1e-8)




def _latent_cases():
    g = torch.Generator().manual_seed(17)

    def case(label, t, batch, dtype, mean, var, schedule=LONG):
        return Case(label, {"x0": _randn((batch, len(mean)), dtype, g), "t": t, "mean": torch.tensor(mean, dtype=dtype),
                            "var": torch.tensor(var, dtype=dtype), "schedule": schedule})
    return [case("random t, batch 5, 2-D", torch.randint(1, LONG.T + 1, (5,), generator=g), 5, torch.float64,
                 [0.5, -1.0], [0.3, 2.0]),
            case("t = T", torch.full((3,), LONG.T), 3, torch.float64, [1.0, 2.0], [0.2, 0.5]),
            case("t = 1", torch.full((3,), 1), 3, torch.float64, [-0.5, 0.5], [0.04, 1.5]),
            case("t = 0: the data point itself", torch.zeros(2, dtype=torch.long), 2, torch.float64, [0.3, 0.0], [0.5, 0.5]),
            case("float32, 3-D, batch 4", torch.tensor([10, 250, 600, 990]), 4, torch.float32, [0.0, 1.0, -2.0],
                 [1.0, 0.1, 3.0]),
            case("a short schedule (T = 10)", torch.tensor([10, 5]), 2, torch.float64, [2.0, -1.0], [0.5, 0.25], SHORT)]


def _latent_with(values_fn=lambda s: s.alpha_bars, about_mean=True, spread=True, power=0.5, invert=False,
                 in_x=True, standardized_noise=False):
    def f(x0, t, mean, var, schedule):
        ab = _per(values_fn(schedule), t, x0)
        if standardized_noise:
            return ab.sqrt() * x0 + (1 - ab).sqrt() * (x0 - mean) / var.sqrt()
        if not spread:
            return ab.sqrt() * x0
        ratio = (ab * var + 1 - ab) / var
        gain = (1 / ratio if invert else ratio) ** power
        centre = mean if about_mean else torch.zeros_like(mean)
        x_t = ab.sqrt() * centre + (x0 - centre) * gain
        return x_t if in_x else x_t / ab.sqrt()
    return f


def _exact_latent(x0, t, mean, var, schedule):
    """The reference: per coordinate, the increasing affine map from N(m, v) onto q(x_t) = N(sqrt(ab) m, ab v + 1 - ab)
    (the tests check it against md.gaussian_flow_map and a numerical solution of eq. 14)."""
    ab = _per(schedule.alpha_bars, t, x0)
    return ab.sqrt() * mean + (x0 - mean) * ((ab * var + 1 - ab) / var).sqrt()


register(
    "exact_latent",
    forbidden=("score.gaussian_flow_map", "score.pf_ode_solve", "sampling.encode"),
    hints=("the point x_t that DDIM's ODE (eq. 14) carries x_0 to, with the exact model: where your encode goes as "
           "S grows",
           "notebook 05, section 3 (Encoding); DDIM sec. 4.3 and Proposition 1 (Song et al.'s probability-flow ODE, "
           "which keeps the marginals q(x_t)), "
           "the exact model of Gaussian data is affine in x_t, and in one dimension a flow cannot reorder points; "
           "notebook 06, Going further E, writes this flow map in DDIM's variables"),
    cases=_latent_cases,
    reference=_exact_latent,
    mistakes={
        "that is the mean of q(x_t | x_0): the ODE has no noise, but its latent also carries the spread the noise "
        "adds to q(x_t)": _latent_with(spread=False),
        "scale the offset from the mean, x_0 - m, and move the mean to sqrt(alpha-bar_t) m; you scaled x_0 about 0":
            _latent_with(about_mean=False),
        "the offset scales by the ratio of standard deviations, the square root of the ratio of variances":
            _latent_with(power=1.0),
        "the ratio is upside down: q(x_t) has variance alpha-bar_t v + 1 - alpha-bar_t, the data v; the offset "
        "grows by the square root of the first over the second": _latent_with(invert=True),
        "you returned DDIM's x-bar_t = x_t / sqrt(alpha-bar_t): map back to DDPM's x_t": _latent_with(in_x=False),
        "x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) z with z the standardized x_0 has variance "
        "(sqrt(alpha-bar_t v) + sqrt(1 - alpha-bar_t))^2, not q(x_t)'s alpha-bar_t v + 1 - alpha-bar_t":
            _latent_with(standardized_noise=True),
        "DDIM's alpha is DDPM's alpha-bar: use schedule.alpha_bars, not schedule.alphas": _latent_with(
            values_fn=lambda s: s.alphas),
    }, rtol=1e-5, atol=1e-7)


# -- how fast the encoder meets the ODE's latent (a measurement) -----------------------------------------------------
def _convergence_cases():
    g = torch.Generator().manual_seed(19)

    def case(label, encode, mean, var, batch, Ss):
        mean, var = torch.tensor(mean, dtype=torch.float64), torch.tensor(var, dtype=torch.float64)
        return Case(label, {"encode": encode, "x0": mean + var.sqrt() * _randn((batch, len(mean)), torch.float64, g),
                            "mean": mean, "var": var, "schedule": LONG, "Ss": Ss})
    return [case("DDIM's encoder, 2-D, S = 10, 20, 50, 100", _encode_with(), [0.5, -1.0], [0.3, 2.0], 20, (10, 20, 50, 100)),
            case("an encoder that evaluates the model at the end of each step, 2-D", _encode_with("next"), [1.0, 0.0],
                 [0.5, 1.5], 20, (10, 20, 50)),
            case("DDIM's encoder, 3-D, S = 5, 10, 20, 40", _encode_with(), [0.0, 2.0, -1.0], [1.0, 0.1, 4.0], 10,
                 (5, 10, 20, 40))]


def _measure(encode, x0, mean, var, schedule, Ss, target="last", grid="uniform", error="rms", swap_axes=False):
    """(errors, slope) of the S-step encoder against the exact latent (the mistakes' variants by keyword)."""
    import numpy as np
    from ...analytic import GaussianDenoiser
    model = GaussianDenoiser(mean, torch.diag(var), schedule)
    B, errors = x0.shape[0], []
    for S in Ss:
        tau = sampling.timesteps(schedule.T, S, grid)
        t_end = int(tau[-1]) if target == "last" else schedule.T
        d2 = (encode(model, x0, schedule, tau) - _exact_latent(x0, torch.full((B,), t_end), mean, var, schedule)).pow(2)
        errors.append(d2.sum(1).mean().sqrt().item() if error == "rms" else
                      d2.sum(1).mean().item() if error == "mse" else
                      d2.sum(1).sqrt().mean().item() if error == "mean" else d2.mean().sqrt().item())
    x, y = np.log(Ss), np.log(errors)
    return tuple(errors), float(np.polyfit(y, x, 1)[0] if swap_axes else np.polyfit(x, y, 1)[0])


def _convergence_with(own_encoder=False, **kw):
    def f(encode, x0, mean, var, schedule, Ss):
        return _measure(_encode_with() if own_encoder else encode, x0, mean, var, schedule, Ss, **kw)
    return f


def _encoder_convergence(encode, x0, mean, var, schedule, Ss):
    """The reference: the RMS distance of the S-step encoder to the exact latent at tau_S, for each S, and the
    least-squares slope of its log against log S (the tests check it against md.encode and md.gaussian_flow_map)."""
    return _measure(encode, x0, mean, var, schedule, Ss)


register(
    "encoder_convergence",
    forbidden=("score.gaussian_flow_map", "score.pf_ode_solve", "sampling.encode"),
    hints=("how far the S-step encoder lands from the point the ODE carries x_0 to (your exact_latent, at the grid's "
           "last time), and the order at which that distance shrinks",
           "notebook 05, section 3 (Encoding) and Going further C (the order of the deterministic sampler); "
           "the least-squares slope of log(error) against log(S)"),
    cases=_convergence_cases,
    reference=_encoder_convergence,
    mistakes={
        "use the encode you are given (the check passes more than one encoder), not your own":
            _convergence_with(own_encoder=True),
        "the encoder stops at the grid's last time tau_S, not at T: compare with the exact latent there":
            _convergence_with(target="T"),
        "the grid is the uniform subsequence of question 1 (md.timesteps(T, S)), not the trailing one":
            _convergence_with(grid="trailing"),
        "the error is the RMS distance, the square root of the mean squared distance: the mean squared distance "
        "falls twice as steeply": _convergence_with(error="mse"),
        "the error is the RMS distance, the square root of the mean squared distance, not the mean distance":
            _convergence_with(error="mean"),
        "the squared distance is summed over the coordinates of a row, then averaged over the rows: you averaged "
        "over the coordinates too": _convergence_with(error="per_coordinate"),
        "fit log(error) against log(S), not log(S) against log(error)": _convergence_with(swap_axes=True),
    }, rtol=1e-4, atol=1e-9)
