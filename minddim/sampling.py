"""The generative process: DDIM's generalized step, and DDPM as its eta = 1 special case.

DDIM (Song et al., 2021) sec. 4: for a decreasing walk tau_S > ... > tau_1 > 0 through ``1..T``,
each step is eq. 12,

    x_{t_prev} = sqrt(bar-alpha_prev) * x0_hat                      ("predicted x_0")
               + sqrt(1 - bar-alpha_prev - sigma^2) * eps_theta       ("direction pointing to x_t")
               + sigma * z,                                            z ~ N(0, I)

with sigma = eta * sqrt((1 - bar-alpha_prev)/(1 - bar-alpha_t)) * sqrt(1 - bar-alpha_t/bar-alpha_prev)
(eq. 16).  eta = 0 is the deterministic DDIM sampler; eta = 1 over all T steps is DDPM's ancestral
sampler (Ho et al., Algorithm 2, with sigma_t^2 = tilde-beta_t).  ``eta="sigma_hat"`` is DDIM's
sigma-hat (Table 1): the eta = 1 mean with DDPM's larger variance sigma^2 = 1 - bar-alpha_t/bar-alpha_prev
(beta_t for unit strides; DDIM sec. 5, App. D.3), with no noise on the last step to t = 0, as DDPM's Algorithm 2
("z ~ N(0, I) if t > 1, else z = 0") and the official DDIM code's ``ddpm_steps`` do; DDIM's text adds noise on
every step.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ._validate import as_time, check_nonneg_real, check_positive_int, check_same_shape, check_tensor
from .diffusion import _alpha_bar_pair, _noise_like, _time_pair, _x0_from_eps, q_sample
from .parameterization import split_variance
from .schedules import Schedule, as_schedule

SIGMA_HAT = "sigma_hat"
LEARNED = "learned"
TIMESTEP_KINDS = ("uniform", "quadratic", "trailing")


def timesteps(T: int, S: int, kind: str = "uniform") -> torch.Tensor:
    """The increasing subsequence tau_1 < ... < tau_S of 1..T that the sampler visits (DDIM sec. 4.2).

    - ``"uniform"``: tau_i = floor((i - 1) T / S) + 1, i.e. 1, 1 + T/S, ...; this is the official DDIM
      code's ``range(0, T, T // S)`` shifted to 1-based time when S divides T, and always has S entries.
    - ``"quadratic"``: tau_i = floor(0.8 T ((i - 1)/(S - 1))^2) + 1 for S > 1 and [1] for S = 1 (DDIM app. D.2's
      quadratic choice, used for CIFAR-10; the paper picks the constant "such that tau_{-1} is close to T", the 0.8
      is its official code's), with collisions pushed up so the sequence stays strictly increasing.
    - ``"trailing"``: tau_i = floor(i T / S + 1/2), which ends at tau_S = T (Lin et al., 2024; they and diffusers round
      half to even instead, one step lower where i T / S ends in .5 with an even integer part, e.g. 62.5 -> 62; never
      for S dividing T).

    With S = T every kind gives 1, 2, ..., T.
    """
    T = check_positive_int(T, "T")
    S = check_positive_int(S, "S", high=T)
    if kind == "uniform":
        tau = [(i * T) // S + 1 for i in range(S)]
    elif kind == "quadratic":
        raw = [int(0.8 * T * (i / (S - 1)) ** 2) + 1 if S > 1 else 1 for i in range(S)]
        tau = []
        for i, q in enumerate(raw):
            lo = tau[-1] + 1 if tau else 1
            tau.append(min(max(q, lo), T - (S - 1 - i)))
    elif kind == "trailing":
        tau = [int(math.floor(i * T / S + 0.5)) for i in range(1, S + 1)]
    else:
        raise ValueError(f"kind must be one of {TIMESTEP_KINDS}, got {kind!r}")
    return torch.tensor(tau, dtype=torch.long)


def check_timesteps(tau, T: int, name: str = "timesteps") -> torch.Tensor:
    """A 1-D, strictly increasing integer sequence inside 1..T."""
    if isinstance(tau, torch.Tensor):
        if tau.is_floating_point() or tau.dtype == torch.bool:
            raise TypeError(f"{name} must hold integers, got dtype {tau.dtype}")
    else:
        try:
            tau = torch.as_tensor(list(tau))
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} must be a sequence of integers") from None
        if tau.numel() == 0:
            raise ValueError(f"{name} must be a non-empty 1-D sequence of time steps in 1..{T}")
        if tau.is_floating_point() or tau.dtype == torch.bool:
            raise TypeError(f"{name} must hold integers")
    if tau.dim() != 1 or tau.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {tuple(tau.shape)}")
    tau = as_time(tau.long(), T, name)
    if (tau[1:] <= tau[:-1]).any():
        raise ValueError(f"{name} must be strictly increasing (tau_1 < ... < tau_S); the sampler walks it backwards")
    return tau


def check_eta(eta):
    """eta is a number >= 0 or the string "sigma_hat"."""
    if isinstance(eta, str):
        if eta != SIGMA_HAT:
            raise ValueError(f"eta must be a number >= 0 or {SIGMA_HAT!r}, got {eta!r}")
        return eta
    return check_nonneg_real(eta, "eta")


def ddim_sigma(schedule: Schedule, t, t_prev, eta) -> torch.Tensor:
    """sigma_{tau_i}(eta) = eta sqrt((1 - bar-alpha_prev)/(1 - bar-alpha_t)) sqrt(1 - bar-alpha_t/bar-alpha_prev)
    (DDIM eq. 16), in float64; with ``eta="sigma_hat"``, sigma-hat = sqrt(1 - bar-alpha_t/bar-alpha_prev)
    (DDIM sec. 5, App. D.3), set to 0 on the final step to t_prev = 0 (as DDPM's Algorithm 2 and the official DDIM
    code's ``ddpm_steps`` do; DDIM's text does not say so)"""
    schedule = as_schedule(schedule)
    eta = check_eta(eta)
    tt, tp = _time_pair(schedule, t, t_prev)
    ab, ab_prev = schedule.alpha_bars[tt], schedule.alpha_bars[tp]
    step_var = 1 - ab / ab_prev
    if eta == SIGMA_HAT:
        return torch.where(tp > 0, step_var.sqrt(), torch.zeros_like(step_var))
    return eta * ((1 - ab_prev) / (1 - ab) * step_var).sqrt()


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, t, t_prev, schedule: Schedule, eta=0.0,
              noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
              clip_x0: float | None = None):
    """One step of DDIM's generative process from t to t_prev < t (DDIM eq. 12).

    Returns ``(x_prev, x0_hat)``. ``noise`` (shape of ``x_t``) is drawn from ``generator`` when omitted
    and unused when sigma = 0. ``clip_x0`` clamps the predicted x_0 to [-clip_x0, clip_x0] (images).
    """
    schedule = as_schedule(schedule)
    check_tensor(x_t, "x_t")
    check_tensor(eps, "eps")
    check_same_shape(eps, x_t, "eps", "x_t")
    eta = check_eta(eta)
    return _ddim_update(x_t, eps, _step_coefficients(schedule, t, t_prev, eta, x_t), clip_x0, noise, generator)


def _step_coefficients(schedule: Schedule, t, t_prev, eta, x: torch.Tensor):
    """The scalars of one step of eq. 12, cast and shaped for x: sqrt(bar-alpha_t), sqrt(1 - bar-alpha_t),
    sqrt(bar-alpha_prev), the coefficient sqrt(1 - bar-alpha_prev - sigma^2) of the direction to x_t, sigma; and a
    bool, whether any row draws noise (sigma > 0)."""
    ab, ab_prev = _alpha_bar_pair(schedule, t, t_prev, x)
    sigma = _against(ddim_sigma(schedule, t, t_prev, eta), x)
    # sigma-hat keeps the eta = 1 mean and only enlarges the noise
    sigma_mean = sigma if eta != SIGMA_HAT else _against(ddim_sigma(schedule, t, t_prev, 1.0), x)
    return (ab.sqrt(), (1 - ab).sqrt(), ab_prev.sqrt(), (1 - ab_prev - sigma_mean**2).clamp(min=0).sqrt(), sigma,
            bool((sigma > 0).any()))


def _ddim_update(x_t, eps, coefficients, clip_x0, noise, generator):
    """Eq. 12 on validated inputs: the arithmetic shared by :func:`ddim_step`, :func:`sample` (which validates its
    inputs once and computes every step's coefficients before the loop) and :func:`inpaint`."""
    sqrt_ab, sqrt_one_minus_ab, sqrt_ab_prev, direction, sigma, noisy = coefficients
    x0_hat = _x0_from_eps(x_t, eps, sqrt_ab, sqrt_one_minus_ab)
    if clip_x0 is not None:
        x0_hat = x0_hat.clamp_(-clip_x0, clip_x0)
        eps = (x_t - sqrt_ab * x0_hat).div_(sqrt_one_minus_ab)
    x_prev = (sqrt_ab_prev * x0_hat).add_(direction * eps)
    if noisy:
        x_prev = x_prev.add_(sigma * _noise_like(noise, x_t, generator=generator))
    elif noise is not None:
        _noise_like(noise, x_t)
    return x_prev, x0_hat


class Trajectory(NamedTuple):
    """What :func:`sample` returns with ``trajectory=True``.

    ``x0`` is the final sample; ``xs[k]`` is x at time ``times[k]`` (from tau_S down to 0) and
    ``x0_preds[k]`` the x_0 predicted at that step (one fewer entry than ``xs``)."""

    x0: torch.Tensor
    xs: torch.Tensor
    x0_preds: torch.Tensor
    times: torch.Tensor


def sample(model, x_T: torch.Tensor, schedule: Schedule, timesteps, eta=0.0, *,
           generator: torch.Generator | None = None, trajectory: bool = False, progress: bool = False,
           clip_x0: float | None = None, rows: slice | None = None):
    """Run the generative process x_{tau_S} -> ... -> x_{tau_1} -> x_0 (DDIM sec. 4.2, eq. 12).

    ``model(x_t, t) -> eps_hat`` with ``t`` of shape ``(B,)``; ``timesteps`` is the increasing tau from
    :func:`timesteps`; ``eta`` a number >= 0 or ``"sigma_hat"``. DDPM ancestral sampling is
    ``sample(model, x_T, schedule, timesteps(T, T), eta=1)``. Returns x_0, or a :class:`Trajectory`
    when ``trajectory=True``. Runs under ``torch.no_grad()``.

    ``eta="learned"`` is DDPM's Algorithm 2 with a learned variance (sec. 4.2's "learned diagonal Sigma"): ``model``
    returns ``cat(eps_hat, log sigma_theta^2)`` along dimension 1 (:func:`minddim.parameterization.as_eps_model`), the
    step keeps the eta = 1 mean (eq. 11) and adds sigma_theta z, with no noise on the last step to t = 0, as DDPM's
    official code's ``p_sample``; over all T steps only (``timesteps(T, T)``: the learned variance is a one-step one).

    ``rows`` (a slice of the batch) samples only those rows of ``x_T``, for one of several processes sharing a
    batch (:func:`minddim.distributed.sample_across`): the network sees those rows only, while each step's noise
    is still drawn for the whole batch from ``generator`` and then sliced. Processes given the same ``x_T`` and
    identically seeded generators thus draw exactly what one process draws for the whole batch, and their rows
    put together are its samples (bit for bit where the network computes each row as it does in a full batch).
    """
    learned = isinstance(eta, str) and eta == LEARNED
    eta = 1.0 if learned else check_eta(eta)
    schedule, tau, walk, steps = _reverse_walk(x_T, schedule, timesteps, progress, "sampling ({S} steps)")
    if learned and len(tau) != schedule.T:
        raise ValueError(f"eta='learned' samples over all T steps (timesteps(T, T)); got {len(tau)} of {schedule.T}")
    if rows is not None and not isinstance(rows, slice):
        raise TypeError(f"rows must be a slice of the batch, got {type(rows).__name__}")
    x = x_T if rows is None else x_T[rows]
    xs, x0s = [x], []
    B = x.shape[0]
    # every step's scalars at once (as (S,) tensors; element k is what ddim_step computes for step k)
    table = _step_coefficients(schedule, walk[:-1], walk[1:], eta, x_T.new_empty(len(tau)))
    coefficients = {t: tuple(c[k] for c in table[:5]) + (bool(table[4][k] > 0),)
                    for k, t in enumerate(walk[:-1].tolist())}
    with torch.no_grad():
        for t, t_prev in steps:
            t_batch = torch.full((B,), t, dtype=torch.long, device=x.device)
            step = coefficients[t]
            if learned:
                eps, log_var = split_variance(model(x, t_batch), x)
                if t_prev > 0:
                    step = step[:4] + ((0.5 * log_var).exp(), True)
            else:
                eps = _model_eps(model, x, t_batch)
            noise = None
            if rows is not None and step[-1]:                              # the whole batch's noise, our rows
                noise = torch.randn(x_T.shape, dtype=x.dtype, device=x.device, generator=generator)[rows]
            x, x0_hat = _ddim_update(x, eps, step, clip_x0, noise, generator)
            if trajectory:
                xs.append(x)
                x0s.append(x0_hat)
    if trajectory:
        return Trajectory(x, torch.stack(xs), torch.stack(x0s), walk)
    return x


def heun_step(model, x_t: torch.Tensor, t, t_prev, schedule: Schedule, *, eps: torch.Tensor | None = None,
              clip_x0: float | None = None):
    """One second-order step of DDIM's probability-flow ODE (eq. 14) from t to t_prev: Heun's method
    (Karras et al., 2022, Algorithm 1), both of whose stages are DDIM's eta = 0 step (eq. 12, the Euler step).

    Predictor: x' = ddim_step(x_t, eps_t) with eps_t = model(x_t, t) (or ``eps`` when given). Corrector:
    the same step from x_t with the mean slope (eps_t + model(x', t_prev)) / 2, the trapezoidal rule on
    d x-bar = eps d sigma. Where t_prev = 0 (a network is not defined there) the step is the Euler step.
    ``t`` and ``t_prev`` are ints or (B,) tensors. Returns ``(x_prev, x0_hat)`` like :func:`ddim_step`.
    """
    schedule = as_schedule(schedule)
    check_tensor(x_t, "x_t")
    if x_t.dim() < 1:
        raise ValueError("x_t must have a batch dimension, got a scalar")
    B = x_t.shape[0]
    tt, tp = (v.expand(B) if v.dim() == 0 else v for v in _time_pair(schedule, t, t_prev))
    if eps is None:
        eps = _model_eps(model, x_t, tt)
    x_euler, x0_hat = ddim_step(x_t, eps, tt, tp, schedule, 0.0, clip_x0=clip_x0)
    second = tp > 0
    if not bool(second.any()):
        return x_euler, x0_hat
    eps_mean = 0.5 * (eps + _model_eps(model, x_euler, tp.clamp(min=1)))
    if not bool(second.all()):
        eps_mean = torch.where(second.reshape(-1, *([1] * (x_t.dim() - 1))), eps_mean, eps)
    return ddim_step(x_t, eps_mean, tt, tp, schedule, 0.0, clip_x0=clip_x0)


def heun(model, x_T: torch.Tensor, schedule: Schedule, timesteps, *, progress: bool = False,
         trajectory: bool = False, clip_x0: float | None = None):
    """A second-order deterministic sampler on DDIM's probability-flow ODE (eq. 14): :func:`heun_step`
    (Heun's method, Karras et al., 2022) on the walk tau_S -> ... -> tau_1 -> 0 of ``timesteps``.

    Every stage is DDIM's eta = 0 step; the last step, to t = 0, stays the Euler step. S timesteps cost
    2S - 1 model evaluations (DDIM's cost S). Returns x_0, or a :class:`Trajectory`.
    """
    schedule, tau, walk, steps = _reverse_walk(x_T, schedule, timesteps, progress,
                                               "Heun sampling ({S} steps, {evaluations} evaluations)")
    x, xs, x0s = x_T, [x_T], []
    with torch.no_grad():
        for t, t_prev in steps:
            x, x0_hat = heun_step(model, x, t, t_prev, schedule, clip_x0=clip_x0)
            if trajectory:
                xs.append(x)
                x0s.append(x0_hat)
    if trajectory:
        return Trajectory(x, torch.stack(xs), torch.stack(x0s), walk)
    return x


def _reverse_walk(x_T: torch.Tensor, schedule: Schedule, timesteps, progress: bool, desc: str):
    """What every sampler checks and walks: ``x_T`` a batch, ``timesteps`` valid; returns ``(schedule, tau, walk,
    steps)`` with ``walk`` = tau_S, ..., tau_1, 0 and ``steps`` its pairs (t, t_prev), under a progress bar
    labelled ``desc`` (formatted with ``S`` and ``evaluations`` = 2S - 1) when ``progress``."""
    schedule = as_schedule(schedule)
    check_tensor(x_T, "x_T")
    if x_T.dim() < 1:
        raise ValueError("x_T must have a batch dimension, got a scalar")
    tau = check_timesteps(timesteps, schedule.T)
    walk = torch.cat([tau.new_zeros(1), tau]).flip(0)
    steps = list(zip(walk[:-1].tolist(), walk[1:].tolist()))
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc=desc.format(S=len(tau), evaluations=2 * len(tau) - 1), leave=False)
    return schedule, tau, walk, steps


def _model_eps(model, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """model(x, t) with t of shape (B,), checked to return a tensor shaped like x."""
    eps = model(x, t.to(x.device))
    if not isinstance(eps, torch.Tensor) or eps.shape != x.shape:
        raise ValueError(f"model(x_t, t) must return a tensor shaped like x_t {tuple(x.shape)}, "
                         f"got {getattr(eps, 'shape', type(eps).__name__)}")
    return eps


def ddpm(model, x_T: torch.Tensor, schedule: Schedule, **kwargs):
    """DDPM ancestral sampling (Ho et al., Algorithm 2): the DDIM step with eta = 1 over all T steps."""
    return sample(model, x_T, schedule, timesteps(schedule.T, schedule.T), eta=1.0, **kwargs)


def ddim(model, x_T: torch.Tensor, schedule: Schedule, S: int, eta=0.0, kind: str = "uniform", **kwargs):
    """DDIM sampling on S steps of the subsequence ``timesteps(T, S, kind)``."""
    return sample(model, x_T, schedule, timesteps(schedule.T, S, kind), eta=eta, **kwargs)


def replace_known(x: torch.Tensor, x0: torch.Tensor, mask, t, schedule: Schedule,
                  noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """The replacement step of inpainting with an unconditional model (Song et al. 2021, the score-based SDE
    paper, arXiv:2011.13456, app. I.2; Lugmayr et al., 2022, eq. 8): where ``mask`` is 1 (known pixels) put a
    fresh draw of q(x_t | x_0) (DDPM eq. 4; x_0 itself at t = 0), elsewhere keep ``x``, the reverse process's x_t.

    ``mask`` is a bool or 0/1 tensor broadcasting against ``x0``; ``t`` an int or a (B,) tensor in 0..T."""
    schedule = as_schedule(schedule)
    check_tensor(x, "x")
    check_tensor(x0, "x0")
    check_same_shape(x, x0, "x", "x0")
    known = check_mask(mask, x0)
    return torch.where(known, q_sample(x0, t, schedule, noise, generator), x)


def check_mask(mask, x0: torch.Tensor) -> torch.Tensor:
    """A bool tensor from a bool or 0/1 ``mask`` that broadcasts against x0 (1 = known)."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor of 0/1 or bool values, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        if mask.is_complex() or not ((mask == 0) | (mask == 1)).all():
            raise ValueError("mask must hold only 0 and 1 (or bool): 1 marks a known pixel, 0 one to fill in")
        mask = mask != 0
    try:
        fits = torch.broadcast_shapes(mask.shape, x0.shape) == x0.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"mask has shape {tuple(mask.shape)}, which does not broadcast against x0 {tuple(x0.shape)}")
    return mask.to(x0.device)


def repaint_walk(S: int, resample: int = 1, jump: int = 1) -> list[int]:
    """Positions i (time tau_i, with tau_0 = 0) that RePaint's schedule visits (Lugmayr et al., 2022, sec. 4.2):
    down from i = S one step at a time; on reaching a position i in 1, 1 + jump, 1 + 2 jump, ... (at most
    S - jump), go back up ``jump`` steps and walk down again, ``resample - 1`` times (their
    ``get_schedule_jump``, whose 0-based time k is our position k + 1). ``resample = 1`` is the plain walk
    S, S - 1, ..., 0."""
    S = check_positive_int(S, "S")
    resample = check_positive_int(resample, "resample")
    jump = check_positive_int(jump, "jump", high=S)
    left = {i: resample - 1 for i in range(1, S - jump + 1, jump)}
    i, path = S, [S]
    while i > 0:
        i -= 1
        path.append(i)
        if left.get(i, 0) > 0:
            left[i] -= 1
            for _ in range(jump):
                i += 1
                path.append(i)
    return path


def inpaint(model, x0: torch.Tensor, mask, schedule: Schedule, timesteps, eta=1.0, *, resample: int = 1,
            jump: int = 1, x_T: torch.Tensor | None = None, generator: torch.Generator | None = None,
            progress: bool = False, clip_x0: float | None = None) -> torch.Tensor:
    """Fill in the pixels where ``mask`` is 0 with an unconditional eps-model: the generative process of
    :func:`sample` (the DDIM step, eq. 12, with ``eta``) where after every step the known pixels are
    replaced by a draw of q(x_{t_prev} | x_0) (:func:`replace_known`), and once before the first step (at the walk's
    first time).

    With ``resample = r > 1`` this is RePaint (Lugmayr et al., 2022): the walk of :func:`repaint_walk` goes
    back up ``jump`` steps of ``timesteps`` with the forward process, q(x_t | x_s) = N(sqrt(bar-alpha_t /
    bar-alpha_s) x_s, (1 - bar-alpha_t / bar-alpha_s) I), and down again, r - 1 times, so that the unknown
    pixels can adapt to the known ones. ``x_T`` (shape of x0) is drawn from ``generator`` when omitted; the
    known pixels' draws are skipped where no pixel is known, so an all-zero mask with ``resample = 1``
    gives :func:`sample`'s result on the same generator and eta, bit for bit (the default eta differs: 1 here, 0 in
    :func:`sample`). Returns x_0 (known pixels equal to x0)."""
    schedule = as_schedule(schedule)
    check_tensor(x0, "x0")
    if x0.dim() < 1:
        raise ValueError("x0 must have a batch dimension, got a scalar")
    known = check_mask(mask, x0)
    tau = check_timesteps(timesteps, schedule.T)
    eta = check_eta(eta)
    levels = [0] + tau.tolist()                         # tau_0 = 0, tau_1, ..., tau_S
    path = repaint_walk(len(tau), resample, jump)
    if x_T is None:
        x = torch.randn(x0.shape, dtype=x0.dtype, device=x0.device, generator=generator)
    else:
        check_tensor(x_T, "x_T")
        check_same_shape(x_T, x0, "x_T", "x0")
        x = x_T
    any_known = bool(known.any())
    moves = list(zip(path[:-1], path[1:]))
    if progress:
        from tqdm import tqdm

        moves = tqdm(moves, desc=f"inpainting ({len(tau)} steps, {len(moves)} moves)", leave=False)
    ab = schedule.alpha_bars
    with torch.no_grad():
        if any_known:
            x = replace_known(x, x0, known, levels[path[0]], schedule, generator=generator)
        for i, j in moves:
            t, t_to = levels[i], levels[j]
            if j < i:   # down: the DDIM step, then the known pixels from q(x_{t_prev} | x_0)
                eps = _model_eps(model, x, torch.full((x.shape[0],), t, dtype=torch.long))
                x, _ = _ddim_update(x, eps, _step_coefficients(schedule, t, t_to, eta, x), clip_x0, None, generator)
                if any_known:
                    x = replace_known(x, x0, known, t_to, schedule, generator=generator)
            else:       # up: the forward process from t to t_to (RePaint's jump back)
                ratio = float(ab[t_to] / ab[t])
                x = math.sqrt(ratio) * x + math.sqrt(1 - ratio) * torch.randn(
                    x.shape, dtype=x.dtype, device=x.device, generator=generator)
    return x


def encode(model, x0: torch.Tensor, schedule: Schedule, timesteps, *, progress: bool = False,
           trajectory: bool = False):
    """Deterministic inversion x_0 -> x_{tau_S} (DDIM sec. 5.4): the eta = 0 step of eq. 12 run forwards,
    i.e. Euler steps of the ODE (eq. 14) in increasing t.

    Going from t_prev to t, the noise estimate is ``model(x_{t_prev}, t_prev)`` (explicit Euler); on the
    first step, from t_prev = 0, it is ``model(x_0, tau_1)``.  Decoding the result with
    ``sample(..., eta=0)`` on the same ``timesteps`` reconstructs x_0 up to the discretization error,
    which shrinks as S grows.  Returns x_{tau_S} (or the list of visited x as a tensor with
    ``trajectory=True``).
    """
    schedule = as_schedule(schedule)
    check_tensor(x0, "x0")
    tau = check_timesteps(timesteps, schedule.T)
    walk = torch.cat([tau.new_zeros(1), tau])
    steps = list(zip(walk[:-1].tolist(), walk[1:].tolist()))
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc=f"encoding ({len(tau)} steps)", leave=False)
    ab = schedule.alpha_bars
    x, xs = x0, [x0]
    B = x0.shape[0]
    with torch.no_grad():
        for t_prev, t in steps:
            t_eval = t_prev if t_prev > 0 else int(tau[0])
            eps = model(x, torch.full((B,), t_eval, dtype=torch.long, device=x.device))
            a_t, a_p = float(ab[t]), float(ab[t_prev])
            x0_hat = (x - math.sqrt(1 - a_p) * eps) / math.sqrt(a_p)
            x = math.sqrt(a_t) * x0_hat + math.sqrt(1 - a_t) * eps
            if trajectory:
                xs.append(x)
    return torch.stack(xs) if trajectory else x


def slerp(z0: torch.Tensor, z1: torch.Tensor, w) -> torch.Tensor:
    """Spherical linear interpolation between latents (DDIM App. D.5, eq. 67, after Shoemake 1985), per sample:
    sin((1 - w) theta)/sin(theta) z0 + sin(w theta)/sin(theta) z1, theta the angle between z0 and z1
    (flattened over all but the batch dimension). ``w`` is a number in [0, 1] or a tensor of such
    numbers of shape ``(K,)``, which gives K interpolants stacked along a new leading dimension.
    """
    check_tensor(z0, "z0")
    check_tensor(z1, "z1")
    check_same_shape(z1, z0, "z1", "z0")
    w_t = torch.as_tensor(w, dtype=z0.dtype, device=z0.device)
    if not torch.isfinite(w_t).all() or (w_t < 0).any() or (w_t > 1).any():
        raise ValueError("w must lie in [0, 1]")
    if w_t.dim() == 1:
        return torch.stack([slerp(z0, z1, wi) for wi in w_t])
    if z0.dim() < 2:
        a, b = z0.reshape(1, -1), z1.reshape(1, -1)
    else:
        a, b = z0.reshape(z0.shape[0], -1), z1.reshape(z1.shape[0], -1)
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
    theta = torch.arccos(cos.clamp(-1, 1)).unsqueeze(1)
    small = theta < 1e-6
    sin = torch.where(small, torch.ones_like(theta), theta.sin())
    c0 = torch.where(small, 1 - w_t, ((1 - w_t) * theta).sin() / sin)
    c1 = torch.where(small, w_t.expand_as(theta), (w_t * theta).sin() / sin)
    return (c0 * a + c1 * b).reshape(z0.shape)


def _against(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A float64 scalar or (B,) tensor cast and shaped to broadcast against x."""
    v = v.to(dtype=x.dtype, device=x.device)
    return v.reshape(-1, *([1] * (x.dim() - 1))) if v.dim() == 1 else v
