"""The answer key of exercise 08: beyond sampling: inpainting and the progressive code's rate (solutions/08_beyond_sampling.py).

For each question: the inputs it is checked on, the package's reference and the known mistakes, each with its
hint (see :mod:`minddim.grading.spec`).
"""

from __future__ import annotations

import functools

import torch

from ... import bound, progressive, sampling
from ...analytic import GaussianDenoiser
from ..spec import Case, register
from ._cases import LONG, SHORT, _gaussian_model, _per, _randn, _rows, _wavy_model


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
    reference=lambda terms: progressive.progressive_rate(terms),
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


# -- (d) RePaint's jump back up: q(x_{t_up} | x_t) ------------------------------------------------------------
def _jump_cases():
    g = torch.Generator().manual_seed(2034)

    def case(label, schedule, t, t_up, shape, dtype):
        return Case(label, {"x_t": _randn(shape, dtype, g), "t": t, "t_up": t_up, "schedule": schedule,
                            "noise": _randn(shape, dtype, g)})
    t = torch.randint(0, 800, (5,), generator=g)
    return [case("random t < t_up, jumps of 2 to 200 steps, batch 5", LONG, t,
                 t + torch.tensor([2, 10, 50, 120, 200]), (5, 2), torch.float32),
            case("RePaint's jumps between neighbours of md.timesteps(1000, 25) (t_up - t = 40)", LONG,
                 torch.tensor([41, 361, 681]), torch.tensor([81, 401, 721]), (3, 2), torch.float32),
            case("from t = 0 (x_t is the data) up to 10, 300, 1000", LONG, torch.zeros(3, dtype=torch.long),
                 torch.tensor([10, 300, 1000]), (3, 2), torch.float32),
            case("up to t_up = T, batch size 1", LONG, torch.tensor([900]), torch.tensor([1000]), (1, 2),
                 torch.float32),
            case("float64, jumps of 1 and 5", LONG, torch.tensor([1, 500, 995, 7]), torch.tensor([2, 501, 1000, 12]),
                 (4, 3), torch.float64),
            case("image-shaped x (batch 2, 1x4x4)", LONG, torch.tensor([100, 600]), torch.tensor([300, 700]),
                 (2, 1, 4, 4), torch.float32),
            case("a short schedule (T = 10), from t = 3 and 6 to T", SHORT, torch.tensor([3, 6]),
                 torch.tensor([10, 10]), (2, 2), torch.float32)]


def _alpha_product(schedule, first, last, x):
    """prod_{s = first}^{last} alpha_s per row, written as a learner writes it (a product of schedule.alphas; an empty
    range gives 1), reshaped to broadcast against x."""
    alphas = schedule.alphas
    return _rows(torch.stack([alphas[int(a):int(b) + 1].prod() for a, b in zip(first.tolist(), last.tolist())]), x)


def _jump_reference(x_t, t, t_up, schedule, noise):
    """RePaint's jump back (Lugmayr et al. 2022, sec. 4.2: t_up - t forward steps of DDPM eq. 2 in one draw):
    q(x_{t_up} | x_t) = N(sqrt(alpha-bar_{t_up} / alpha-bar_t) x_t, (1 - alpha-bar_{t_up} / alpha-bar_t) I)."""
    r = _jump_ratio(schedule, t, t_up, x_t)
    return r.sqrt() * x_t + (1 - r).sqrt() * noise


def _jump_ratio(schedule, t, t_up, x):
    """alpha-bar_{t_up} / alpha-bar_t = alpha_{t+1} ... alpha_{t_up}, per row, shaped to broadcast over x."""
    return _rows(schedule.alpha_bars[t_up] / schedule.alpha_bars[t], x)


