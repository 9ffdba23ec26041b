# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   minddim:
#     assignment: 09_guidance
# ---

# %% [markdown]
# # Exercise 09 · Conditional generation and guidance
#
# Implement four pieces of notebook `09_guidance` (`notebooks/09_guidance.ipynb`): the classifier-free
# combination of two noise predictions, the classifier-guided noise prediction, the exact class posterior
# $p(y \mid x_t)$ of a Gaussian mixture (the noise-aware classifier that notebook 09 guides the toy mixture with),
# and, derived by hand, the Gaussian that classifier-free guidance asks for when the class and the data are both
# Gaussian.
#
# **You will be able to:** write classifier-free guidance (Ho & Salimans 2022, eq. 6) and classifier guidance
# (Dhariwal & Nichol 2021, eq. 14) as eps-models for the one sampler, and tell Ho & Salimans' weight $w$ from
# diffusers' `guidance_scale`; compute the exact noise-aware classifier of a Gaussian mixture under
# $q(x_t \mid x_0)$; say in closed form what the guided score's target $p(x \mid y)^{1+w}\,p(x)^{-w}$ is for two
# Gaussians, and what that target alone trades (the samplers need not follow it: notebook `09_guidance`, section 3).
# **You need first:** notebook `09_guidance`; exercise 06 (score and eps: score $= -\epsilon / \sqrt{1 -
# \bar\alpha_t}$); $q(x_t \mid x_0)$ of exercise 01.
# **Time:** about 45 min to solve (estimate); every check runs in well under a second.
#
# Time is DDPM's, 1-based: `schedule.alpha_bars[t]` is $\bar\alpha_t$ (with $\bar\alpha_0 = 1$), and `t` is an
# integer tensor of shape `(batch,)`. Do not call the minddim function of the same name (or a package function that
# computes the same thing): the check refuses such an answer, with no points.
#
# **How to work through it.** Run the first code cell (the imports), then take one question at a time: write
# your code in place of `raise NotImplementedError(...)`, run that cell (Shift+Enter), then run the check cell
# under it, which answers in one line: `PASS ...`, or `FAIL ...` with what was expected, what came back and a
# hint. *Run All* stops at the first check that fails (an untouched question says "not implemented yet"), so
# the questions after it are left unrun: that is expected, not a crash. Run each question's cells yourself.
# Stuck after a failed check? `grading.hint("name")` gives a hint, a more precise one each time you ask: what
# the quantity means, where the notebook derives it, then which known mistake your last answer matched.
#
# **Where to work.** Here, in `exercises/`, saving as you go. Regenerating the exercises (`python -m minddim
# exercises`) never replaces a notebook you have changed: it keeps it and says so, and `make test` does not ask you
# to regenerate it. To start an exercise afresh, delete its two files (`.ipynb` and `.py`) and run
# `python -m minddim exercises`.
#
# Points: `cfg_eps` 1, `classifier_guided_eps` 1, `log_class_posterior` 1, `cfg_tilted_gaussian` 3.

# %%
import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** Classifier-free guidance (Ho & Salimans 2022, sec. 3.2, eq. 6; notebook `09_guidance`). One network
# predicts the noise both with the class, $\epsilon_\theta(x_t, t, y)$ (`eps_cond`), and without it, with the null
# label, $\epsilon_\theta(x_t, t, \varnothing)$ (`eps_uncond`). Return the guided prediction
# $\tilde\epsilon(x_t, t)$ at Ho & Salimans' guidance weight `w` (a Python number), as notebook `09_guidance`,
# section 3, writes it.
#
# `md.classifier_free(model, y, w)` wraps this combination around a class-conditional model, evaluating both
# predictions in one batched call, and returns an eps-model `(x_t, t)` for any sampler.

# %% nbgrader={"grade": false, "grade_id": "cfg_eps", "locked": false, "schema_version": 3, "solution": true, "task": false}
def cfg_eps(eps_cond, eps_uncond, w):
    """eps_tilde = the classifier-free guided noise prediction at Ho & Salimans' weight w."""
    ### BEGIN SOLUTION
    return (1 + w) * eps_cond - w * eps_uncond
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_cfg_eps", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("cfg_eps", cfg_eps)

# %% [markdown]
# **2.** Classifier guidance (Dhariwal & Nichol 2021, sec. 4.2, eq. 14, with their gradient scale $s$ of
# sec. 4.3; notebook `09_guidance`). An unconditional model predicts `eps` $= \epsilon_\theta(x_t, t)$; a
# noise-aware classifier gives `grad_log_p` $= \nabla_{x_t} \log p_\phi(y \mid x_t)$. Return the guided noise
# prediction $\hat\epsilon(x_t, t)$ for the scale `scale` $= s$ (notebook `09_guidance`, section 2). Shapes as in
# exercise 01: reshape per-sample coefficients to broadcast over `eps`; return a tensor shaped like `eps`, in its
# dtype.

