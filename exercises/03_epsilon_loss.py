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
# Implement the training loss, DDPM's training step, and one reverse step from notebook `03_epsilon_loss`. Conventions
# as in exercise 01 (1-based time; `t` an integer tensor of shape `(batch,)`). The schedule is float64:
# `epsilon_loss`, `p_mean` and `ancestral_step` return tensors of the dtype of their data (`x0`, `x_t`: float32 or
# float64). A model is a callable `model(x_t, t) -> eps_hat`. The last question asks for a quantity that no cell of
# the notebook prints: derive it. Do not call the minddim function of the same name (or a package function that
# computes the same thing): the check refuses such an answer, with no points. For `p_mean`, DDPM eq. 11's first form,
# the posterior mean of exercise 02 at the estimate of $x_0$ (`md.q_posterior` of `md.predict_x0`), is allowed;
# other routes to the same mean (`md.ddim_step`, `md.q_sigma_posterior`) are refused.
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
# Points: `epsilon_loss` 1, `training_step` 2, `p_mean` 1, `ancestral_step` 1, `eps_loss_floor` 3.

# %%
import math

import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.betas[t] is beta_t, schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** $L_\text{simple}$ for given `t` and `noise` (notebook 03, section 1; DDPM eq. 14), reduced to a scalar
# tensor as the notebook's inline version reduces it.

# %% nbgrader={"grade": false, "grade_id": "epsilon_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def epsilon_loss(model, x0, t, noise, schedule):
    """L_simple for these t and noise, a scalar tensor."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_epsilon_loss", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("epsilon_loss", epsilon_loss)

# %% [markdown]
# **2.** DDPM's Algorithm 1, one iteration (the loss: notebook 03, section 1): for a batch `x0_batch` of shape `(batch, D)`, draw a time per sample and the
# noise with `generator`, form $x_t$, take the loss and one step of `optimizer` on `model`'s parameters; return the
# loss as a number. You may use your `epsilon_loss`.
#
# The check first calls your step on a spy model (what it draws and returns), then trains the course's
# `md.MLP` on the eight-Gaussians set with your step: 800 steps of batch 256, Adam with learning rate 3e-3,
# seeded. It passes if the trained model's $L_\text{simple}$ on fixed held-out draws comes within 20% of the
# exact floor that no network can beat (`md.GaussianMixtureDenoiser`, notebook 03, section 2); the package's
# own step passes it. The check trains for some seconds.

# %% nbgrader={"grade": false, "grade_id": "training_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def training_step(model, optimizer, x0_batch, schedule, generator):
    """One step of DDPM's training on a batch of x0; returns the loss (a number). Draw from `generator`."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_training_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("training_step", training_step)

# %% [markdown]
# **3.** The reverse-process mean $\mu_\theta(x_t, t)$ for a noise estimate (notebook 03, section 1; DDPM eq. 11).

# %% nbgrader={"grade": false, "grade_id": "p_mean", "locked": false, "schema_version": 3, "solution": true, "task": false}
def p_mean(x_t, eps, t, schedule):
    """mu_theta(x_t, t) from the noise estimate eps."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_p_mean", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("p_mean", p_mean)

# %% [markdown]
# **4.** One ancestral step with DDPM's $\sigma_t^2 = \tilde\beta_t$ (`schedule.beta_tildes`) and the given `z`
# (notebook 03, section 4; DDPM Algorithm 2). You may use your `p_mean`.

# %% nbgrader={"grade": false, "grade_id": "ancestral_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ancestral_step(x_t, eps, t, schedule, z):
    """x_{t-1} by one step of DDPM's sampler."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_ancestral_step", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("ancestral_step", ancestral_step)


# %% [markdown]
# **5.** The floor of section 2, in closed form. For Gaussian data $x_0 \sim \mathcal N(\mu, \Sigma)$ in $d$
# dimensions, the exact model $\epsilon^*(x_t, t) = \mathbb E[\epsilon\mid x_t]$ (`md.GaussianDenoiser`) reaches the
# smallest expected $L_\text{simple}$ at each $t$, and no network can go below it. Derive that floor, reduced over the
# elements as your `epsilon_loss` reduces them, and return it for each entry of `t` (shape `(batch,)`, float64). It
# depends on $\Sigma$ and $\bar\alpha_t$ only. No cell of the notebook prints it: the notebook measures the floor of the
# eight-Gaussian mixture by Monte Carlo. The check compares with the exact value (relative tolerance $10^{-6}$), so a
# Monte Carlo estimate will not pass; the cell after the check compares your formula with one.

# %% nbgrader={"grade": false, "grade_id": "eps_loss_floor", "locked": false, "schema_version": 3, "solution": true, "task": false}
def eps_loss_floor(t, schedule, cov):
    """The smallest expected L_simple at each t for data N(mu, cov); shape (batch,), float64."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_eps_loss_floor", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
grading.check("eps_loss_floor", eps_loss_floor)

# %% [markdown]
# Your formula against a Monte Carlo estimate of $L_\text{simple}$ with the exact model, for `md.toy_mixture("gaussian")`
# 100,000 draws per $t$. Why is the floor near 1 at
# $t = 1$ and near 0 at $t = T$?

# %%
_, means, covs = md.toy_mixture("gaussian")
exact = md.GaussianDenoiser(means[0], covs[0], schedule)
g = torch.Generator().manual_seed(0)
for t_ in (1, 100, 300, 600, 1000):
    x0 = exact.sample_data(100_000, g, dtype=torch.float64)
    t_batch = torch.full((100_000,), t_)
    mc = md.epsilon_loss(exact, x0, schedule, t=t_batch, noise=torch.randn(x0.shape, generator=g, dtype=torch.float64))
    print(f"t = {t_:4d}: closed form {eps_loss_floor(torch.tensor([t_]), schedule, covs[0]).item():.3f}, "
          f"Monte Carlo {mc.item():.3f}")
