"""The answer key of exercise 09: conditional generation and guidance (solutions/09_guidance.py).

For each question: the inputs it is checked on (random and edge cases), the package's reference
(:mod:`minddim.guidance`, :class:`minddim.analytic.GaussianMixtureDenoiser`) and the mistakes learners really make,
each with its hint (see :mod:`minddim.grading.spec`).

The last question's reference, :func:`cfg_tilted_gaussian`, is the closed form of the target classifier-free
guidance tilts toward when both the class and the data are Gaussian; tests/test_exercise_09.py checks it against
the package's exact scores.
"""

from __future__ import annotations

import math

import torch

from ...analytic import GaussianMixtureDenoiser
from ...data import toy_mixture
from ...guidance import classifier_free
from ..spec import Case, register
from ._cases import LONG, SHORT, _per, _randn


# -- (a) the classifier-free combination --------------------------------------------------------------------
class _TwoEps:
    """A stand-in class-conditional eps-model with one class (num_classes = 1, null label 1) whose outputs are
    given: eps_cond for the class, eps_uncond for the null label, row by row.  It lets the reference be the
    package's :func:`minddim.guidance.classifier_free` itself, which batches [x_t; x_t] with labels [y; null]."""

    num_classes = 1

    def __init__(self, eps_cond, eps_uncond):
        self.eps_cond, self.eps_uncond = eps_cond, eps_uncond

    def __call__(self, x_t, t, y):
        B = self.eps_cond.shape[0]
        rows = torch.arange(x_t.shape[0]) % B
        null = (y == self.num_classes).reshape(-1, *([1] * (x_t.dim() - 1)))
        return torch.where(null, self.eps_uncond[rows], self.eps_cond[rows])


def _cfg_reference(eps_cond, eps_uncond, w):
    guided = classifier_free(_TwoEps(eps_cond, eps_uncond), 0, w)
    return guided(torch.zeros_like(eps_cond), torch.ones(eps_cond.shape[0], dtype=torch.long))


def _cfg_cases():
    g = torch.Generator().manual_seed(2030)

    def case(label, shape, dtype, w):
        return Case(label, {"eps_cond": _randn(shape, dtype, g), "eps_uncond": _randn(shape, dtype, g), "w": w})
    return [case("w = 2, batch 5 of 2-D points", (5, 2), torch.float32, 2.0),
            case("w = 0 (the plain conditional model)", (3, 2), torch.float32, 0.0),
            case("w = -1 (the unconditional model)", (3, 2), torch.float32, -1.0),
            case("w = 6.5 (diffusers' guidance_scale = 7.5), float64", (4, 3), torch.float64, 6.5),
            case("w = 0.5, batch size 1", (1, 2), torch.float32, 0.5),
            case("w = 3, image-shaped eps (batch 2, 1x4x4)", (2, 1, 4, 4), torch.float32, 3.0)]


register(
    "cfg_eps",
    forbidden=("guidance.classifier_free",),
    hints=("classifier-free guidance extrapolates from the unconditional prediction through the conditional one, "
           "by w beyond it: w = 0 is the conditional model, w = -1 the unconditional one",
           "notebook 09 (classifier-free guidance); Ho & Salimans 2022, sec. 3.2, eq. 6"),
    cases=_cfg_cases,
    reference=_cfg_reference,
    mistakes={
        "that is diffusers' convention, eps_u + s (eps_c - eps_u) with s = w: its guidance_scale s is 1 + w of "
        "Ho & Salimans (w = 0 must give the conditional model, not the unconditional one)":
            lambda eps_cond, eps_uncond, w: eps_uncond + w * (eps_cond - eps_uncond),
        "the sign: guidance moves away from the unconditional prediction, (1 + w) eps_cond - w eps_uncond; you "
        "moved toward it, (1 - w) eps_cond + w eps_uncond":
            lambda eps_cond, eps_uncond, w: (1 - w) * eps_cond + w * eps_uncond,
        "the two predictions are swapped: the weight 1 + w belongs to the conditional eps(x_t, t, y), the weight "
        "-w to the unconditional eps(x_t, t, null)":
            lambda eps_cond, eps_uncond, w: (1 + w) * eps_uncond - w * eps_cond,
    })