def _jump_with(ratio="right", sqrt_var=True, sqrt_mean=True, var="one_minus_ratio"):
    """The reference's formula with one thing changed (its defaults give the reference's numbers)."""
    def f(x_t, t, t_up, schedule, noise):
        ab = schedule.alpha_bars
        if ratio == "right":
            r = _jump_ratio(schedule, t, t_up, x_t)
        elif ratio == "from_x0":
            r = _rows(ab[t_up], x_t)
        elif ratio == "inverted":
            r = _rows(ab[t] / ab[t_up], x_t)
        elif ratio == "one_step":
            r = _rows(schedule.alphas[t_up], x_t)
        elif ratio == "from_t":                            # alpha_t .. alpha_{t_up}: one factor too many
            r = _alpha_product(schedule, t, t_up, x_t)
        elif ratio == "shifted":                           # alpha_t .. alpha_{t_up - 1}
            r = _alpha_product(schedule, t, t_up - 1, x_t)
        if var == "sum_of_betas":
            v = torch.stack([schedule.betas[int(a) + 1:int(b) + 1].sum() for a, b in zip(t.tolist(), t_up.tolist())])
            v = v.to(x_t.dtype).reshape(r.shape)
        else:
            v = 1 - r
        return (r.sqrt() if sqrt_mean else r) * x_t + (v.sqrt() if sqrt_var else v) * noise
    return f


_JUMP_MISTAKES = {
    "that is q(x_{t_up} | x_0): it treats x_t as the data; x_t already holds the noise of steps 1..t, so only the "
    "steps t+1..t_up are still to take (their alphas' product)":
        _jump_with(ratio="from_x0"),
    "the ratio is upside down: going up, the signal shrinks, so its factor alpha-bar_{t_up} / alpha-bar_t is below 1 "
    "(with alpha-bar_t / alpha-bar_{t_up} > 1 the variance 1 - ratio is negative and its square root NaN)":
        _jump_with(ratio="inverted"),
    "that is a single forward step (DDPM eq. 2, RePaint's eq. 1) at t_up; a jump of several steps composes all of "
    "them, t+1..t_up":
        _jump_with(ratio="one_step"),
    "one factor too many: x_t has already taken the step into time t, so the jump multiplies alpha_{t+1} ... "
    "alpha_{t_up}, not from alpha_t":
        _jump_with(ratio="from_t"),
    "off by one: the jump's steps are t+1..t_up (alpha-bar_{t_up} / alpha-bar_t), not t..t_up-1":
        _jump_with(ratio="shifted"),
    "the noise is scaled by a standard deviation: sqrt(1 - ratio) times noise, not the variance 1 - ratio":
        _jump_with(sqrt_var=False),
    "the mean's factor is the square root of the ratio of alpha-bars (each step scales by sqrt(alpha_s)), not the "
    "ratio itself":
        _jump_with(sqrt_mean=False),
    "the steps' variances do not simply add: each later step scales the noise already there by sqrt(alpha_s), so "
    "the variance is 1 - (the product of the alphas), not the sum of the betas":
        _jump_with(var="sum_of_betas"),
}


register(
    "repaint_jump",
    forbidden=("sampling.inpaint", "diffusion.q_step"),
    hints=("RePaint's jump back up the chain: the forward process's steps t+1, ..., t_up taken from x_t in one "
           "draw, the law q(x_{t_up} | x_t)",
           "RePaint (Lugmayr et al. 2022) sec. 4.2 takes them one at a time with DDPM eq. 2 (its eq. 1); compose "
           "them as DDPM does from x_0 to get eq. 4 (notebook 01): a Gaussian step of a Gaussian is Gaussian, "
           "means scale and variances add after scaling"),
    cases=_jump_cases,
    reference=_jump_reference,
    mistakes=_JUMP_MISTAKES,
    rtol=1e-5, atol=1e-6)


# -- (e) a measurement: when is the picture sharp, and how much of the code is still to come? --------------------
GRAY = 127.5              # data in [-1, 1]: one gray level of [0, 255] is 1 / 127.5


@functools.lru_cache(maxsize=1)
def four_pixel_measurement():
    """The measurement of question 5: the exact model of 2x2 Gaussian images (4 pixels, neighbours correlated,
    quantized to the 256 gray levels), six images, one noise per image, and the bound's terms from
    :func:`minddim.bound.vlb_terms` (the exact model; its own draws).  Returns (model, x0, noise, terms); the solution
    notebook builds the same with the same code.  Cached: the terms take T model evaluations."""
    cov = 0.16 * torch.tensor([[1.0, 0.7, 0.7, 0.5], [0.7, 1.0, 0.5, 0.7], [0.7, 0.5, 1.0, 0.7],
                               [0.5, 0.7, 0.7, 1.0]], dtype=torch.float64)
    model = GaussianDenoiser(torch.zeros(4), cov, LONG)
    g = torch.Generator().manual_seed(8)
    x0 = model.sample_data(6, g, dtype=torch.float64).clamp(-1, 1)
    x0 = ((x0 + 1) * GRAY).round() / GRAY - 1                        # on the 256 gray levels
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    terms = bound.vlb_terms(model, x0, LONG, generator=g)             # (6, T + 1) nats
    return model, x0, noise, terms


