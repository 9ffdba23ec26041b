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
#     assignment: 06_scores_and_ode
# ---

# %% [markdown]
# # Exercise 06 · Scores, Langevin dynamics and the probability-flow ODE
#
# Implement four pieces of notebook `08_scores_and_langevin`: the score of an eps-model, one step of
# Langevin dynamics, DDIM's deterministic step written as Euler's method on the ODE of DDIM eq. 14, and
# Heun's second-order step on the same ODE.
# Time is DDPM's, 1-based: `schedule.alpha_bars[t]` is $\bar\alpha_t$, and DDIM's $\alpha_t$ is DDPM's
# $\bar\alpha_t$. `t` and `t_prev` are integer tensors of shape `(batch,)` with $0 \le t_\text{prev} < t$.
#
# **How to work through it.** Run the first code cell (the imports), then take one question at a time: write
# your code in place of `raise NotImplementedError(...)`, run that cell (Shift+Enter), then run the check cell
# under it, which answers in one line: `PASS ...`, or `FAIL ...` with what was expected, what came back and a
# hint. *Run All* stops at the first check that fails (an untouched question says "not implemented yet"), so
# the questions after it are left unrun: that is expected, not a crash. Run each question's cells yourself.
# Stuck after a failed check? `grading.hint("name")` gives a hint, a more precise one each time you ask: what
# the quantity means, where the notebook derives it, then which known mistake your last answer matched.
#
# Points: `score_from_eps` 1, `langevin_step` 1, `euler_step` 2, `heun_step` 2.

# %%
import math

import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.betas[t] is beta_t, schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** The score of the noisy marginal from the noise estimate (DDPM sec. 3.2): for
# $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ and $\epsilon = \mathbb{E}[\epsilon \mid x_t]$,
# $$\nabla_{x_t}\log q_t(x_t) = -\frac{\epsilon}{\sqrt{1-\bar\alpha_t}}.$$
# Return a tensor shaped like `eps`, in its dtype.

# %% nbgrader={"grade": false, "grade_id": "score_from_eps", "locked": false, "schema_version": 3, "solution": true, "task": false}
def score_from_eps(eps, t, schedule):
    """grad log q_t(x_t) = -eps / sqrt(1 - alpha-bar_t), for eps of shape (batch, ...) and t of shape (batch,)."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_score_from_eps", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("score_from_eps", score_from_eps)

# %% [markdown]
# **2.** One step of (unadjusted) Langevin dynamics with step size $\delta > 0$ (a number) and the given
# standard normal `noise` $z$ (Song & Ermon 2019, eq. 4):
# $$x' = x + \frac{\delta}{2}\,\nabla_x \log p(x) + \sqrt{\delta}\,z,$$
# where `score` is $\nabla_x \log p(x)$, already evaluated at $x$.

# %% nbgrader={"grade": false, "grade_id": "langevin_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def langevin_step(x, score, step_size, noise):
    """x + step_size / 2 * score + sqrt(step_size) * noise."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_langevin_step", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("langevin_step", langevin_step)

# %% [markdown]
# **3.** The probability-flow ODE in DDIM's variables (DDIM eq. 14, with its $\alpha$ written as our $\bar\alpha$):
# $$\bar x = \frac{x}{\sqrt{\bar\alpha}}, \qquad \sigma = \sqrt{\frac{1-\bar\alpha}{\bar\alpha}}, \qquad
# \mathrm{d}\bar x = \epsilon\,\mathrm{d}\sigma.$$
# One Euler step from $t$ down to $t_\text{prev}$, with `eps` evaluated at $x_t$ (DDIM eq. 13):
# $\bar x_{t_\text{prev}} = \bar x_t + (\sigma_{t_\text{prev}} - \sigma_t)\,\epsilon$; return it in DDPM's variables,
# $x_{t_\text{prev}} = \sqrt{\bar\alpha_{t_\text{prev}}}\;\bar x_{t_\text{prev}}$ ($\bar\alpha_0 = 1$, so $\sigma_0 = 0$).
# This is DDIM's step with $\eta = 0$ (your `ddim_step` of exercise 04), written in other variables.

# %% nbgrader={"grade": false, "grade_id": "euler_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def euler_step(x_t, eps, t, t_prev, schedule):
    """x_{t_prev} by one Euler step of DDIM eq. 14 in x-bar = x / sqrt(alpha-bar), sigma = sqrt((1 - alpha-bar) / alpha-bar)."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_euler_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("euler_step", euler_step)

# %% [markdown]
# **4.** Heun's second-order step on the same ODE (Karras et al. 2022, Algorithm 1), from $t$ to
# $t_\text{prev} \ge 1$: the trapezoidal rule on $\mathrm{d}\bar x = \epsilon\,\mathrm{d}\sigma$. With your `euler_step`:
# 1. the predictor, the Euler step with $\epsilon_t$ = `model(x_t, t)`, reaches $x'$;
# 2. the slope there is $\epsilon'$ = `model(x', t_prev)`;
# 3. retake the Euler step from $x_t$ with the mean slope $(\epsilon_t + \epsilon')/2$.
#
# Each step costs two model evaluations instead of one, and the method is second order: over $S$ steps its error
# falls like $1/S^2$ where Euler's falls like $1/S$ (notebook `08_scores_and_langevin` measures both slopes).
# (`md.heun` samples this way; it keeps the last step, to $t = 0$ where a network is not defined, an Euler step.)

# %% nbgrader={"grade": false, "grade_id": "heun_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def heun_step(model, x_t, t, t_prev, schedule):
    """x_{t_prev} by one Heun step of DDIM eq. 14: Euler predictor, then the Euler step with the mean slope."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_heun_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("heun_step", heun_step)
