"""The answer key of exercise 03: the epsilon loss, training and ancestral sampling (solutions/03_epsilon_loss.py).

For each question: the inputs it is checked on, the package's reference and the known mistakes, each with its
hint (see :mod:`minddim.grading.spec`).
"""

from __future__ import annotations

import contextlib
import io
import math

import torch

from ... import diffusion, sampling
from ...analytic import GaussianMixtureDenoiser
from ...data import toy_mixture
from ...losses import epsilon_loss
from ..spec import Case, register
from ._cases import COSINE_100, LONG, SHORT, _per, _randn, _rows, _time_cases


def _linear_model(x, t):
    return 0.3 * x + 0.001 * _rows(t, x)


def _eps_loss_inputs(s, t, shape, dtype, g):
    return {"model": _linear_model, "x0": _randn(shape, dtype, g), "t": t, "noise": _randn(shape, dtype, g), "schedule": s}


def _eps_loss_with(values_fn, reduce="mean", target="noise"):
    def f(model, x0, t, noise, schedule):
        v = _per(values_fn(schedule), t, x0)
        x_t = v.sqrt() * x0 + (1 - v).sqrt() * noise
        err = (model(x_t, t) - (noise if target == "noise" else x0)) ** 2
        return err.mean() if reduce == "mean" else err.sum()
    return f


register(
    "epsilon_loss",
    forbidden=("losses.objective",),     # objective(..., "eps", "simple") is the same loss
    hints=('L_simple: how well the model recovers the noise that made x_t, averaged over everything',
           'notebook 03, section 1 (From the posterior mean to predicting eps); DDPM eq. 14'),
    cases=lambda: _time_cases(_eps_loss_inputs),
    reference=lambda model, x0, t, noise, schedule: epsilon_loss(model, x0, schedule, t=t, noise=noise),
    mistakes={
        "x_t must be built with alpha-bar_t (q_sample), not alpha_t": _eps_loss_with(lambda s: s.alphas),
        "L_simple here is the mean over all elements, not the sum": _eps_loss_with(lambda s: s.alpha_bars, reduce="sum"),
        "the target is the noise eps that made x_t, not x_0": _eps_loss_with(lambda s: s.alpha_bars, target="x0"),
    })


def _mean_inputs(s, t, shape, dtype, g):
    return {"x_t": _randn(shape, dtype, g), "eps": _randn(shape, dtype, g), "t": t, "schedule": s}


def _p_mean_with(alpha_fn=lambda s: s.alphas, sqrt_in_denominator=True):
    def f(x_t, eps, t, schedule):
        a, ab, beta = (_per(alpha_fn(schedule), t, x_t), _per(schedule.alpha_bars, t, x_t), _per(schedule.betas, t, x_t))
        denom = (1 - ab).sqrt() if sqrt_in_denominator else 1 - ab
        return (x_t - beta / denom * eps) / a.sqrt()
    return f


register(
    "p_mean",
    # ddim_step's eta = 1 unit step with zero noise is the same mean, and so is DDIM eq. 7's mean at x_0's estimate;
    # DDPM eq. 11's first form, md.q_posterior at md.predict_x0, is the learner's to write (the prompt says so)
    forbidden=("sampling.ddim_step", "diffusion.q_sigma_posterior"),
    hints=('the mean of p_theta(x_{t-1} | x_t) when the model predicts the noise: the posterior mean with x_0 replaced by its estimate',
           'notebook 03, section 1; DDPM eq. 11'),
    cases=lambda: _time_cases(_mean_inputs),
    reference=lambda x_t, eps, t, schedule: diffusion.p_mean(x_t, eps, t, schedule),
    mistakes={
        "the outer factor is 1 / sqrt(alpha_t) (one step), not 1 / sqrt(alpha-bar_t)": _p_mean_with(lambda s: s.alpha_bars),
        "missing square root: eps is scaled by beta_t / sqrt(1 - alpha-bar_t)": _p_mean_with(sqrt_in_denominator=False),
    })


def _step_inputs(s, t, shape, dtype, g):
    return {"x_t": _randn(shape, dtype, g), "eps": _randn(shape, dtype, g), "t": t, "schedule": s,
            "z": _randn(shape, dtype, g)}


