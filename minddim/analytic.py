"""Exact denoisers for Gaussian and Gaussian-mixture data: the Bayes-optimal model.

If x_0 ~ sum_k w_k N(m_k, C_k), then x_t = sqrt(bar-alpha_t) x_0 + sqrt(1 - bar-alpha_t) eps has the
closed-form marginal

    q(x_t) = sum_k w_k N(sqrt(bar-alpha_t) m_k, Sigma_{k,t}),   Sigma_{k,t} = bar-alpha_t C_k + (1 - bar-alpha_t) I,

and the minimum-mean-squared-error noise estimate is (Tweedie's formula, score = -E[eps|x_t]/sqrt(1-bar-alpha_t))

    E[eps | x_t] = sqrt(1 - bar-alpha_t) sum_k r_k(x_t) Sigma_{k,t}^{-1} (x_t - sqrt(bar-alpha_t) m_k),

with r_k(x_t) the posterior probability of component k.  These models plug into every sampler and loss
of the package as ``model(x_t, t)``: they give the loss floor, the exact bound and the sampler error of a
perfect network.  Computations run in float64; the eps-models and scores come back in the dtype of ``x_t``, the
log-densities (``log_prob``, ``log_class_posterior``) and ``marginal``'s parameters stay float64.

Classes.  Read the mixture's components as classes y = 0..K-1 (x_0 | y ~ N(m_y, C_y), p(y) = w_y).  Then every
quantity of guidance (:mod:`minddim.guidance`) is exact too::

    p(y | x_t) = r_y(x_t) = w_y N(x_t; sqrt(bar-alpha_t) m_y, Sigma_{y,t}) / q(x_t)        (Bayes' rule)
    E[eps | x_t, y] = sqrt(1 - bar-alpha_t) Sigma_{y,t}^{-1} (x_t - sqrt(bar-alpha_t) m_y)
    grad_x log p(y | x_t) = grad_x log q(x_t | y) - grad_x log q(x_t)
                          = -(E[eps | x_t, y] - E[eps | x_t]) / sqrt(1 - bar-alpha_t),

so the unconditional eps minus sqrt(1 - bar-alpha_t) times the classifier's gradient (classifier guidance at
scale 1, Dhariwal & Nichol 2021, eq. 14) *is* the conditional eps: :meth:`GaussianMixtureDenoiser.class_eps`,
:meth:`~GaussianMixtureDenoiser.log_class_posterior` (an exact noise-aware classifier ``(x_t, t) -> logits``),
:meth:`~GaussianMixtureDenoiser.class_posterior_grad`, and :class:`ConditionalMixtureDenoiser`, the conditional
eps-model ``(x_t, t, y)`` whose null label K gives the unconditional eps.
"""

from __future__ import annotations

import math

import torch

from ._validate import as_time, check_batch, check_labels, check_tensor, labels_for
from .schedules import Schedule, as_schedule