# -- (b) the classifier-guided eps ------------------------------------------------------------------------------
def _guided_inputs_cases():
    g = torch.Generator().manual_seed(2031)
    specs = [
        ("random t, scale 3, batch 5", LONG, torch.randint(2, LONG.T + 1, (5,), generator=g), (5, 2), torch.float32,
         3.0),
        ("t = 1, scale 1", LONG, torch.full((3,), 1), (3, 2), torch.float32, 1.0),
        ("t = T, scale 10", LONG, torch.full((3,), LONG.T), (3, 2), torch.float32, 10.0),
        ("batch size 1, scale 0.5", LONG, torch.tensor([500]), (1, 2), torch.float32, 0.5),
        ("float64, scale 2", LONG, torch.randint(1, LONG.T + 1, (4,), generator=g), (4, 3), torch.float64, 2.0),
        ("image-shaped x (batch 2, 1x4x4), scale 4", LONG, torch.tensor([3, 700]), (2, 1, 4, 4), torch.float32, 4.0),
        ("a short schedule (T = 10), t = T, scale 1", SHORT, torch.full((2,), SHORT.T), (2, 2), torch.float32, 1.0),
    ]
    return [Case(label, {"eps": _randn(shape, dtype, g), "grad_log_p": _randn(shape, dtype, g), "t": t,
                         "schedule": s, "scale": scale})
            for label, s, t, shape, dtype, scale in specs]


def _guided_with(values_fn=lambda s: s.alpha_bars, shift=0, coef=lambda ab: (1 - ab).sqrt(), sign=-1.0):
    def f(eps, grad_log_p, t, schedule, scale):
        ab = _per(values_fn(schedule), t - shift, eps)
        return eps + sign * scale * coef(ab) * grad_log_p
    return f


def _guided_reference(eps, grad_log_p, t, schedule, scale):
    """Dhariwal & Nichol 2021, eq. 14 with the gradient scale s: eps - s sqrt(1 - alpha-bar_t) grad log p(y | x_t);
    the package's classifier_guidance computes this with autograd's gradient (tests/test_exercise_09.py)."""
    return eps - scale * (1 - _per(schedule.alpha_bars, t, eps)).sqrt() * grad_log_p


register(
    "classifier_guided_eps",
    forbidden=("guidance.classifier_guidance",),
    hints=("classifier guidance adds the classifier's gradient to the score; in eps units the score is "
           "-eps / sqrt(1 - alpha-bar_t), so the gradient enters eps scaled by that noise level",
           "notebook 09 (classifier guidance); Dhariwal & Nichol 2021, sec. 4.2, eq. 14, scale s of sec. 4.3"),
    cases=_guided_inputs_cases,
    reference=_guided_reference,
    mistakes={
        "the sign: eps points away from the data (score = -eps / sqrt(1 - alpha-bar_t)), so raising log p(y | x_t) "
        "means subtracting the scaled gradient from eps":
            _guided_with(sign=1.0),
        "the gradient must be brought into eps units: multiply it by sqrt(1 - alpha-bar_t) (and the scale s)":
            _guided_with(coef=lambda ab: torch.ones_like(ab)),
        "missing square root: eps = -sqrt(1 - alpha-bar_t) * score, a standard deviation, not the variance "
        "1 - alpha-bar_t":
            _guided_with(coef=lambda ab: 1 - ab),
        "off by one: schedule.alpha_bars[t] is alpha-bar_t in this course's 1-based time (0-based code such as "
        "Dhariwal & Nichol's uses index t - 1 of its own table)":
            _guided_with(shift=1),
        "you used beta_t where alpha-bar_t belongs: the noise level of x_t given x_0 is sqrt(1 - alpha-bar_t) "
        "(schedule.alpha_bars), not that of one step":
            _guided_with(values_fn=lambda s: s.betas),
        "you used alpha_t where alpha-bar_t belongs (sqrt(1 - alpha_t) is one step's noise, sqrt(beta_t)): "
        "use schedule.alpha_bars":
            _guided_with(values_fn=lambda s: s.alphas),
    },
    rtol=1e-5, atol=1e-6)