def _ancestral_with(std=True, alpha_fn=lambda s: s.alphas):
    def f(x_t, eps, t, schedule, z):
        mean = _p_mean_with(alpha_fn)(x_t, eps, t, schedule)
        var = _per(schedule.beta_tildes, t, x_t)
        return mean + (var.sqrt() if std else var) * z
    return f


register(
    "ancestral_step",
    forbidden=("sampling.ddim_step", "sampling.ddpm", "sampling.sample", "diffusion.q_sigma_posterior"),
    hints=("one reverse step of DDPM: the model's mean plus fresh noise of the posterior's spread",
           'notebook 03, section 4 (Ancestral sampling); DDPM Algorithm 2, line 4'),
    cases=lambda: _time_cases(_step_inputs),
    reference=lambda x_t, eps, t, schedule, z: sampling.ddim_step(x_t, eps, t, t - 1, schedule, 1.0, z)[0],
    mistakes={
        "the noise is scaled by the variance tilde-beta_t; it needs the standard deviation sqrt(tilde-beta_t)":
            _ancestral_with(std=False),
        "the outer factor of the mean is 1 / sqrt(alpha_t), not 1 / sqrt(alpha-bar_t)":
            _ancestral_with(alpha_fn=lambda s: s.alpha_bars),
    })


# Algorithm 1 end to end: the learner's training step, run by a checker (a spy first, then a seeded training run)
TRAIN_STEPS, TRAIN_BATCH, TRAIN_LR = 800, 256, 3e-3
TRAIN_WITHIN = 0.20          # the trained MLP's held-out L_simple must come within 20% of the exact floor
# the reference training_step meets it (tests/test_exercises_and_grader.py grades the solved exercise 03 full marks)


