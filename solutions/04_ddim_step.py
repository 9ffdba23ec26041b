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
#     assignment: 04_ddim_step
# ---

# %% [markdown]
# # Exercise 04 · DDIM's sigma, step and sampler
#
# Implement the generalized step of notebook `04_non_markovian_forward`. Remember: DDIM's $\alpha_t$ is
# DDPM's $\bar\alpha_t$ (`schedule.alpha_bars`). `t` and `t_prev` are integer tensors of shape `(batch,)`
# with $0 \le t_\text{prev} < t$.
#
# **How to work through it.** Run the first code cell (the imports), then take one question at a time: write
# your code in place of `raise NotImplementedError(...)`, run that cell (Shift+Enter), then run the check cell
# under it, which answers in one line: `PASS ...`, or `FAIL ...` with what was expected, what came back and a
# hint. *Run All* stops at the first check that fails (an untouched question says "not implemented yet"), so
# the questions after it are left unrun: that is expected, not a crash. Run each question's cells yourself.
#
# Points: `ddim_sigma` 1, `ddim_step` 2, `ddim_sample` 2.

# %%
import math

import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.betas[t] is beta_t, schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** DDIM eq. 16: $\sigma(\eta) = \eta\sqrt{\frac{1-\bar\alpha_{t_\text{prev}}}{1-\bar\alpha_t}}\sqrt{1-\frac{\bar\alpha_t}{\bar\alpha_{t_\text{prev}}}}$, one value per entry of `t` (float64, like the schedule).

# %% nbgrader={"grade": false, "grade_id": "ddim_sigma", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ddim_sigma(schedule, t, t_prev, eta):
    """sigma for the step t -> t_prev, shape (batch,)."""
    ### BEGIN SOLUTION
    ab, ab_prev = schedule.alpha_bars[t], schedule.alpha_bars[t_prev]
    return eta * ((1 - ab_prev) / (1 - ab)).sqrt() * (1 - ab / ab_prev).sqrt()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_ddim_sigma", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("ddim_sigma", ddim_sigma)

# %% [markdown]
# **2.** DDIM eq. 12 with the given noise: $x_{t_\text{prev}} = \sqrt{\bar\alpha_{t_\text{prev}}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t_\text{prev}}-\sigma^2}\,\epsilon + \sigma\,\text{noise}$,
# where $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon)/\sqrt{\bar\alpha_t}$. You may use your `ddim_sigma`.

# %% nbgrader={"grade": false, "grade_id": "ddim_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ddim_step(x_t, eps, t, t_prev, schedule, eta, noise):
    """One DDIM step from t to t_prev; returns x_{t_prev}."""
    ### BEGIN SOLUTION
    shape = (-1, *[1] * (x_t.dim() - 1))
    ab = schedule.alpha_bars[t].to(x_t.dtype).view(shape)
    ab_prev = schedule.alpha_bars[t_prev].to(x_t.dtype).view(shape)
    sigma = ddim_sigma(schedule, t, t_prev, eta).to(x_t.dtype).view(shape)
    x0_hat = (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
    return ab_prev.sqrt() * x0_hat + (1 - ab_prev - sigma**2).sqrt() * eps + sigma * noise
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_ddim_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("ddim_step", ddim_step)

# %% [markdown]
# **3.** The sampler: walk $\tau_S \to \dots \to \tau_1 \to 0$ with your `ddim_step`. `timesteps` is the
# increasing tensor $\tau_1 < \dots < \tau_S$. Call the model with `t` of shape `(batch,)`. For the noise,
# draw `torch.randn(x.shape, generator=generator, dtype=x.dtype)` at every step, in that order (the
# check compares with a seeded generator).

# %% nbgrader={"grade": false, "grade_id": "ddim_sample", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ddim_sample(model, x_T, schedule, timesteps, eta, generator):
    """x_0 from x_T by the generalized DDIM sampler."""
    ### BEGIN SOLUTION
    walk = timesteps.tolist()[::-1] + [0]
    x = x_T
    with torch.no_grad():
        for t, t_prev in zip(walk[:-1], walk[1:]):
            tb = torch.full((x.shape[0],), t)
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            x = ddim_step(x, model(x, tb), tb, torch.full_like(tb, t_prev), schedule, eta, noise)
    return x
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_ddim_sample", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("ddim_sample", ddim_sample)
