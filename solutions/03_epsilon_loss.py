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
# Implement the training loss, DDPM's training step, and one reverse step from notebook `03_epsilon_loss`.
# Conventions as in exercise 01. A model is a callable `model(x_t, t) -> eps_hat`.
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
# Points: `epsilon_loss` 2, `training_step` 3, `p_mean` 1, `ancestral_step` 2.

# %%
import math

import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.betas[t] is beta_t, schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** $L_\text{simple}$ for given `t` and `noise` (notebook 03, section 1; DDPM eq. 14): the mean over all
# elements, a scalar tensor.

# %% nbgrader={"grade": false, "grade_id": "epsilon_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def epsilon_loss(model, x0, t, noise, schedule):
    """L_simple for these t and noise, a scalar tensor."""
    ### BEGIN SOLUTION
    ab = schedule.alpha_bars[t].to(x0.dtype).view(-1, *[1] * (x0.dim() - 1))
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    return ((noise - model(x_t, t)) ** 2).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_epsilon_loss", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("epsilon_loss", epsilon_loss)

# %% [markdown]
# **2.** DDPM's Algorithm 1, one iteration (notebook 03, section 2): for a batch `x0_batch` of shape `(batch, D)`,
# draw a time per sample and the noise with `generator`, form $x_t$, take the loss and one step of `optimizer`
# on `model`'s parameters; return the loss as a number. You may use your `epsilon_loss`.
#
# The check first calls your step on a spy model (what it draws and returns), then trains the course's
# `md.MLP` on the eight-Gaussians set with your step: 800 steps of batch 256, Adam with learning rate 3e-3,
# seeded. It passes if the trained model's $L_\text{simple}$ on fixed held-out draws comes within 20% of the
# exact floor that no network can beat (`md.GaussianMixtureDenoiser`, notebook 03, section 2); the package's
# own step passes it. The check trains for some seconds.

# %% nbgrader={"grade": false, "grade_id": "training_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def training_step(model, optimizer, x0_batch, schedule, generator):
    """One step of DDPM's training on a batch of x0; returns the loss (a number). Draw from `generator`."""
    ### BEGIN SOLUTION
    t = torch.randint(1, schedule.T + 1, (x0_batch.shape[0],), generator=generator)
    noise = torch.randn(x0_batch.shape, generator=generator, dtype=x0_batch.dtype)
    loss = epsilon_loss(model, x0_batch, t, noise, schedule)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_training_step", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
grading.check("training_step", training_step)

# %% [markdown]
# **3.** The reverse-process mean $\mu_\theta(x_t, t)$ for a noise estimate (notebook 03, section 1; DDPM eq. 11).

# %% nbgrader={"grade": false, "grade_id": "p_mean", "locked": false, "schema_version": 3, "solution": true, "task": false}
def p_mean(x_t, eps, t, schedule):
    """mu_theta(x_t, t) from the noise estimate eps."""
    ### BEGIN SOLUTION
    shape = (-1, *[1] * (x_t.dim() - 1))
    alpha = schedule.alphas[t].to(x_t.dtype).view(shape)
    ab = schedule.alpha_bars[t].to(x_t.dtype).view(shape)
    beta = schedule.betas[t].to(x_t.dtype).view(shape)
    return (x_t - beta / (1 - ab).sqrt() * eps) / alpha.sqrt()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_p_mean", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("p_mean", p_mean)

# %% [markdown]
# **4.** One ancestral step with $\sigma_t^2 = \tilde\beta_t$ (`schedule.beta_tildes[t]`) and the given `z`
# (notebook 03, section 4; DDPM Algorithm 2).

# %% nbgrader={"grade": false, "grade_id": "ancestral_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ancestral_step(x_t, eps, t, schedule, z):
    """x_{t-1} by one step of DDPM's sampler."""
    ### BEGIN SOLUTION
    var = schedule.beta_tildes[t].to(x_t.dtype).view(-1, *[1] * (x_t.dim() - 1))
    return p_mean(x_t, eps, t, schedule) + var.sqrt() * z
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_ancestral_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("ancestral_step", ancestral_step)