class _Detour:
    """The exact model with a detour: for t in [low, high] its x0_hat is off by ``shift`` (model units) in every
    pixel, so the distortion goes up there and down again below (x0_hat stays sharp only from low - 1 on)."""

    def __init__(self, model, schedule, low, high, shift):
        self.model, self.schedule, self.low, self.high, self.shift = model, schedule, low, high, shift

    def __call__(self, x_t, t):
        eps = self.model(x_t, t)
        ab = _per(self.schedule.alpha_bars, t, x_t)
        on = ((t >= self.low) & (t <= self.high)).to(x_t.dtype).reshape(ab.shape)
        return eps - on * self.shift * (ab / (1 - ab)).sqrt()         # x0_hat + shift where on


class _Images:
    """The exact model of D-pixel vectors applied to images (B, 1, H, W) with H W = D."""

    def __init__(self, model):
        self.model = model

    def __call__(self, x_t, t):
        return self.model(x_t.flatten(1), t).reshape(x_t.shape)


def _sharp_cases():
    model, x0, noise, terms = four_pixel_measurement()
    g = torch.Generator().manual_seed(2035)
    model10 = GaussianDenoiser(torch.zeros(4), 0.16 * torch.eye(4, dtype=torch.float64), SHORT)
    x10 = model10.sample_data(4, g, dtype=torch.float64).clamp(-1, 1).reshape(4, 1, 2, 2).float()
    rand_terms = lambda B, T: 0.1 + torch.rand(B, T + 1, generator=g, dtype=torch.float64)  # noqa: E731

    def case(label, model, x0, noise, terms, schedule, level):
        return Case(label, {"model": model, "x0": x0, "noise": noise, "terms": terms, "schedule": schedule,
                            "level": level})
    return [case("the exact model of 2x2 Gaussian images, 6 images, level = 6 gray levels", model, x0, noise, terms,
                 LONG, 6.0),
            case("the same images, level = 2 gray levels (the measurement)",
                 model, x0, noise, terms, LONG, 2.0),
            case("the same images, level = 1 gray level (some never get there: t* = 0)", model, x0, noise, terms,
                 LONG, 1.0),
            case("a model whose x0_hat is off by 12 gray levels at t = 3, 4 only, level = 6", _Detour(model, LONG, 3, 4,
                 12 / GRAY), x0, noise, terms, LONG, 6.0),
            case("image-shaped x0 (batch 4, 1x2x2), float32, a short schedule (T = 10), level = 20",
                 _Images(model10), x10, torch.randn(x10.shape, generator=g), rand_terms(4, 10).float(), SHORT, 20.0)]