# -- (c) the exact class posterior of a Gaussian mixture ------------------------------------------------------
def _random_covs(K, D, g, low=0.05, high=0.6):
    """K random symmetric positive definite D x D matrices with eigenvalues in [low, high] (float64)."""
    q, _ = torch.linalg.qr(torch.randn(K, D, D, generator=g, dtype=torch.float64))
    eig = low + (high - low) * torch.rand(K, D, generator=g, dtype=torch.float64)
    return q @ torch.diag_embed(eig) @ q.transpose(1, 2)


def _three_class_mixture(g, D=2, K=3):
    weights = torch.tensor([0.5, 0.3, 0.2, 0.1, 0.05][:K], dtype=torch.float64)
    weights = weights / weights.sum()
    means = 1.5 * torch.randn(K, D, generator=g, dtype=torch.float64)
    return weights, means, _random_covs(K, D, g)


def _posterior_cases():
    g = torch.Generator().manual_seed(2032)

    def case(label, schedule, t, mixture, dtype):
        weights, means, covs = mixture
        # x_t drawn from q(x_t): a component's point, noised to time t (a realistic input; responsibilities vary)
        k = torch.multinomial(weights, t.shape[0], replacement=True, generator=g)
        x0 = means[k] + torch.einsum("bij,bj->bi", torch.linalg.cholesky(covs[k]),
                                     torch.randn(t.shape[0], means.shape[1], generator=g, dtype=torch.float64))
        ab = schedule.alpha_bars[t][:, None]
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * torch.randn(x0.shape, generator=g, dtype=torch.float64)
        return Case(label, {"x_t": x_t.to(dtype), "t": t, "schedule": schedule, "weights": weights.to(dtype),
                            "means": means.to(dtype), "covs": covs.to(dtype)})
    return [case("random t, batch 5 (3 classes in 2-D, weights 0.5/0.3/0.2, full covariances)", LONG,
                 torch.randint(1, LONG.T + 1, (5,), generator=g), _three_class_mixture(g), torch.float32),
            case("the eight Gaussians, t = 1..900, float64", LONG, torch.tensor([1, 50, 200, 400, 600, 900]),
                 toy_mixture("eight_gaussians"), torch.float64),
            case("t = 0 (the data: no noise)", LONG, torch.zeros(4, dtype=torch.long), _three_class_mixture(g),
                 torch.float64),
            case("t = T (nearly pure noise: the posterior is nearly the weights)", LONG, torch.full((3,), LONG.T),
                 _three_class_mixture(g), torch.float32),
            case("batch size 1", LONG, torch.tensor([300]), _three_class_mixture(g), torch.float32),
            case("4 classes in 3-D, float64", LONG, torch.tensor([10, 250, 999]), _three_class_mixture(g, D=3, K=4),
                 torch.float64),
            case("a short schedule (T = 10)", SHORT, torch.tensor([1, 5, 10]), _three_class_mixture(g), torch.float32),
            case("the eight Gaussians at t = 1, float32 (far classes: log-probabilities near -200)", LONG,
                 torch.ones(4, dtype=torch.long), toy_mixture("eight_gaussians"), torch.float32)]


def _log_components(x_t, t, schedule, weights, means, covs, cov_fn=None, mean_scaled=True, use_weights=True):
    """log pi_k + log N(x_t; sqrt(ab) m_k, ab C_k + (1 - ab) I), shape (B, K), computed in float64; ``cov_fn(ab, C,
    I)`` and the flags make the listed mistakes."""
    x, m, c = x_t.double(), means.double(), covs.double()
    ab = schedule.alpha_bars[t].double().reshape(-1, 1, 1, 1)                      # (B, 1, 1, 1)
    eye = torch.eye(m.shape[1], dtype=torch.float64)
    cov = (cov_fn or (lambda a, C, I: a * C + (1 - a) * I))(ab, c, eye)            # (B, K, D, D)
    loc = (ab[..., 0].sqrt() if mean_scaled else 1.0) * m                         # (B, K, D)
    log_n = torch.distributions.MultivariateNormal(loc, covariance_matrix=cov.expand(x.shape[0], *c.shape)
                                                   ).log_prob(x[:, None, :])
    return log_n + (weights.double().log() if use_weights else 0.0)


