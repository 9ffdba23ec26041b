"""What the network predicts, and the converters between the choices (DDPM sec. 3.2).

For x_t = sqrt(bar-alpha_t) x_0 + sqrt(1 - bar-alpha_t) eps (DDPM eq. 4), one network output at (x_t, t) can be read
as any of five quantities; given x_t, t and the schedule each determines the others:

- ``"eps"``: the noise (DDPM eq. 11's eps_theta, the course's default);
- ``"x0"``: the data, x_0 = (x_t - sqrt(1 - bar-alpha_t) eps) / sqrt(bar-alpha_t) (DDIM eq. 9;
  :func:`minddim.predict_x0`, inverted by :func:`minddim.predict_eps`); DDPM sec. 3.2 mentions it ("we found this to
  lead to worse sample quality early in our experiments");
- ``"v"``: v = sqrt(bar-alpha_t) eps - sqrt(1 - bar-alpha_t) x_0, the "v-prediction" of Salimans & Ho (2022,
  "Progressive distillation for fast sampling of diffusion models"), as their official code computes it
  (google-research, diffusion_distillation/dpm.py, ``predict_v_from_x_and_eps``: ``alpha_t * eps - sigma_t * x``,
  their alpha_t, sigma_t being sqrt(bar-alpha_t), sqrt(1 - bar-alpha_t)). With a = sqrt(bar-alpha_t),
  s = sqrt(1 - bar-alpha_t), a^2 + s^2 = 1: eps = s x_t + a v and x_0 = a x_t - s v;
- ``"score"``: -eps / sqrt(1 - bar-alpha_t) (:func:`minddim.score_from_eps`), grad log q_t(x_t) when eps is
  E[eps | x_t];
- ``"mu"``: the reverse mean, mu = (x_t - beta_t / sqrt(1 - bar-alpha_t) eps) / sqrt(alpha_t) (DDPM eq. 11;
  :func:`minddim.p_mean`), inverted as eps = (x_t - sqrt(alpha_t) mu) sqrt(1 - bar-alpha_t) / beta_t.

Each converter is exact for the conditional means too: the exact model's E[eps | x_t] maps to E[x_0 | x_t]
(Tweedie's formula), E[v | x_t] and the score, since every map is affine in the prediction for fixed x_t.

Errors change their weight with the reading: x0_hat - x_0 = -(s/a)(eps_hat - eps) and v_hat - v = (eps_hat - eps)/a,
so an unweighted squared error on x_0 is 1/SNR_t times the one on eps, and on v it is 1 + 1/SNR_t times
(SNR_t = bar-alpha_t / (1 - bar-alpha_t)); :func:`error_weight` returns these factors.
"""

from __future__ import annotations

import torch

from ._validate import as_time, check_same_shape, check_tensor
from .diffusion import p_mean, predict_eps, predict_x0
from .schedules import Schedule, as_schedule
from .score import eps_from_score, score_from_eps

PREDICTIONS = ("eps", "x0", "v", "score", "mu")


def _check_prediction(prediction) -> str:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    return prediction


def _roots(schedule: Schedule, t, x: torch.Tensor):
    ab = schedule.at(schedule.alpha_bars, t, x)
    return ab.sqrt(), (1 - ab).sqrt()


def v_target(x0: torch.Tensor, eps: torch.Tensor, t, schedule: Schedule) -> torch.Tensor:
    """v = sqrt(bar-alpha_t) eps - sqrt(1 - bar-alpha_t) x_0 (Salimans & Ho 2022's v, in DDPM's symbols)."""
    schedule = as_schedule(schedule)
    check_tensor(x0, "x0")
    check_tensor(eps, "eps")
    check_same_shape(eps, x0, "eps", "x0")
    a, s = _roots(schedule, t, x0)
    return a * eps - s * x0


