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
#     assignment: 02_posterior_and_bound
# ---

# %% [markdown]
# # Exercise 02 · The posterior and the bound
#
# Implement five pieces of the variational bound from notebook `02_variational_bound` (questions 1-5, warm-ups),
# then find for which data DDPM's two reverse variances give the same middle terms of the bound (question 6), a
# number the notebook does not print. Conventions as in exercise 01: 1-based time, `t` of shape `(batch,)`, one time per row of `x`. Do not call
# the minddim function of the same name (or a package function that computes the same thing): the check refuses such
# an answer, with no points.
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
# Points: `q_posterior` 1, `normal_kl` 1, `prior_term` 1, `middle_term` 1, `decoder_nll` 1, `variance_tie` 3.

# %%
import math

import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.betas[t] is beta_t, schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** Mean and variance of $q(x_{t-1}\mid x_t, x_0)$ for $t \ge 2$, as notebook 02 derives them in section 2
# (DDPM eqs. 6-7).

# %% nbgrader={"grade": false, "grade_id": "q_posterior", "locked": false, "schema_version": 3, "solution": true, "task": false}
def q_posterior(x0, x_t, t, schedule):
    """Return (mean, variance) of q(x_{t-1} | x_t, x0) in x_t's dtype; the variance may have shape (batch, 1, ...)."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_q_posterior", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("q_posterior", q_posterior)

# %% [markdown]
# **2.** The KL divergence $\mathrm{KL}(\mathcal N(m_1, v_1)\,\|\,\mathcal N(m_2, v_2))$ between two Gaussians with
# variances `var1`, `var2`, elementwise, in nats (the closed form notebook 02 uses in section 3).

# %% nbgrader={"grade": false, "grade_id": "normal_kl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def normal_kl(mean1, var1, mean2, var2):
    """KL(N(mean1, var1) || N(mean2, var2)), elementwise, in nats."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_normal_kl", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("normal_kl", normal_kl)

# %% [markdown]
# **3.** The prior term $L_T$ of the bound (DDPM eq. 5; notebook 02, sections 1 and 3): one number per row of
# `x0`, in nats. You may use your `normal_kl`.

# %% nbgrader={"grade": false, "grade_id": "prior_term", "locked": false, "schema_version": 3, "solution": true, "task": false}
def prior_term(x0, schedule):
    """L_T for each sample, shape (batch,)."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_prior_term", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("prior_term", prior_term)

# %% [markdown]
# **4.** The bound's middle term $L_{t-1}$ for $t \ge 2$ (DDPM eq. 5; notebook 02, section 3), for one draw
# $x_t$ and a model's noise estimate `eps`: $p_\theta(x_{t-1}\mid x_t)$ has DDPM's mean (eq. 11, which notebook 03,
# section 1, derives)
# $\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon\big)$, with
# `eps` as $\epsilon$, and variance $\sigma_t^2 = \tilde\beta_t$ (`variance="beta_tilde"`) or $\sigma_t^2 = \beta_t$
# (`variance="beta"`), DDPM's two choices (sec. 3.2). One number per sample, in nats: it is what
# `md.vlb_terms` puts in column $t-1$. You may use your `q_posterior` and `normal_kl`.

# %% nbgrader={"grade": false, "grade_id": "middle_term", "locked": false, "schema_version": 3, "solution": true, "task": false}
def middle_term(x0, x_t, eps, t, schedule, variance="beta_tilde"):
    """L_{t-1} for each sample given the model's noise estimate eps, in nats, shape (batch,), in x_t's dtype."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_middle_term", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("middle_term", middle_term)


# %% [markdown]
# **5.** The decoder term $L_0 = -\log p_\theta(x_0\mid x_1)$ for 8-bit data scaled to $[-1, 1]$ (DDPM eq. 13;
# notebook 02, section 4): each pixel of `x0` lies on the grid $\{-1, -1 + 2/255, \dots, 1\}$; $p_\theta$ gives it
# the mass of $\mathcal N(\text{mean}, \text{var})$ over its bin. `var` is a number or a tensor that broadcasts
# against `x0`. One number per sample, in nats. `torch.special.ndtr` is the standard normal CDF.

# %% nbgrader={"grade": false, "grade_id": "decoder_nll", "locked": false, "schema_version": 3, "solution": true, "task": false}
def decoder_nll(x0, mean, var):
    """L_0 = -log p_theta(x0 | x_1) under DDPM's discretized decoder, per sample, in nats, shape (batch,), x0's dtype."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_decoder_nll", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("decoder_nll", decoder_nll)

# %% [markdown]
# **6. For which data do DDPM's two reverse variances tie?** DDPM (sec. 3.2) fixes the reverse variance to
# $\sigma_t^2 = \beta_t$ or $\sigma_t^2 = \tilde\beta_t$: the first is optimal for $x_0 \sim \mathcal N(0, I)$, the
# second for $x_0$ a single point. Take data $x_0 \sim \mathcal N(0, v I)$ and the exact model, whose mean is
# $\mu_\theta(x_t, t) = \tilde\mu_t(x_t, \mathbb E[x_0\mid x_t])$ (notebook 02, section 3). Derive, per dimension, the
# bound's middle terms $L_1 + \dots + L_{T-1}$ (DDPM eq. 5) with $\beta_t$ minus those with $\tilde\beta_t$, as a
# function of $v$ (notebook 02, section 3, computes these terms for a data covariance: you may adapt its code). Then return the $v$ in $(0, 1)$ where
# this difference is zero, as a Python float, to a relative accuracy of $10^{-8}$ or better (bisection works: the
# difference is positive at $v = 0$ and falls as $v$ grows). The schedule's tensors are float64: compute in float64.
#
# Check your difference first: summed over the two eigenvalues of notebook 02's covariance, 0.2 and 1.8, it gives
# minus the notebook's 0.920 nats (the gap of its section 3, over both dimensions). Then try it: how wide must data
# be, in gray levels ($\sqrt v \cdot 127.5$), for $\beta_t$ to win on the linear schedule, and on the cosine one?

# %% nbgrader={"grade": false, "grade_id": "variance_tie", "locked": false, "schema_version": 3, "solution": true, "task": false}
def variance_tie(schedule):
    """The v in (0, 1) at which sigma_t^2 = beta_t and tilde-beta_t give the same L_1 + ... + L_{T-1}, data N(0, v I)."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_variance_tie", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
grading.check("variance_tie", variance_tie)