class _Spy(torch.nn.Module):
    """A model that records what the training step feeds it: eps_hat = w * x_t, one parameter w."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.5))
        self.calls = []

    def forward(self, x_t, t):
        self.calls.append((x_t.detach().clone(), t.detach().clone() if isinstance(t, torch.Tensor) else t))
        return self.w * x_t


_SPY_T_HINT = ("draw t uniformly from 1..T, both ends included: this course's time is 1-based (t = 0 is the data "
               "itself, and t = T must be drawn too)")
_SPY_X_T_HINT = "form x_t with q(x_t | x_0): sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps (schedule.alpha_bars)"
_SPY_NOISE_HINT = "draw fresh noise eps ~ N(0, I) at every step (from the generator): the same eps at every step trains on one noise draw"
_SPY_TARGET_HINT = "the loss compares the model's output with the noise eps that made x_t, not with x_0 (DDPM eq. 14)"
_SPY_UPDATE_HINT = ("each step needs optimizer.zero_grad(), loss.backward() and optimizer.step(), in that order; "
                    "without zero_grad the gradients of earlier steps pile up")


def _spy_case(fn, x0, schedule, seed, lr):
    """Three calls of the learner's step on a spy model with plain SGD: what t and noise it draws, what x_t it
    forms, what loss it returns and how it updates w; None or (problem, hint)."""
    spy = _Spy()
    opt = torch.optim.SGD(spy.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    T, B = schedule.T, x0.shape[0]
    noises, ts = [], []
    for call in range(3):
        w_before = spy.w.detach().clone()
        spy.calls.clear()
        loss = fn(spy, opt, x0.clone(), schedule, g)
        if len(spy.calls) != 1:
            return (f"expected one model evaluation per step, got {len(spy.calls)}",
                    "call the model once, on the batch of x_t with its t")
        x_t, t = spy.calls[0]
        if not isinstance(t, torch.Tensor) or t.dtype.is_floating_point or tuple(t.shape) != (B,):
            return (f"expected t as an integer tensor of shape ({B},), got {type(t).__name__} "
                    f"{tuple(t.shape) if isinstance(t, torch.Tensor) else ''}", "one t per sample, torch.randint(..., (batch,))")
        if tuple(x_t.shape) != tuple(x0.shape):
            return f"expected x_t of shape {tuple(x0.shape)}, got {tuple(x_t.shape)}", _SPY_X_T_HINT
        if t.min() < 1 or t.max() > T:
            return f"expected t in 1..{T}, got values from {int(t.min())} to {int(t.max())}", _SPY_T_HINT
        ab = schedule.alpha_bars[t].to(x0.dtype)[:, None]
        noise = (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()
        noises.append(noise)
        ts.append(t)
        out = w_before * x_t
        expected = ((out - noise) ** 2).mean()
        if not isinstance(loss, (float, torch.Tensor)) or (isinstance(loss, torch.Tensor) and loss.numel() != 1):
            return f"expected the loss as a number, got {type(loss).__name__}", "return the loss (loss.item() or the 0-dim tensor)"
        got = float(loss)
        if not math.isclose(got, float(expected), rel_tol=1e-4, abs_tol=1e-6):
            if math.isclose(got, float(((out - x0) ** 2).mean()), rel_tol=1e-4, abs_tol=1e-6):
                return f"expected the loss {float(expected):.5g} (on eps), got {got:.5g}", _SPY_TARGET_HINT
            corr = float(torch.corrcoef(torch.stack([noise.reshape(-1), x0.reshape(-1)]))[0, 1])
            if abs(corr) > 0.5 or not (0.75 < float(noise.std()) < 1.25):
                return (f"expected x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps with eps ~ N(0, I) independent "
                        f"of x_0, got x_t whose implied eps has standard deviation {float(noise.std()):.3g} and "
                        f"correlation {corr:.2f} with x_0", _SPY_X_T_HINT)
            return f"expected the loss {float(expected):.5g}, got {got:.5g}", None
        grad = (2 * (out - noise) * x_t).mean()
        w_after = spy.w.detach()
        if torch.isclose(w_after, w_before):
            return (f"expected w to move by -lr * grad = {float(-lr * grad):.4g} after the step, got no change",
                    _SPY_UPDATE_HINT)
        if not torch.isclose(w_after, w_before - lr * grad, rtol=1e-4, atol=1e-7):
            return (f"expected w to move by -lr * grad = {float(-lr * grad):.4g}, got {float(w_after - w_before):.4g}",
                    _SPY_UPDATE_HINT)
    if any(float((noises[0] - n).abs().mean()) < 1e-2 for n in noises[1:]):     # float32 recovery differs by rounding only
        return "expected a new eps at every step, got the same eps in two steps", _SPY_NOISE_HINT
    all_t = torch.cat(ts)
    if int(all_t.max()) != T or int(all_t.min()) != 1:
        return (f"expected t drawn uniformly from 1..{T} (both ends appear in {len(all_t)} draws), got values from "
                f"{int(all_t.min())} to {int(all_t.max())}", _SPY_T_HINT)
    return None


def _training_case(fn, data, held_out, schedule, seed):
    """Train md.MLP with the learner's step for a fixed budget; grade the held-out loss against the exact floor."""
    from ...models import MLP

    x_h, t_h, n_h, floor = held_out
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model = MLP()
        opt = torch.optim.Adam(model.parameters(), lr=TRAIN_LR)
        g, gd = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
        with contextlib.redirect_stdout(io.StringIO()):        # a step that prints its loss must not flood the cell
            for _ in range(TRAIN_STEPS):
                fn(model, opt, data[torch.randint(0, data.shape[0], (TRAIN_BATCH,), generator=gd)], schedule, g)
        with torch.no_grad():
            loss = float(epsilon_loss(model, x_h, schedule, t=t_h, noise=n_h))
    finally:
        torch.set_num_threads(threads)
    if not math.isfinite(loss) or loss > floor * (1 + TRAIN_WITHIN):
        return (f"expected a held-out L_simple within {TRAIN_WITHIN:.0%} of the exact floor {floor:.4f} after "
                f"{TRAIN_STEPS} steps, got {loss:.4f} ({loss / floor - 1:+.0%})", None)
    return None