def _posterior_with(normalise="log_softmax", dim=1, **kw):
    def f(x_t, t, schedule, weights, means, covs):
        log_comp = _log_components(x_t, t, schedule, weights, means, covs, **kw)
        if normalise == "none":
            out = log_comp
        elif normalise == "softmax":
            out = torch.softmax(log_comp, dim)
        elif normalise == "exp":               # exponentiate in the input's dtype, normalise, take the log
            p = log_comp.to(x_t.dtype).exp()
            out = (p / p.sum(dim, keepdim=True)).log()
        else:
            out = torch.log_softmax(log_comp, dim)
        return out.to(x_t.dtype)
    return f


def _posterior_reference(x_t, t, schedule, weights, means, covs):
    return GaussianMixtureDenoiser(weights, means, covs, schedule).log_class_posterior(x_t, t).to(x_t.dtype)


register(
    "log_class_posterior",
    forbidden=("analytic.GaussianMixtureDenoiser.log_class_posterior",),
    hints=("the exact noise-aware classifier: how responsible each class's noised Gaussian is for x_t, by "
           "Bayes' rule over the classes",
           "notebook 09, section 1 (Bayes' rule for p(y | x_t)); notebook 06, section 2 (each component noised by "
           "q(x_t | x_0) of DDPM eq. 4, and the responsibilities r_k(x_t))"),
    cases=_posterior_cases,
    reference=_posterior_reference,
    mistakes={
        "the covariance is not noised: under q(x_t | x_0) class k's covariance is alpha-bar_t C_k + (1 - alpha-bar_t) I, not the "
        "data's C_k":
            _posterior_with(cov_fn=lambda a, C, I: C.expand(a.shape[0], *C.shape)),
        "the data's covariance shrinks with the signal too: alpha-bar_t C_k + (1 - alpha-bar_t) I, not "
        "C_k + (1 - alpha-bar_t) I":
            _posterior_with(cov_fn=lambda a, C, I: C + (1 - a) * I),
        "the weights pi_k are missing: p(y = k | x_t) is proportional to pi_k N(x_t; ...), the prior times the "
        "likelihood":
            _posterior_with(use_weights=False),
        "the means must be scaled too: under q(x_t | x_0) class k is centred at sqrt(alpha-bar_t) m_k, not m_k":
            _posterior_with(mean_scaled=False),
        "normalised over the wrong dimension: for each x_t (row) the K classes' probabilities sum to 1, so take the "
        "log-sum-exp over the last axis (the classes), not over the batch":
            _posterior_with(dim=0),
        "not normalised: that is log pi_k N(x_t; ...), the joint log p(x_t, y = k); subtract its log-sum-exp over the "
        "classes (log p(x_t)) to get log p(y = k | x_t)":
            _posterior_with(normalise="none"),
        "you returned the probabilities p(y | x_t); the question asks for their logarithms (log-softmax, not "
        "softmax)":
            _posterior_with(normalise="softmax"),
        "normalised after exponentiating: far from a class its probability underflows to 0 in float32 and its "
        "logarithm to -inf; stay in log space (subtract the log-sum-exp over the classes)":
            _posterior_with(normalise="exp"),
    },
    # float32 log-densities of size ~100 carry ~1e-5 of rounding; log-probabilities near 0 get the atol; every
    # listed mistake is off by far more
    rtol=1e-4, atol=1e-4)


