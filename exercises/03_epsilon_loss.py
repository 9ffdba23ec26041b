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
#     assignment: 03_epsilon_loss
# ---

# %% [markdown]
# # Exercise 03 · The epsilon loss and ancestral sampling
#
# Implement the training loss and one reverse step from notebook `03_epsilon_loss`. Conventions as in
# exercise 01. A model is a callable `model(x_t, t) -> eps_hat`.
#
# **How to work through it.** Run the first code cell (the imports), then take one question at a time: write
# your code in place of `raise NotImplementedError(...)`, run that cell (Shift+Enter), then run the check cell
# under it, which answers in one line: `PASS ...`, or `FAIL ...` with what was expected, what came back and a
# hint. *Run All* stops at the first check that fails (an untouched question says "not implemented yet"), so
# the questions after it are left unrun: that is expected, not a crash. Run each question's cells yourself.
#
# Points: `epsilon_loss` 2, `p_mean` 1, `ancestral_step` 2.

# %%
import math

import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.betas[t] is beta_t, schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** $L_\text{simple}$ (DDPM eq. 14) for given `t` and `noise`: build $x_t$ from $x_0$ and the noise, and
# return the mean over all elements of $(\epsilon - \epsilon_\theta(x_t, t))^2$ (a scalar tensor).

# %% nbgrader={"grade": false, "grade_id": "epsilon_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def epsilon_loss(model, x0, t, noise, schedule):
    """mean((noise - model(x_t, t))^2) with x_t = sqrt(alpha-bar_t) x0 + sqrt(1 - alpha-bar_t) noise."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_epsilon_loss", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("epsilon_loss", epsilon_loss)

# %% [markdown]
# **2.** The reverse-process mean for a noise estimate (DDPM eq. 11):
# $\mu_\theta = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon\big)$.

# %% nbgrader={"grade": false, "grade_id": "p_mean", "locked": false, "schema_version": 3, "solution": true, "task": false}
def p_mean(x_t, eps, t, schedule):
    """mu_theta(x_t, t) from the noise estimate eps."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_p_mean", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("p_mean", p_mean)

# %% [markdown]
# **3.** One ancestral step (DDPM Algorithm 2) with $\sigma_t^2 = \tilde\beta_t$ (`schedule.beta_tildes[t]`):
# $x_{t-1} = \mu_\theta(x_t, t) + \sigma_t z$ with the given `z`.

# %% nbgrader={"grade": false, "grade_id": "ancestral_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ancestral_step(x_t, eps, t, schedule, z):
    """x_{t-1} = mu_theta(x_t, t) + sqrt(tilde-beta_t) z."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_ancestral_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("ancestral_step", ancestral_step)