def _training_inputs():
    from ...analytic import sample_mixture

    mixture = toy_mixture("eight_gaussians")
    exact = GaussianMixtureDenoiser(*mixture, LONG)
    g = torch.Generator().manual_seed(2032)
    x_h = sample_mixture(*mixture, 4096, generator=g).float()
    t_h, n_h = torch.randint(1, LONG.T + 1, (4096,), generator=g), torch.randn(4096, 2, generator=g)
    floor = float(epsilon_loss(exact, x_h.double(), LONG, t=t_h, noise=n_h.double()))
    data = sample_mixture(*mixture, 20_000, generator=g).float()
    return data, (x_h, t_h, n_h, floor)


def _training_step_cases():
    g = torch.Generator().manual_seed(2033)
    data, held_out = _training_inputs()
    return [Case("a spy model with SGD (lr 0.01) on the short schedule (T = 10), batch 64: what your step draws and returns",
                 {"mode": "spy", "x0": 5 * torch.randn(64, 2, generator=g), "schedule": SHORT, "seed": 0, "lr": 0.01}),
            Case(f"training md.MLP on eight Gaussians: {TRAIN_STEPS} steps of batch {TRAIN_BATCH}, Adam {TRAIN_LR:g}",
                 {"mode": "train", "data": data, "held_out": held_out, "schedule": LONG, "seed": 0})]


def _training_step_checker(fn, mode, **inputs):
    return _spy_case(fn, **inputs) if mode == "spy" else _training_case(fn, **inputs)


def training_step(model, optimizer, x0_batch, schedule, generator):
    """DDPM Algorithm 1, one step: t ~ Uniform{1..T}, eps ~ N(0, I), a gradient step on L_simple; the loss."""
    t = torch.randint(1, schedule.T + 1, (x0_batch.shape[0],), generator=generator)
    noise = torch.randn(x0_batch.shape, generator=generator, dtype=x0_batch.dtype)
    loss = epsilon_loss(model, x0_batch, schedule, t=t, noise=noise)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _training_step_with(t_low=1, target="noise", fixed_noise=False, zero_grad=True, values_fn=lambda s: s.alpha_bars):
    cache = {}

    def f(model, optimizer, x0_batch, schedule, generator):
        B = x0_batch.shape[0]
        t = torch.randint(t_low, schedule.T + t_low, (B,), generator=generator)
        if fixed_noise:
            noise = cache.setdefault(tuple(x0_batch.shape), torch.randn(x0_batch.shape, generator=generator))
        else:
            noise = torch.randn(x0_batch.shape, generator=generator)
        v = _per(values_fn(schedule), t, x0_batch)
        x_t = v.sqrt() * x0_batch + (1 - v).sqrt() * noise
        loss = ((model(x_t, t) - (noise if target == "noise" else x0_batch)) ** 2).mean()
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    return f


register(
    "training_step",
    hints=("one step of DDPM's training: pick a random time and noise, noise the data to that time, and move the "
           "network toward predicting that noise",
           "DDPM Algorithm 1, lines 2-5, one statement each (x_0 from the batch, t uniform on 1..T, eps ~ N(0, I), a "
           "gradient step on eq. 14's loss: zero the gradients, backpropagate, step the optimizer); the loss: notebook "
           "03, section 1 (From the posterior mean to predicting eps)"),
    cases=_training_step_cases,
    reference=training_step,
    checker=_training_step_checker,
    mistakes={
        _SPY_T_HINT: _training_step_with(t_low=0),
        _SPY_TARGET_HINT: _training_step_with(target="x0"),
        _SPY_NOISE_HINT: _training_step_with(fixed_noise=True),
        _SPY_UPDATE_HINT: _training_step_with(zero_grad=False),
        _SPY_X_T_HINT: _training_step_with(values_fn=lambda s: s.alphas),
    })