# -- (d) the target of classifier-free guidance for Gaussians ------------------------------------------------
def cfg_tilted_gaussian(mean_c, cov_c, mean_u, cov_u, w):
    """(mean, cov) of the tilted density p(x | y)^{1 + w} p(x)^{-w} / Z for p(x | y) = N(mean_c, cov_c) and
    p(x) = N(mean_u, cov_u): the density whose score is (1 + w) grad log p(x | y) - w grad log p(x), what
    classifier-free guidance at weight w asks for at t -> 0 (Ho & Salimans 2022, sec. 3.2).  Exponents add in the
    precisions: P = (1 + w) cov_c^{-1} - w cov_u^{-1}, and mean = P^{-1} ((1 + w) cov_c^{-1} mean_c - w cov_u^{-1}
    mean_u).  ``mean_c``, ``mean_u``: (D,); ``cov_c``, ``cov_u``: (D, D) symmetric positive definite; ``w`` a finite
    real number for which P is positive definite (else ValueError: the tilt is no density).  Computed in float64,
    returned in the dtype of ``mean_c``."""
    for name, v in (("mean_c", mean_c), ("cov_c", cov_c), ("mean_u", mean_u), ("cov_u", cov_u)):
        if not isinstance(v, torch.Tensor) or not v.dtype.is_floating_point or not torch.isfinite(v).all():
            raise TypeError(f"{name} must be a finite floating-point tensor, got {type(v).__name__}"
                            f"{'' if not isinstance(v, torch.Tensor) else ' of dtype ' + str(v.dtype)}")
    if mean_c.dim() != 1:
        raise ValueError(f"mean_c must have shape (D,), got {tuple(mean_c.shape)}")
    D = mean_c.shape[0]
    for name, v, shape in (("mean_u", mean_u, (D,)), ("cov_c", cov_c, (D, D)), ("cov_u", cov_u, (D, D))):
        if tuple(v.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} (D = {D} from mean_c), got {tuple(v.shape)}")
    for name, v in (("cov_c", cov_c), ("cov_u", cov_u)):
        v = v.double()
        if not torch.allclose(v, v.T, atol=1e-10) or bool((torch.linalg.eigvalsh(v) <= 0).any()):
            raise ValueError(f"{name} must be symmetric positive definite")
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
        raise TypeError(f"w must be a finite real number, got {w!r}")
    p_c, p_u = torch.linalg.inv(cov_c.double()), torch.linalg.inv(cov_u.double())
    precision = (1 + w) * p_c - w * p_u
    precision = (precision + precision.T) / 2
    if bool((torch.linalg.eigvalsh(precision) <= 0).any()):
        raise ValueError(f"w = {w:g} is too large for these Gaussians: (1 + w) cov_c^-1 - w cov_u^-1 is not positive "
                         f"definite, so p(x | y)^(1 + w) p(x)^(-w) cannot be normalised")
    cov = torch.linalg.inv(precision)
    mean = cov @ ((1 + w) * p_c @ mean_c.double() - w * p_u @ mean_u.double())
    return mean.to(mean_c.dtype), ((cov + cov.T) / 2).to(mean_c.dtype)


def _tilt_cases():
    g = torch.Generator().manual_seed(2033)

    def case(label, mean_c, cov_c, mean_u, cov_u, w, dtype=torch.float64):
        return Case(label, {"mean_c": mean_c.to(dtype), "cov_c": cov_c.to(dtype), "mean_u": mean_u.to(dtype),
                            "cov_u": cov_u.to(dtype), "w": w})
    eye2 = torch.eye(2, dtype=torch.float64)
    # the class inside the data: its covariance smaller than the data's (cov_u = cov_c + a spread of the means),
    # so the tilt is a density for every w >= 0, as for a class of the toy mixture against the whole mixture
    cov_c = _random_covs(1, 2, g, 0.1, 0.5)[0]
    spread = _random_covs(1, 2, g, 0.3, 1.0)[0]
    cov_c3 = _random_covs(1, 3, g, 0.1, 0.5)[0]
    spread3 = _random_covs(1, 3, g, 0.3, 1.0)[0]
    return [case("w = 2, 2-D, full covariances", torch.tensor([1.0, -0.5]), cov_c, torch.tensor([0.2, 0.3]),
                 cov_c + spread, 2.0),
            case("w = 0 (the class itself)", torch.tensor([1.0, 0.5]), cov_c, torch.zeros(2), cov_c + spread, 0.0),
            case("w = -1 (the unconditional Gaussian)", torch.tensor([1.0, 0.5]), cov_c, torch.zeros(2),
                 cov_c + spread, -1.0),
            case("isotropic: class N((2, 0), 0.5^2 I) against N(0, I), w = 3", torch.tensor([2.0, 0.0]), 0.25 * eye2,
                 torch.zeros(2), eye2, 3.0),
            case("equal covariances, w = 1.5", torch.tensor([-1.0, 2.0]), cov_c, torch.tensor([0.5, 0.5]), cov_c, 1.5),
            case("3-D, w = 0.5, float32", torch.randn(3, generator=g, dtype=torch.float64), cov_c3,
                 torch.randn(3, generator=g, dtype=torch.float64), cov_c3 + spread3, 0.5, torch.float32),
            case("w = 6.5 (diffusers' guidance_scale = 7.5)", torch.tensor([0.5, 1.0]), cov_c, torch.zeros(2),
                 cov_c + spread, 6.5)]


