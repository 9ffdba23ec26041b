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
# Implement four pieces of notebook `06_scores_and_langevin`: the score of an eps-model, one step of
# Langevin dynamics, DDIM's deterministic step written as Euler's method on the ODE of DDIM eq. 14, and
# Heun's second-order step on the same ODE; then derive how a Langevin chain's variance evolves, and measure the
# order of the two ODE steps.
# Time is DDPM's, 1-based: `schedule.alpha_bars[t]` is $\bar\alpha_t$, and DDIM's $\alpha_t$ is DDPM's
# $\bar\alpha_t$. `t` and `t_prev` are integer tensors of shape `(batch,)` with $0 \le t_\text{prev} < t$.
# Do not call the minddim function of the same name (or a package function that computes the same thing): the
# check refuses such an answer, with no points.
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
# Points: `score_from_eps` 1, `langevin_step` 1, `euler_step` 1, `heun_step` 2, `langevin_variance` 2,
# `ode_orders` 3.

# %%
import math

import numpy as np
import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.betas[t] is beta_t, schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** The score $\nabla_{x_t}\log q(x_t)$ of the noisy marginal, from a noise estimate `eps` of $x_t$ at time
# `t`: notebook `06_scores_and_langevin`, section 1, derives it (DDPM sec. 3.2 notes the link to Langevin dynamics). Return a tensor shaped
# like `eps`, in its dtype.

# %% nbgrader={"grade": false, "grade_id": "score_from_eps", "locked": false, "schema_version": 3, "solution": true, "task": false}
def score_from_eps(eps, t, schedule):
    """grad log q(x_t) from the noise estimate eps (shape (batch, ...)) at times t (shape (batch,))."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_score_from_eps", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("score_from_eps", score_from_eps)

# %% [markdown]
# **2.** One step of unadjusted Langevin dynamics (notebook `06_scores_and_langevin`, section 4; Song & Ermon 2019,
# eq. 4) with step size $\delta$ = `step_size` > 0 (a number) and the given standard normal `noise` $z$, where
# `score` is $\nabla_x \log p(x)$, already evaluated at $x$.

# %% nbgrader={"grade": false, "grade_id": "langevin_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def langevin_step(x, score, step_size, noise):
    """The next state of the chain after x (score, noise: tensors shaped like x; step_size: a number > 0)."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_langevin_step", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("langevin_step", langevin_step)

# %% [markdown]
# **3.** One Euler step of the probability-flow ODE in DDIM's variables $\bar x$ and $\sigma$ (DDIM eqs. 13-14;
# notebook `06_scores_and_langevin`, section 6), from $t$ down to $t_\text{prev}$ with `eps` evaluated at $x_t$. Return
# $x_{t_\text{prev}}$ ($\bar\alpha_0 = 1$), shaped like `x_t` and in its dtype. It
# should agree with DDIM's step with $\eta = 0$ (your `ddim_step` of exercise 04).

# %% nbgrader={"grade": false, "grade_id": "euler_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def euler_step(x_t, eps, t, t_prev, schedule):
    """x_{t_prev} by one Euler step of DDIM eq. 14 (in x-bar and sigma)."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_euler_step", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("euler_step", euler_step)

# %% [markdown]
# **4.** Heun's second-order step on the same ODE (Karras et al. 2022, Algorithm 1; notebook
# `06_scores_and_langevin`, section 6), from $t$ to $t_\text{prev} \ge 1$, built from your `euler_step` and two
# evaluations of `model(x, t)` (with `t` of shape `(batch,)`), returned shaped like `x_t` and in its dtype. (`md.heun`
# samples this way; it keeps the last step, to $t = 0$ where a network is not defined, an Euler step.)

# %% nbgrader={"grade": false, "grade_id": "heun_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def heun_step(model, x_t, t, t_prev, schedule):
    """x_{t_prev} by one Heun step of DDIM eq. 14."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_heun_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("heun_step", heun_step)


