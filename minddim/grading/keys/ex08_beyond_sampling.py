"""The answer key of exercise 08: beyond sampling: inpainting and the progressive code's rate (solutions/08_beyond_sampling.py).

For each question: the inputs it is checked on, the package's reference and the known mistakes, each with its
hint (see :mod:`minddim.grading.spec`).
"""

from __future__ import annotations

import torch

from ... import bound, sampling
from ..spec import Case, register
from ._cases import LONG, SHORT, _gaussian_model, _per, _randn, _wavy_model


def _replace_cases():
    g = torch.Generator().manual_seed(2027)

    def mask_of(shape, dtype=torch.bool):
        m = torch.rand(shape, generator=g) < 0.5
        m.view(-1)[:2] = torch.tensor([True, False])         # both kinds of pixel, whatever the draw
        return m if dtype == torch.bool else m.to(dtype)

    def case(label, schedule, t, t_prev, shape, dtype, mask):
        return Case(label, {"x_prev": _randn(shape, dtype, g), "x0": _randn(shape, dtype, g), "mask": mask, "t": t,
                            "t_prev": t_prev, "schedule": schedule, "noise": _randn(shape, dtype, g)})
    t = torch.randint(2, LONG.T + 1, (5,), generator=g)
    right_half = torch.zeros(1, 1, 4, 4)
    right_half[..., 2:] = 1
    return [case("random t > t_prev >= 1, batch 5, a bool mask", LONG, t, (t * 0.6).long().clamp(min=1), (5, 2),
                 torch.float32, mask_of((5, 2))),
            case("t_prev = 0 (the last step: the known pixels are x0 itself), a 0/1 float mask", LONG,
                 torch.tensor([1, 20, 300]), torch.zeros(3, dtype=torch.long), (3, 2), torch.float32,
                 mask_of((3, 2), torch.float32)),
            case("t = T", LONG, torch.full((4,), LONG.T), torch.full((4,), 900), (4, 2), torch.float32, mask_of((4, 2))),
            case("batch size 1, a 0/1 integer mask", LONG, torch.tensor([500]), torch.tensor([480]), (1, 2),
                 torch.float32, mask_of((1, 2), torch.long)),
            case("float64", LONG, torch.tensor([800, 50, 400, 2]), torch.tensor([700, 30, 100, 1]), (4, 3),
                 torch.float64, mask_of((4, 3), torch.float64)),
            case("image-shaped x (batch 2, 1x4x4), one (1, 1, 4, 4) mask for the batch (the right half known)", LONG,
                 torch.tensor([900, 40]), torch.tensor([850, 20]), (2, 1, 4, 4), torch.float32, right_half),
            case("a short schedule (T = 10), t = T, a (4, 4) bool mask against (3, 1, 4, 4)", SHORT,
                 torch.full((3,), SHORT.T), torch.full((3,), 9), (3, 1, 4, 4), torch.float32, mask_of((4, 4)))]


def _replace_with(known="draw", at="t_prev", values_fn=lambda s: s.alpha_bars, shift=0, sqrt=True, swap=False,
                  keep_all_of_x=False):
    def f(x_prev, x0, mask, t, t_prev, schedule, noise):
        m = mask.bool()
        tt = (t if at == "t" else t_prev) - shift
        ab = _per(values_fn(schedule), tt, x0)
        if known == "x0":
            draw = x0
        elif known == "mean":
            draw = ab.sqrt() * x0
        else:
            draw = (ab.sqrt() * x0 + (1 - ab).sqrt() * noise) if sqrt else ab * x0 + (1 - ab) * noise
        if keep_all_of_x:
            return m * draw + x_prev
        return torch.where(m, x_prev, draw) if swap else torch.where(m, draw, x_prev)
    return f