def _distortion(model, x0, noise, schedule, scale=GRAY, squared=False, pooled=False):
    """(B, T) RMSE of x0_hat (DDPM eq. 15) against x0 at t = 1..T on the [0, 255] scale, x_t = sqrt(alpha-bar_t) x0 +
    sqrt(1 - alpha-bar_t) noise (the same noise at every t); one batched model call over all t.  ``scale``,
    ``squared`` (the mean square) and ``pooled`` (over the whole batch) make the listed mistakes."""
    B, T = x0.shape[0], schedule.T
    ab = schedule.alpha_bars[1:].to(x0.dtype).reshape(T, 1, *([1] * (x0.dim() - 1)))   # (T, 1, ...)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise                                    # (T, B, ...)
    t = torch.arange(1, T + 1).repeat_interleave(B)
    with torch.no_grad():
        eps = model(x_t.flatten(0, 1), t).reshape(x_t.shape)
    x0_hat = (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
    sq = ((x0_hat - x0) * scale).square().flatten(2)                                  # (T, B, pixels)
    msd = sq.mean((1, 2))[:, None].expand(T, B) if pooled else sq.mean(2)
    return (msd if squared else msd.sqrt()).T                                           # (B, T)


def _sharp_with(stays=True, from_top=True, sent=False, include_t=False, off=0, **kw):
    def f(model, x0, noise, terms, schedule, level):
        D = _distortion(model, x0, noise, schedule, **kw)                               # (B, T): column t - 1 is t
        below = D < level
        T = schedule.T
        if not from_top:                        # the smallest t >= 1 under the level
            t_star = torch.where(below.any(1), below.int().argmax(1) + 1, torch.zeros_like(below[:, 0], dtype=torch.long))
        elif stays:                             # the largest t with every s <= t under the level
            t_star = below.int().cumprod(1).sum(1)
        else:                                   # the largest t under the level (the first one met coming down)
            t_star = torch.where(below.any(1), T - below.flip(1).int().argmax(1), torch.zeros_like(below[:, 0], dtype=torch.long))
        t_star = (t_star + off).clamp(0, T).long()
        total = terms.sum(-1)
        k = torch.arange(T + 1)
        left = (terms * (k[None, :] < (t_star[:, None] + (1 if include_t else 0)))).sum(-1)
        share = 1 - left / total if sent else left / total
        return t_star, share.to(terms.dtype)
    return f


def _sharp_reference(model, x0, noise, terms, schedule, level):
    """(t*, share) per image: t* the largest t such that the RMSE of x0_hat at every s = 1..t is under ``level`` gray
    levels (0 if it is not at t = 1), and share = (L_0 + ... + L_{t*-1}) / (L_0 + ... + L_T) = 1 - R(t*) / R(0),
    what is still to send once x_{t*} is decoded."""
    D = _distortion(model, x0, noise, schedule)                                         # (B, T)
    t_star = (D < level).long().cumprod(1).sum(1)                                       # the run from t = 1 up
    rate = progressive.progressive_rate(terms)
    return t_star, (1 - rate.gather(-1, t_star[:, None])[:, 0] / rate[:, 0]).to(terms.dtype)


register(
    "bits_left_when_sharp",
    forbidden=("progressive.progressive_distortion",),
    hints=("decoding runs from x_T down to x_0; the receiver's picture x0_hat is 'sharp' from the first moment it "
           "comes within the level and stays there; what is still to come then is the part of the bound not yet "
           "received",
           "notebook 08, section 1 (the rate R(t) and the distortion, and the table of when the picture is within 2 "
           "gray levels); DDPM sec. 4.3 and eq. 15 for x0_hat; your progressive_rate of question 2"),
    cases=_sharp_cases,
    reference=_sharp_reference,
    mistakes={
        "that is the share already sent, R(t*) / R(0); the question asks for what is still to come: 1 minus it":
            _sharp_with(sent=True),
        "off by one: once x_{t*} is decoded the receiver holds L_T, ..., L_{t*} (R(t*)); what is still to come is "
        "L_{t*-1}, ..., L_0, without L_{t*}":
            _sharp_with(include_t=True),
        "decoding runs from t = T down to 0: the earliest point of the decoding is the largest t, not the smallest":
            _sharp_with(from_top=False),
        "the picture must stay within the level from t* down to t = 1; you took the first t under the level coming "
        "down, though it goes above it again later":
            _sharp_with(stays=False),
        "off by one: t* is the last t (coming down) from which every distortion is under the level, not the t "
        "before it":
            _sharp_with(off=1),
        "units: data in [-1, 1] spans the 256 gray levels [0, 255], so one gray level is 1 / 127.5 in model units: "
        "multiply the RMSE by 127.5, not 255":
            _sharp_with(scale=255.0),
        "units: the RMSE is in model units ([-1, 1]); convert it to gray levels of [0, 255] (times 127.5) before "
        "comparing with the level":
            _sharp_with(scale=1.0),
        "that is the mean squared error; the distortion is its square root (RMSE)":
            _sharp_with(squared=True),
        "each image has its own t* and share: the RMSE of one image (over its pixels), not over the whole batch":
            _sharp_with(pooled=True),
    },
    rtol=1e-4, atol=1e-6)