class GaussianMixtureDenoiser:
    """The exact E[eps | x_t] (and density and score of q(x_t)) for Gaussian-mixture data.

    ``weights`` (K,) positive, summing to 1; ``means`` (K, D); ``covs`` (K, D, D) symmetric positive
    definite.  Call it as a model: ``eps_hat = denoiser(x_t, t)``.
    """

    def __init__(self, weights, means, covs, schedule: Schedule):
        self.schedule = as_schedule(schedule)
        w = torch.as_tensor(weights, dtype=torch.float64)
        m = torch.as_tensor(means, dtype=torch.float64)
        c = torch.as_tensor(covs, dtype=torch.float64)
        if w.dim() != 1 or (w <= 0).any() or not torch.isfinite(w).all():
            raise ValueError("weights must be a 1-D tensor of positive numbers")
        if abs(float(w.sum()) - 1) > 1e-6:
            raise ValueError(f"weights must sum to 1, got {float(w.sum()):.6g}")
        if m.dim() != 2 or m.shape[0] != w.shape[0] or not torch.isfinite(m).all():
            raise ValueError(f"means must have shape (K, D) = ({w.shape[0]}, D) and be finite, got {tuple(m.shape)}")
        D = m.shape[1]
        if c.shape != (w.shape[0], D, D) or not torch.isfinite(c).all():
            raise ValueError(f"covs must have shape (K, D, D) = ({w.shape[0]}, {D}, {D}), got {tuple(c.shape)}")
        if not torch.allclose(c, c.transpose(1, 2), atol=1e-10):
            raise ValueError("covs must be symmetric")
        if (torch.linalg.eigvalsh(c) <= 0).any():
            raise ValueError("covs must be positive definite")
        self.weights, self.means, self.covs = w, m, c

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    # -- the data and its noisy marginals -------------------------------------------------------
    def sample_data(self, n: int, generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
        """Draw n points x_0 from the mixture."""
        return sample_mixture(self.weights, self.means, self.covs, n, generator).to(dtype)

    def marginal(self, t):
        """Parameters (weights, means, covs) of q(x_t) for a single time t in 0..T."""
        t = as_time(t, self.schedule.T, "t", low=0)
        if t.dim() != 0:
            raise ValueError("t must be a single time step here")
        ab = self.schedule.alpha_bars[t]
        eye = torch.eye(self.dim, dtype=torch.float64)
        return self.weights, ab.sqrt() * self.means, ab * self.covs + (1 - ab) * eye

    def _components(self, x_t: torch.Tensor, t, low: int):
        """Per-sample, per-component quantities at the schedule's integer time ``t`` (see :meth:`_at`)."""
        self._check_x(x_t)
        t = as_time(t, self.schedule.T, "t", low)
        check_batch(t, x_t, "t", "x_t")
        return self._at(x_t, self.schedule.alpha_bars[t].reshape(-1))

    def _check_x(self, x_t):
        check_tensor(x_t, "x_t")
        if x_t.dim() != 2 or x_t.shape[1] != self.dim:
            raise ValueError(f"x_t must have shape (batch, {self.dim}), got {tuple(x_t.shape)}")

    def _at(self, x_t: torch.Tensor, alpha_bar: torch.Tensor):
        """Log responsibilities-to-be, Sigma^{-1}(x - mean) and bar-alpha, for x_t at noise level
        ``alpha_bar`` (float64, shape (1,) or (B,)); one Cholesky factor per distinct noise level."""
        x = x_t.to(torch.float64)
        levels, index = torch.unique(alpha_bar, return_inverse=True)                # (U,), (B|1,)
        eye = torch.eye(self.dim, dtype=torch.float64)
        a = levels.reshape(-1, 1, 1, 1)
        L = torch.linalg.cholesky(a * self.covs + (1 - a) * eye)                    # (U, K, D, D)
        precision, logdet = torch.cholesky_inverse(L), 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        if levels.numel() > 1:                                                      # one factor per row
            precision, logdet = precision[index], logdet[index]                     # (B, K, D, D), (B, K)
        ab = alpha_bar.reshape(-1, 1, 1, 1)
        diff = x[:, None, :] - ab[..., 0].sqrt() * self.means                      # (B, K, D)
        if precision.shape[0] == 1:
            sol = torch.einsum("kij,bkj->bki", precision[0], diff)                  # Sigma^{-1} diff
        else:
            sol = torch.einsum("bkij,bkj->bki", precision, diff)
        maha = (diff * sol).sum(-1)                                                 # (B, K)
        log_comp = -0.5 * (maha + logdet + self.dim * math.log(2 * math.pi)) + self.weights.log()
        return log_comp, sol, ab.reshape(-1, 1)

    @staticmethod
    def _score(log_comp, sol):
        return -(torch.softmax(log_comp, 1).unsqueeze(-1) * sol).sum(1)

    def log_prob(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """log q(x_t) for t in 0..T (t = 0: the data density), shape (B,), float64."""
        log_comp, _, _ = self._components(x_t, t, low=0)
        return torch.logsumexp(log_comp, 1)

    def score(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """grad_x log q(x_t) = -sum_k r_k Sigma_{k,t}^{-1} (x_t - sqrt(bar-alpha_t) m_k), for t in 0..T."""
        return self._score(*self._components(x_t, t, low=0)[:2]).to(x_t.dtype)

    def __call__(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """E[eps | x_t] = -sqrt(1 - bar-alpha_t) score(x_t), for t in 1..T."""
        log_comp, sol, ab = self._components(x_t, t, low=1)
        return (-(1 - ab).sqrt() * self._score(log_comp, sol)).to(x_t.dtype)

    # -- between the schedule's integer times ---------------------------------------------------
    def eps_at(self, x_t: torch.Tensor, alpha_bar) -> torch.Tensor:
        """E[eps | x_t] for x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps at *any* noise level
        ``alpha_bar`` in (0, 1] (a number or a (B,) tensor), not only the schedule's bar-alpha_t.

        This is what an ODE solver needs (:func:`minddim.score.pf_ode_solve`): the exact model is defined
        at every noise level, so no interpolation of the schedule between integer times is involved."""
        self._check_x(x_t)
        ab = torch.as_tensor(alpha_bar, dtype=torch.float64).reshape(-1)
        if ab.numel() not in (1, x_t.shape[0]) or not torch.isfinite(ab).all() or (ab <= 0).any() or (ab > 1).any():
            raise ValueError(f"alpha_bar must be a number or a (batch,) tensor in (0, 1], got {alpha_bar!r}")
        log_comp, sol, ab = self._at(x_t, ab)
        return (-(1 - ab).sqrt() * self._score(log_comp, sol)).to(x_t.dtype)

    # -- the components as classes (module docstring; minddim.guidance) ---------------------------
    @property
    def num_components(self) -> int:
        return self.weights.shape[0]

    def log_class_posterior(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """log p(y | x_t) for every class y = 0..K-1 (the log responsibilities), shape (B, K), float64, for t in
        0..T.  Differentiable in ``x_t``: it is an exact noise-aware classifier ``(x_t, t) -> logits`` for
        :func:`minddim.guidance.classifier_guidance` (log-probabilities are logits: their log-softmax is themselves)."""
        log_comp, _, _ = self._components(x_t, t, low=0)
        return torch.log_softmax(log_comp, 1)

    def class_posterior_grad(self, x_t: torch.Tensor, t, y) -> torch.Tensor:
        """grad_x log p(y | x_t) = sum_k r_k Sigma_{k,t}^{-1} (x_t - sqrt(bar-alpha_t) m_k) - Sigma_{y,t}^{-1}
        (x_t - sqrt(bar-alpha_t) m_y) in closed form (the class score minus the score), for t in 0..T, in the
        dtype of ``x_t``.  ``y``: an int or a (B,) tensor of classes 0..K-1."""
        log_comp, sol, _ = self._components(x_t, t, low=0)
        y = labels_for(check_labels(y, self.num_components, "y", allow_null=False), x_t)
        rows = torch.arange(x_t.shape[0])
        return (-sol[rows, y.cpu()] - self._score(log_comp, sol)).to(x_t.dtype)

    def class_eps(self, x_t: torch.Tensor, t, y) -> torch.Tensor:
        """E[eps | x_t, y] = sqrt(1 - bar-alpha_t) Sigma_{y,t}^{-1} (x_t - sqrt(bar-alpha_t) m_y), the exact
        class-conditional model (component y alone is the data), for t in 1..T.  ``y``: an int or a (B,) tensor of
        classes 0..K-1, or K, the null label (:mod:`minddim.guidance`), for which it is the unconditional
        E[eps | x_t] of :meth:`__call__`."""
        log_comp, sol, ab = self._components(x_t, t, low=1)
        y = labels_for(check_labels(y, self.num_components, "y", allow_null=True), x_t).cpu()
        K, rows = self.num_components, torch.arange(x_t.shape[0])
        eps = (1 - ab).sqrt() * sol[rows, y.clamp(max=K - 1)]
        null = y == K
        if bool(null.any()):
            eps = torch.where(null[:, None], -(1 - ab).sqrt() * self._score(log_comp, sol), eps)
        return eps.to(x_t.dtype)

    def conditional(self) -> "ConditionalMixtureDenoiser":
        """This mixture as a class-conditional eps-model ``(x_t, t, y)``: :class:`ConditionalMixtureDenoiser`."""
        return ConditionalMixtureDenoiser(self)

    def entropy(self, n: int = 200_000, generator: torch.Generator | None = None) -> float:
        """Differential entropy H(x_0) in nats: exact for one component, Monte Carlo otherwise."""
        if len(self.weights) == 1:
            return gaussian_entropy(self.covs[0])
        x = self.sample_data(n, generator, dtype=torch.float64)
        return float(-self.log_prob(x, 0).mean())


class ConditionalMixtureDenoiser:
    """The exact class-conditional eps-model of a Gaussian mixture whose components are the classes:
    ``model(x_t, t, y) = E[eps | x_t, y]`` (:meth:`GaussianMixtureDenoiser.class_eps`) with ``y`` in 0..K-1, and
    the null label ``y = K = num_classes`` giving the unconditional E[eps | x_t], as a network trained with label
    dropout learns to (Ho & Salimans 2022, sec. 3.2).  It is what :func:`minddim.guidance.classifier_free` takes,
    with no network error at all."""

    def __init__(self, denoiser: GaussianMixtureDenoiser):
        if not isinstance(denoiser, GaussianMixtureDenoiser):
            raise TypeError(f"denoiser must be a GaussianMixtureDenoiser, got {type(denoiser).__name__}")
        self.denoiser = denoiser
        self.schedule = denoiser.schedule

    @property
    def num_classes(self) -> int:
        return self.denoiser.num_components

    def __call__(self, x_t: torch.Tensor, t, y) -> torch.Tensor:
        return self.denoiser.class_eps(x_t, t, y)


class GaussianDenoiser(GaussianMixtureDenoiser):
    """The exact model for Gaussian data x_0 ~ N(mean, cov): a mixture with one component, for which

    E[eps | x_t] = sqrt(1 - bar-alpha_t) (bar-alpha_t C + (1 - bar-alpha_t) I)^{-1} (x_t - sqrt(bar-alpha_t) m)
    is linear in x_t."""

    def __init__(self, mean, cov, schedule: Schedule):
        mean = torch.as_tensor(mean, dtype=torch.float64)
        cov = torch.as_tensor(cov, dtype=torch.float64)
        if mean.dim() != 1:
            raise ValueError(f"mean must have shape (D,), got {tuple(mean.shape)}")
        super().__init__(torch.ones(1, dtype=torch.float64), mean[None], cov[None], schedule)

    @property
    def mean(self) -> torch.Tensor:
        return self.means[0]

    @property
    def cov(self) -> torch.Tensor:
        return self.covs[0]


def sample_mixture(weights, means, covs, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n float64 draws from sum_k w_k N(m_k, C_k): a component, then its Cholesky factor times N(0, I)."""
    k = torch.multinomial(weights, n, replacement=True, generator=generator)
    z = torch.randn(n, means.shape[1], dtype=torch.float64, generator=generator)
    return means[k] + (torch.linalg.cholesky(covs)[k] @ z.unsqueeze(-1)).squeeze(-1)


def gaussian_entropy(cov: torch.Tensor) -> float:
    """H(N(m, C)) = 0.5 log det(2 pi e C) in nats."""
    cov = torch.as_tensor(cov, dtype=torch.float64)
    D = cov.shape[-1]
    return float(0.5 * (D * math.log(2 * math.pi * math.e) + torch.logdet(cov)))