def to_eps(output: torch.Tensor, x_t: torch.Tensor, t, schedule: Schedule, prediction: str) -> torch.Tensor:
    """The noise estimate that a network ``output`` of kind ``prediction`` (one of :data:`PREDICTIONS`) implies
    at (x_t, t): eps itself; from x_0, DDPM eq. 4 (:func:`minddim.predict_eps`); from v, s x_t + a v; from the score,
    -sqrt(1 - bar-alpha_t) score; from mu, DDPM eq. 11 inverted."""
    schedule = as_schedule(schedule)
    _check_prediction(prediction)
    check_tensor(output, "output", finite=False)
    check_tensor(x_t, "x_t", finite=False)
    check_same_shape(output, x_t, "output", "x_t")
    if prediction == "eps":
        return output
    if prediction == "x0":
        return predict_eps(x_t, output, t, schedule)
    if prediction == "score":
        return eps_from_score(output, t, schedule)
    if prediction == "v":
        a, s = _roots(schedule, t, x_t)
        return s * x_t + a * output
    a = schedule.at(schedule.alphas, t, x_t)
    ab = schedule.at(schedule.alpha_bars, t, x_t)
    beta = schedule.at(schedule.betas, t, x_t)
    return (x_t - a.sqrt() * output) * (1 - ab).sqrt() / beta


def from_eps(eps: torch.Tensor, x_t: torch.Tensor, t, schedule: Schedule, prediction: str) -> torch.Tensor:
    """What a network of kind ``prediction`` outputs when its noise estimate at (x_t, t) is ``eps``: the inverse of
    :func:`to_eps` (x_0 by DDIM eq. 9, v = (eps - s x_t) / a, the score, mu by DDPM eq. 11)."""
    schedule = as_schedule(schedule)
    _check_prediction(prediction)
    check_tensor(eps, "eps", finite=False)
    check_tensor(x_t, "x_t", finite=False)
    check_same_shape(eps, x_t, "eps", "x_t")
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return predict_x0(x_t, eps, t, schedule)
    if prediction == "score":
        return score_from_eps(eps, t, schedule)
    if prediction == "v":
        a, s = _roots(schedule, t, x_t)
        return (eps - s * x_t) / a
    return p_mean(x_t, eps, t, schedule)


def error_weight(t, schedule: Schedule, prediction: str) -> torch.Tensor:
    """||output error||^2 / ||eps error||^2 for a network of kind ``prediction`` (float64, shaped like ``t``):
    1 for eps, 1/SNR_t for x0, 1 + 1/SNR_t = 1/bar-alpha_t for v, 1/(1 - bar-alpha_t) for the score, and
    beta_t^2 / (alpha_t (1 - bar-alpha_t)) for mu (DDPM eq. 12's weight without its 1/(2 sigma_t^2))."""
    schedule = as_schedule(schedule)
    _check_prediction(prediction)
    t = as_time(t, schedule.T, "t")
    ab, beta = schedule.alpha_bars[t], schedule.betas[t]
    weights = {"eps": lambda: torch.ones_like(ab), "x0": lambda: (1 - ab) / ab, "v": lambda: 1 / ab,
               "score": lambda: 1 / (1 - ab), "mu": lambda: beta**2 / ((1 - beta) * (1 - ab))}
    return weights[prediction]()


def split_variance(output: torch.Tensor, x: torch.Tensor):
    """A network with a learned variance (DDPM Table 2's "L, learned diagonal Sigma") outputs twice x's channels:
    ``(prediction, log sigma^2)``, split along the channel axis (dimension 1 here; ``axis=-1`` in the official NHWC
    code) as DDPM's official code splits its 'learned' model output
    (hojonathanho/diffusion, diffusion_utils_2.py, ``p_mean_variance``: the second half is the log-variance)."""
    if not isinstance(output, torch.Tensor) or output.dim() != x.dim() or output.shape[0] != x.shape[0] \
            or output.shape[1] != 2 * x.shape[1] or output.shape[2:] != x.shape[2:]:
        raise ValueError(f"a model with a learned variance must return twice x's channels, shape "
                         f"{(x.shape[0], 2 * x.shape[1], *x.shape[2:])}, got {getattr(output, 'shape', type(output).__name__)}")
    return output.chunk(2, dim=1)


def as_eps_model(model, schedule: Schedule, prediction: str, learned_variance: bool = False):
    """Wrap a network predicting ``prediction`` as an eps-model ``model(x_t, t) -> eps`` for the samplers; with
    ``learned_variance`` the wrapper returns ``cat(eps, log sigma^2)``, what ``md.sample(..., eta="learned")``
    reads."""
    schedule = as_schedule(schedule)
    _check_prediction(prediction)
    if prediction == "eps" and not learned_variance:
        return model

    def eps_model(x_t, t):
        out = model(x_t, t)
        if not learned_variance:
            return to_eps(out, x_t, t, schedule, prediction)
        out, log_var = split_variance(out, x_t)
        return torch.cat([to_eps(out, x_t, t, schedule, prediction), log_var], 1)

    return eps_model
