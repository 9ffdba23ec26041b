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
# **Where to work.** Here, in `exercises/`, saving as you go. Regenerating the exercises (`python -m minddim
# exercises`) never replaces a notebook you have changed: it keeps it and says so, and `make test` does not ask you
# to regenerate it. To start an exercise afresh, delete its two files (`.ipynb` and `.py`) and run
# `python -m minddim exercises`.
#
# Points: `score_from_eps` 1, `langevin_step` 1, `euler_step` 2, `heun_step` 2.

# %%
import math

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
# **3.** One Euler step of the probability-flow ODE in DDIM's variables $\bar x$ and $\sigma$ (DDIM eqs. 13-14, with
# its $\alpha$ written as our $\bar\alpha$; notebook `06_scores_and_langevin`, section 6), from $t$ down to
# $t_\text{prev}$ with `eps` evaluated at $x_t$. Return the result in DDPM's variables, $x_{t_\text{prev}}$
# ($\bar\alpha_0 = 1$). It should agree with DDIM's step with $\eta = 0$ (your `ddim_step` of exercise 04).

# %% nbgrader={"grade": false, "grade_id": "euler_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def euler_step(x_t, eps, t, t_prev, schedule):
    """x_{t_prev} by one Euler step of DDIM eq. 14 (in x-bar and sigma), returned in DDPM's variables."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_euler_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("euler_step", euler_step)

# %% [markdown]
# **4.** Heun's second-order step on the same ODE (Karras et al. 2022, Algorithm 1; notebook
# `06_scores_and_langevin`, section 6), from $t$ to $t_\text{prev} \ge 1$, built from your `euler_step` and two
# evaluations of `model(x, t)` (with `t` of shape `(batch,)`). Over $S$ steps its error at an intermediate time
# falls about like $1/S^2$ where Euler's falls like $1/S$ (notebook 06 measures both slopes, and a shallower one for
# the whole walk to $t = 0$). (`md.heun` samples this way; it keeps the last step,
# to $t = 0$ where a network is not defined, an Euler step.)

# %% nbgrader={"grade": false, "grade_id": "heun_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def heun_step(model, x_t, t, t_prev, schedule):
    """x_{t_prev} by one Heun step of DDIM eq. 14."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_heun_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("heun_step", heun_step)