register(
    "replace_known",
    hints=('the replacement step of inpainting: known pixels of x_{t_prev} are a fresh draw of q(x_{t_prev} | x_0)',
           'notebook 08, section 4 (Inpainting with an unconditional model)'),
    cases=_replace_cases,
    reference=lambda x_prev, x0, mask, t, t_prev, schedule, noise: sampling.replace_known(
        x_prev, x0, mask, t_prev, schedule, noise),
    mistakes={
        "the known pixels must carry the noise of time t_prev like the rest of x_prev: put a draw of "
        "q(x_{t_prev} | x_0) = sqrt(alpha-bar_{t_prev}) x0 + sqrt(1 - alpha-bar_{t_prev}) noise, not the clean x0":
            _replace_with(known="x0"),
        "after the step from t to t_prev, x_prev is at time t_prev: noise x0 to t_prev, not to t":
            _replace_with(at="t"),
        "known and unknown are swapped: mask = 1 marks a known pixel, which gets the draw of q(x_{t_prev} | x_0); "
        "where mask = 0 keep x_prev": _replace_with(swap=True),
        "q(x_{t_prev} | x_0) is a draw, not its mean: add sqrt(1 - alpha-bar_{t_prev}) * noise to sqrt(alpha-bar_{t_prev}) * x0":
            _replace_with(known="mean"),
        "you used alpha_t where alpha-bar_t belongs: q(x_t | x_0) has mean sqrt(alpha-bar_t) x0 (schedule.alpha_bars)":
            _replace_with(values_fn=lambda s: s.alphas),
        "missing square roots: the draw is sqrt(alpha-bar) * x0 + sqrt(1 - alpha-bar) * noise (standard deviations)":
            _replace_with(sqrt=False),
        "0-based: schedule.alpha_bars[t_prev] is alpha-bar_{t_prev} already (1-based, alpha_bars[0] = 1); do not "
        "subtract 1": _replace_with(shift=1),
        "where the mask is 1, x_prev must go: mask * draw + (1 - mask) * x_prev (or torch.where(mask.bool(), draw, "
        "x_prev)), not mask * draw + x_prev": _replace_with(keep_all_of_x=True),
    })


def _rate_cases():
    g = torch.Generator().manual_seed(2028)

    def case(label, B, T, dtype):
        # positive terms (nats or bits), L_0..L_T along the last axis
        return Case(label, {"terms": (0.1 + torch.rand(B, T + 1, generator=g, dtype=torch.float64)).to(dtype)})
    return [case("T = 10, batch 4", 4, 10, torch.float32),
            case("T = 1000 (the DDPM schedule's length), batch 3", 3, 1000, torch.float32),
            case("batch size 1, T = 10", 1, 10, torch.float32),
            case("float64, T = 1000, batch 2", 2, 1000, torch.float64),
            case("T = 1 (two terms, L_0 and L_1), batch 3", 3, 1, torch.float32)]


def _suffix_sum(x, dim=-1):
    return x.flip(dim).cumsum(dim).flip(dim)


register(
    "progressive_rate",
    hints=("the bits the receiver holds by the time x_t is decoded in DDPM's progressive code",
           'notebook 08, section 1 (Progressive lossy compression); DDPM sec. 4.3, Algorithms 3-4'),
    cases=_rate_cases,
    reference=lambda terms: bound.progressive_rate(terms),
    mistakes={
        "you summed over the batch (axis 0): each sample has its own code, so sum along the last axis, the "
        "terms L_0..L_T": lambda terms: _suffix_sum(terms, 0),
        "you summed L_0..L_t (a forward cumulative sum from t = 0); x_T is sent first, so by time t the receiver "
        "has L_T + ... + L_t: rate[t] = sum over k >= t (flip, cumsum, flip)": lambda terms: terms.cumsum(-1),
        "off by one: L_t, the cost of sending x_t itself, is part of the rate at t: sum over k >= t, not k > t":
            lambda terms: _suffix_sum(terms) - terms,
        "index t of the result must be time t: flip the cumulative sum back (terms.flip(-1).cumsum(-1).flip(-1))":
            lambda terms: terms.flip(-1).cumsum(-1),
        "that is what is still to come after x_t (sum over k < t); the rate at t is what x_T, ..., x_t cost: "
        "sum over k >= t": lambda terms: terms.cumsum(-1) - terms,
        "that is rate[0], the whole bound, at every t: the rate at t sums only L_t, ..., L_T":
            lambda terms: terms.sum(-1, keepdim=True).expand_as(terms),
    },
    # float32 sums of 1001 terms in another order (a loop over t, total minus a prefix sum) differ by rounding
    # (at most about 1001 x 6e-8 relative, ~1e-4);
    # every term is >= 0.1, so each listed mistake is off by far more
    rtol=1e-4, atol=1e-3)