# a derivation that no notebook cell prints: the floor of L_simple at time t for Gaussian data, from Sigma's eigenvalues
def _floor_cases():
    g = torch.Generator().manual_seed(2035)
    a = torch.randn(3, 3, generator=g, dtype=torch.float64)
    cov3 = a @ a.T + 0.1 * torch.eye(3, dtype=torch.float64)
    toy = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)      # toy_mixture("gaussian"): eigenvalues 0.2, 1.8
    return [Case("a correlated 2-D covariance (eigenvalues 0.2 and 1.8), random t",
                 {"t": torch.randint(1, LONG.T + 1, (6,), generator=g), "schedule": LONG, "cov": toy}),
            Case("a random 3-D covariance, t = 1, 10, 100, 300, 1000",
                 {"t": torch.tensor([1, 10, 100, 300, 1000]), "schedule": LONG, "cov": cov3}),
            Case("a short schedule (T = 10), every t, 3-D covariance",
                 {"t": torch.arange(1, SHORT.T + 1), "schedule": SHORT, "cov": cov3}),
            Case("a cosine schedule (T = 100), a diagonal covariance diag(4, 0.25)",
                 {"t": torch.tensor([1, 25, 50, 99, 100]), "schedule": COSINE_100,
                  "cov": torch.diag(torch.tensor([4.0, 0.25], dtype=torch.float64))}),
            Case("1-D data of variance 1 (then the floor is alpha-bar_t), batch 1",
                 {"t": torch.tensor([400]), "schedule": LONG, "cov": torch.ones(1, 1, dtype=torch.float64)})]


def eps_loss_floor(t, schedule, cov):
    """The smallest E[L_simple] at time t (per element, as epsilon_loss reduces it) for x_0 ~ N(mu, cov): the exact
    eps-model E[eps | x_t] leaves Cov(eps | x_t) = I - (1 - ab)(ab cov + (1 - ab) I)^{-1}, whose trace over d is
    mean_i ab lambda_i / (ab lambda_i + 1 - ab) over cov's eigenvalues lambda_i; shape (batch,), float64."""
    lam = torch.linalg.eigvalsh(cov.to(torch.float64))
    ab = schedule.alpha_bars[t].to(torch.float64)[:, None]
    return (ab * lam / (ab * lam + 1 - ab)).mean(-1)


def _floor_with(kind="residual", values=lambda s: s.alpha_bars, shift=0, reduce="mean", spectrum="eig"):
    def f(t, schedule, cov):
        cov = cov.to(torch.float64)
        lam = {"eig": torch.linalg.eigvalsh(cov), "diag": torch.diagonal(cov),
               "max": torch.linalg.eigvalsh(cov)[-1:]}[spectrum]
        ab = values(schedule)[t - shift].to(torch.float64)[:, None]
        v = ab * lam + 1 - ab
        per = {"residual": ab * lam / v, "explained": (1 - ab) / v, "x0": lam * (1 - ab) / v, "marginal": v}[kind]
        return per.mean(-1) if reduce == "mean" else per.sum(-1)
    return f


register(
    "eps_loss_floor",
    hints=("the part of the noise in x_t that no function of x_t can recover: the posterior variance of eps given x_t, "
           "averaged over the coordinates as L_simple averages them",
           "notebook 03, section 2 (the floor no network can beat; the exact model is E[eps | x_t]); for Gaussian data "
           "x_0 and x_t are jointly Gaussian (DDPM eq. 4), so Cov(eps | x_t) is a Schur complement; diagonalize cov"),
    cases=_floor_cases,
    reference=eps_loss_floor,
    mistakes={
        "L_simple averages over the d coordinates: divide the trace of Cov(eps | x_t) by d": _floor_with(reduce="sum"),
        "that is what the best model explains, E||E[eps | x_t]||^2 / d; the floor is what it leaves, 1 minus that":
            _floor_with(kind="explained"),
        "that is the error of the best estimate of x_0, Cov(x_0 | x_t); eps's error is alpha-bar_t / (1 - alpha-bar_t) "
        "times x_0's": _floor_with(kind="x0"),
        "that is the variance of x_t itself, alpha-bar_t lambda + 1 - alpha-bar_t, not what is left of eps once x_t is known":
            _floor_with(kind="marginal"),
        "the floor depends on cov's eigenvalues, not its diagonal (they agree only when cov is diagonal): rotate to "
        "cov's eigenvectors first": _floor_with(spectrum="diag"),
        "every eigenvalue contributes its own term: average over all of them, not only the largest":
            _floor_with(spectrum="max"),
        "x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps: use schedule.alpha_bars, not schedule.alphas":
            _floor_with(values=lambda s: s.alphas),
        "1-based time: alpha-bar_t is schedule.alpha_bars[t], not [t - 1]": _floor_with(shift=1),
    }, rtol=1e-6, atol=1e-9)