# %% nbgrader={"grade": false, "grade_id": "classifier_guided_eps", "locked": false, "schema_version": 3, "solution": true, "task": false}
def classifier_guided_eps(eps, grad_log_p, t, schedule, scale):
    """eps_hat(x_t, t) of classifier guidance at gradient scale `scale`."""
    ### BEGIN SOLUTION
    alpha_bar = schedule.alpha_bars[t].to(eps.dtype).view(-1, *[1] * (eps.dim() - 1))
    return eps - scale * (1 - alpha_bar).sqrt() * grad_log_p
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_classifier_guided_eps", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("classifier_guided_eps", classifier_guided_eps)

# %% [markdown]
# **3.** The exact noise-aware classifier of a Gaussian mixture (notebook `09_guidance`, section 1, plots its entropy against $t$).
# The data are a mixture of $K$ Gaussian classes, $p(x_0) = \sum_k \pi_k\, \mathcal N(x_0; m_k, C_k)$, with
# `weights` $\pi$ of shape `(K,)` (summing to 1), `means` $m$ of shape `(K, D)` and `covs` $C$ of shape
# `(K, D, D)`. Noising class $k$ with $q(x_t \mid x_0)$ (DDPM eq. 4) keeps it Gaussian. Return the log
# responsibilities $\log p(y = k \mid x_t)$ for every class: shape `(batch, K)`, in the dtype of `x_t`, for
# `x_t` of shape `(batch, D)` and `t` of shape `(batch,)` in $0, \dots, T$ (each row its own time; $t = 0$ is the
# data). You may write the Gaussian log-density yourself or use
# `torch.distributions.MultivariateNormal`, which broadcasts over batch dimensions. The check compares to
# `rtol = 1e-4`, `atol = 1e-4`.

# %% nbgrader={"grade": false, "grade_id": "log_class_posterior", "locked": false, "schema_version": 3, "solution": true, "task": false}
def log_class_posterior(x_t, t, schedule, weights, means, covs):
    """log p(y = k | x_t) for k = 0..K-1, shape (batch, K): the mixture's components noised to time t."""
    ### BEGIN SOLUTION
    alpha_bar = schedule.alpha_bars[t].to(x_t.dtype).view(-1, 1, 1, 1)                  # (B, 1, 1, 1)
    cov_t = alpha_bar * covs + (1 - alpha_bar) * torch.eye(x_t.shape[1], dtype=x_t.dtype)  # (B, K, D, D)
    mean_t = alpha_bar[..., 0].sqrt() * means                                            # (B, K, D)
    log_lik = torch.distributions.MultivariateNormal(mean_t, covariance_matrix=cov_t).log_prob(x_t[:, None, :])
    return torch.log_softmax(weights.log() + log_lik, dim=1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_log_class_posterior", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("log_class_posterior", log_class_posterior)

# %% [markdown]
# **4.** What classifier-free guidance asks for, when everything is Gaussian (a derivation, checked on numbers).
# With exact models, the guided prediction of question 1 is $-\sqrt{1 - \bar\alpha_t}$ times the score
# $(1 + w)\nabla \log p_t(x \mid y) - w \nabla \log p_t(x)$; as $t \to 0$ this is the score of the *tilted* density
#
# $$\tilde p_w(x) \propto p(x \mid y)^{1 + w}\, p(x)^{-w}$$
#
# (Ho & Salimans' implicit classifier $p(y \mid x) \propto p(x \mid y) / p(x)$, raised to the power $w$, times
# $p(x \mid y)$). Let the class be $p(x \mid y) = \mathcal N(m_c, C_c)$ and the data $p(x) = \mathcal N(m_u, C_u)$.
# Write $\log \tilde p_w(x)$ as a quadratic in $x$ and read off its precision (inverse covariance) and its mean;
# return `(mean, cov)` of $\tilde p_w$: shapes `(D,)` and `(D, D)`, in the dtype of `mean_c`. The cases keep
# $\tilde p_w$ a density (its precision positive definite); the check compares to `rtol = 1e-4`, `atol = 1e-6`.
#
# Try the result on the isotropic case: a class $\mathcal N(m, s^2 I)$ inside data $\mathcal N(0, S^2 I)$ with
# $s < S$. Its variance shrinks as $w$ grows and its mean moves beyond $m$, away from the data's mean: the trade
# the tilted target itself asks for when the data are one Gaussian. (At $t > 0$ guidance tilts the *noisy* densities $p_t$, which are not
# the noised $\tilde p_w$, so guided samples need not follow $\tilde p_w$ exactly.)

# %% nbgrader={"grade": false, "grade_id": "cfg_tilted_gaussian", "locked": false, "schema_version": 3, "solution": true, "task": false}
def cfg_tilted_gaussian(mean_c, cov_c, mean_u, cov_u, w):
    """(mean, cov) of p(x | y)^(1 + w) p(x)^(-w) normalised; p(x | y) = N(mean_c, cov_c), p(x) = N(mean_u, cov_u)."""
    ### BEGIN SOLUTION
    prec_c, prec_u = torch.linalg.inv(cov_c), torch.linalg.inv(cov_u)
    cov = torch.linalg.inv((1 + w) * prec_c - w * prec_u)
    mean = cov @ ((1 + w) * prec_c @ mean_c - w * prec_u @ mean_u)
    return mean, cov
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_cfg_tilted_gaussian", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
grading.check("cfg_tilted_gaussian", cfg_tilted_gaussian)