def _inpaint_step_cases():
    g = torch.Generator().manual_seed(2029)

    def case(label, model, schedule, t, t_prev, shape, dtype, mask, eta):
        return Case(label, {"model": model, "x_t": _randn(shape, dtype, g), "x0": _randn(shape, dtype, g), "mask": mask,
                            "t": t, "t_prev": t_prev, "schedule": schedule, "eta": eta,
                            "noise": _randn(shape, dtype, g), "noise_known": _randn(shape, dtype, g)})
    top = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    top[..., :2, :] = True
    return [case("random t > t_prev >= 1, eta = 1, batch 5 (exact Gaussian model)", _gaussian_model(LONG), LONG,
                 torch.tensor([900, 500, 300, 120, 40]), torch.tensor([800, 450, 250, 60, 20]), (5, 2), torch.float32,
                 torch.tensor([[True, False]] * 3 + [[False, True]] * 2), 1.0),
            case("eta = 0 (deterministic DDIM), float64", _gaussian_model(LONG), LONG, torch.full((3,), 600),
                 torch.full((3,), 400), (3, 2), torch.float64, torch.tensor([[1.0, 0.0]], dtype=torch.float64), 0.0),
            case("t_prev = 0 (the last step), batch size 1", _gaussian_model(LONG), LONG, torch.tensor([10]),
                 torch.tensor([0]), (1, 2), torch.float32, torch.tensor([[False, True]]), 0.5),
            case("image-shaped x (batch 2, 1x4x4), a (1, 1, 4, 4) mask, a nonlinear toy model", _wavy_model, LONG,
                 torch.tensor([1000, 200]), torch.tensor([950, 100]), (2, 1, 4, 4), torch.float32, top, 1.0)]


def _inpaint_step_with(replace="after", same_noise=False):
    def f(model, x_t, x0, mask, t, t_prev, schedule, eta, noise, noise_known):
        if replace == "before":
            x_t = sampling.replace_known(x_t, x0, mask, t, schedule, noise_known)
        x_prev = sampling.ddim_step(x_t, model(x_t, t), t, t_prev, schedule, eta, noise)[0]
        if replace != "after":
            return x_prev
        return sampling.replace_known(x_prev, x0, mask, t_prev, schedule, noise if same_noise else noise_known)
    return f


register(
    "inpaint_step",
    forbidden=("sampling.replace_known", "sampling.inpaint"),
    hints=("one inpainting step: the sampler's DDIM step, then the known pixels replaced at the new time",
           'notebook 08, section 4; DDIM eq. 12 followed by the replacement step'),
    cases=_inpaint_step_cases,
    reference=lambda model, x_t, x0, mask, t, t_prev, schedule, eta, noise, noise_known: sampling.replace_known(
        sampling.ddim_step(x_t, model(x_t, t), t, t_prev, schedule, eta, noise)[0], x0, mask, t_prev, schedule,
        noise_known),
    mistakes={
        "that is the DDIM step alone: after it, replace the known pixels with a draw of q(x_{t_prev} | x_0)":
            _inpaint_step_with(replace="never"),
        "replace after the step, at t_prev (the model reads x_t as it is): replacing x_t's known pixels before the "
        "step leaves x_{t_prev}'s known pixels wherever the step moved them": _inpaint_step_with(replace="before"),
        "the draw of q(x_{t_prev} | x_0) takes its own noise, noise_known; `noise` is the DDIM step's (eq. 12)":
            _inpaint_step_with(same_noise=True),
    },
    # the exact model computes in float64 and returns float32: rounding of the step's order of operations only
    rtol=1e-4, atol=1e-6)
