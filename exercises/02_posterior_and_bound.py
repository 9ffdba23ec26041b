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
# Implement three pieces of the variational bound from notebook `02_variational_bound`. Conventions as in
# exercise 01: 1-based time, `t` of shape `(batch,)`, coefficients reshaped to broadcast over `x`.
#
# **How to work through it.** Run the first code cell (the imports), then take one question at a time: write
# your code in place of `raise NotImplementedError(...)`, run that cell (Shift+Enter), then run the check cell
# under it, which answers in one line: `PASS ...`, or `FAIL ...` with what was expected, what came back and a
# hint. *Run All* stops at the first check that fails (an untouched question says "not implemented yet"), so
# the questions after it are left unrun: that is expected, not a crash. Run each question's cells yourself.
#
# Points: `q_posterior` 2, `normal_kl` 1, `prior_term` 1.

# %%
import math

import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.betas[t] is beta_t, schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** Mean and variance of $q(x_{t-1}\mid x_t, x_0)$ (DDPM eqs. 6-7), for $t \ge 2$:
# $\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1-\bar\alpha_t}x_0 + \frac{\sqrt{\alpha_t}(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}x_t$,
# $\tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t$.

# %% nbgrader={"grade": false, "grade_id": "q_posterior", "locked": false, "schema_version": 3, "solution": true, "task": false}
def q_posterior(x0, x_t, t, schedule):
    """Return (mean, variance) of q(x_{t-1} | x_t, x0); the variance may have shape (batch, 1, ...)."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_q_posterior", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("q_posterior", q_posterior)

# %% [markdown]
# **2.** The KL divergence between two Gaussians with *variances* `var1`, `var2`, elementwise:
# $\mathrm{KL}(\mathcal N(m_1, v_1)\,\|\,\mathcal N(m_2, v_2)) = \tfrac12\big(\log\tfrac{v_2}{v_1} + \tfrac{v_1 + (m_1-m_2)^2}{v_2} - 1\big)$.

# %% nbgrader={"grade": false, "grade_id": "normal_kl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def normal_kl(mean1, var1, mean2, var2):
    """KL(N(mean1, var1) || N(mean2, var2)), elementwise, in nats."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_normal_kl", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("normal_kl", normal_kl)

# %% [markdown]
# **3.** The prior term $L_T = \mathrm{KL}(q(x_T\mid x_0)\,\|\,\mathcal N(0, I))$, summed over all dimensions of
# each sample: one number per row of `x0`. You may use your `normal_kl`.

# %% nbgrader={"grade": false, "grade_id": "prior_term", "locked": false, "schema_version": 3, "solution": true, "task": false}
def prior_term(x0, schedule):
    """L_T for each sample, shape (batch,)."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_prior_term", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("prior_term", prior_term)