def _tilt_with(combine="precision", mean="precision_weighted", a=lambda w: 1 + w, b=lambda w: -w,
               swap=False, return_precision=False):
    def f(mean_c, cov_c, mean_u, cov_u, w):
        dt = mean_c.dtype
        m_c, c_c, m_u, c_u = mean_c.double(), cov_c.double(), mean_u.double(), cov_u.double()
        if swap:
            m_c, c_c, m_u, c_u = m_u, c_u, m_c, c_c
        p_c, p_u = torch.linalg.inv(c_c), torch.linalg.inv(c_u)
        if combine == "covariance":
            cov = a(w) * c_c + b(w) * c_u
        else:
            cov = torch.linalg.inv(a(w) * p_c + b(w) * p_u)
        if mean == "linear":
            mu = a(w) * m_c + b(w) * m_u
        elif mean == "no_inverse":
            mu = a(w) * p_c @ m_c + b(w) * p_u @ m_u
        else:
            mu = cov @ (a(w) * p_c @ m_c + b(w) * p_u @ m_u)
        return mu.to(dt), (torch.linalg.inv(cov) if return_precision else cov).to(dt)
    return f


register(
    "cfg_tilted_gaussian",
    hints=("the tilted density p(x | y)^(1 + w) p(x)^(-w) of two Gaussians is Gaussian: write its log-density, a "
           "quadratic in x, and read off the precision and the mean",
           "no cell derives it for you: notebook 09, section 3, computes this target numerically on a grid; the "
           "algebra is completing the square, as notebook 02 does for the posterior q(x_{t-1} | x_t, x_0) (log-"
           "densities add, so precisions add: (1 + w) C_c^-1 - w C_u^-1)"),
    cases=_tilt_cases,
    reference=cfg_tilted_gaussian,
    mistakes={
        "exponents of Gaussian densities combine the precisions (inverse covariances), not the covariances: "
        "P = (1 + w) C_c^-1 - w C_u^-1, and the mean is P^-1 times the same combination of C^-1 m":
            _tilt_with(combine="covariance", mean="linear"),
        "the covariance is right, but the mean is not (1 + w) m_c - w m_u unless the covariances are equal: it is "
        "the precision-weighted combination, P^-1 ((1 + w) C_c^-1 m_c - w C_u^-1 m_u)":
            _tilt_with(mean="linear"),
        "the mean needs the final P^-1: (1 + w) C_c^-1 m_c - w C_u^-1 m_u is P times the mean (the linear term of the "
        "log-density), not the mean":
            _tilt_with(mean="no_inverse"),
        "that is diffusers' convention, p(x | y)^s p(x)^(1 - s) with s = w: Ho & Salimans' weight w means the "
        "exponents 1 + w and -w (w = 0 is the class itself)":
            _tilt_with(a=lambda w: w, b=lambda w: 1 - w),
        "the sign: guidance divides by p(x)^w, so the unconditional precision enters with -w; you multiplied by it "
        "(+ w)":
            _tilt_with(b=lambda w: w),
        "class and data are swapped: the exponent 1 + w belongs to the class p(x | y) = N(mean_c, cov_c), -w to the "
        "unconditional p(x) = N(mean_u, cov_u)":
            _tilt_with(swap=True),
        "you returned the precision P; return the covariance P^-1":
            _tilt_with(return_precision=True),
    },
    # float64 closed forms up to the order of operations; the float32 case rounds at ~1e-6 relative
    rtol=1e-4, atol=1e-6)