# %% [markdown]
# **5.** How fast does a Langevin chain forget its start, and where does it end? Run your step of question 2 on
# $\mathcal N(0, \lambda)$ in one dimension, whose score is $-x/\lambda$, with step size $\delta$ = `step_size`,
# $0 < \delta < 4\lambda$, from a start $x_0 \sim \mathcal N(0, v_0)$ drawn independently of the chain's noise.
# Derive $\operatorname{Var}(x_k)$ after $k \ge 0$ steps in closed form and return it (a float). Notebook 06 states
# only where the chain ends (Going further B and E); here you need the whole path. (Check your formula against your
# `langevin_step`: many chains, a few values of $k$, the sample variance against yours, within its standard error.)

# %% nbgrader={"grade": false, "grade_id": "langevin_variance", "locked": false, "schema_version": 3, "solution": true, "task": false}
def langevin_variance(lam, step_size, k, v0):
    """Var(x_k) for the Langevin chain on N(0, lam) with step size step_size, started from N(0, v0)."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_langevin_variance", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("langevin_variance", langevin_variance)

# %% [markdown]
# **6.** Measure the order of an ODE step. `step` is a function with `heun_step`'s signature,
# `step(model, x_t, t, t_prev, schedule)` $\to x_{t_\text{prev}}$ (the check passes Heun's step and Euler's). For
# each $S$ in `Ss`: start from `x_T` (shape `(batch, d)`) at $t = T$, walk the trailing grid
# $\tau_i = iT/S$ ($i = S, \dots, 1$; `md.timesteps(T, S, "trailing")`) down to $\tau_1$ with `step`, then take one
# Euler step with your `euler_step` (with `model` evaluated at $\tau_1$) from $\tau_1$ to $0$, as `md.heun` does.
# `t_mid` is on every grid. The error at $t$ is the RMS distance to the exact solution of DDIM's ODE (eq. 14) from
# `x_T` at $T$ down to $t$, the square root of the mean over the rows of the squared Euclidean distance; `model` is
# the exact model of Gaussian data (`md.GaussianDenoiser`), whose exact solution notebook 06 gives in closed form
# (Going further E). Return the two log-log slopes `(slope at t_mid, slope at 0)`, floats: each the least-squares
# slope of $\ln(\text{error})$ against $\ln S$ (`np.polyfit`); the check accepts each within 0.01.
#
# Then run it with your `heun_step`, and with your Euler step
# (`lambda model, x, t, t_prev, schedule: euler_step(x, model(x, t), t, t_prev, schedule)`), on
# `md.GaussianDenoiser(torch.tensor([0.5, -0.5]), torch.tensor([[1.0, 0.6], [0.6, 0.8]]), schedule)` from 40 points
# $x_T \sim \mathcal N(0, I)$, `t_mid = 100` and `Ss = (10, 20, 50, 100)`. Which of the four slopes is near $-2$,
# which near $-1$? Notebook 06 (section 6) measures these orders against evaluations, on its mixture, and traces
# Heun's loss of order to $t = 0$ to its last (Euler) step, whose error is of the order of $\sigma(\tau_1)^2$. Test
# that on your numbers (unchecked): the slope of $\sigma(\tau_1)^2$ against $S$ over the same `Ss` (steeper than $-1$:
# for $\tau_1$ of 10 to 100 steps, $1 - \bar\alpha_{\tau_1}$ still grows about like $\tau_1^2$, since $\beta_t$ rises
# linearly from $\beta_1 = 10^{-4}$), and Heun's slope to 0 when its last step is a trapezoid too, with $\epsilon = 0$
# at $\sigma = 0$ (the exact model's `eps_at(x, 1.0)`). Heun's slope to 0 need not equal the first: at small $S$ the
# last step's error and the error Heun carries to $\tau_1$ partly cancel, so to see the last step's share alone, start
# that step from the exact solution at $\tau_1$.

# %% nbgrader={"grade": false, "grade_id": "ode_orders", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ode_orders(step, model, x_T, schedule, Ss, t_mid):
    """(slope at t_mid, slope at 0) of log(RMS error) against log(S) for the sampler built from `step`."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_ode_orders", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
grading.check("ode_orders", ode_orders)
