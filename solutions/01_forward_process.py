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
#     assignment: 01_forward_process
# ---

# %% [markdown]
# # Exercise 01 · The forward process
#
# Implement three functions from notebook `01_forward_process` (questions 1-3, warm-ups), then derive and compute
# something the notebook does not print (question 4). Each check cell compares your function with the answer key on
# random inputs and edge cases (for a step: $t = 1$, $t = T$, batch size 1, float64, image-shaped $x$) and answers in
# one line.
# Conventions: time is **1-based** (`schedule.betas[t]` is $\beta_t$, `schedule.alpha_bars[t]` is $\bar\alpha_t$,
# index 0 is $t = 0$); `t` is an integer tensor of shape `(batch,)`, one time per row of `x`. Do not call the minddim
# function of the same name (or a package function that computes the same thing): the check refuses such an answer,
# with no points.
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
# Points: `alpha_bars` 1, `q_sample` 1, `q_step` 1, `decorrelation_time` 3.

# %%
import math

import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.betas[t] is beta_t, schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** $\bar\alpha_t$ for every $t = 0..T$ (notebook 01, section 2; DDPM's definition above eq. 4), from
# `betas` of shape `(T+1,)` (the layout of `schedule.betas`).

# %% nbgrader={"grade": false, "grade_id": "alpha_bars", "locked": false, "schema_version": 3, "solution": true, "task": false}
def alpha_bars(betas):
    """alpha-bar_t for t = 0..T, shape (T+1,); betas has shape (T+1,) with betas[0] = 0."""
    ### BEGIN SOLUTION
    return torch.cumprod(1 - betas, dim=0)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_alpha_bars", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("alpha_bars", alpha_bars)

# %% [markdown]
# **2.** A draw from $q(x_t\mid x_0)$ with the given noise (notebook 01, section 2; DDPM eq. 4), for `x0` of any
# shape `(batch, ...)`.

# %% nbgrader={"grade": false, "grade_id": "q_sample", "locked": false, "schema_version": 3, "solution": true, "task": false}
def q_sample(x0, t, schedule, noise):
    """x_t drawn from q(x_t | x0) with this noise; t has shape (batch,). Return x0's dtype."""
    ### BEGIN SOLUTION
    ab = schedule.alpha_bars[t].to(x0.dtype).view(-1, *[1] * (x0.dim() - 1))
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_q_sample", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("q_sample", q_sample)

# %% [markdown]
# **3.** One Markov step $q(x_t\mid x_{t-1})$ with the given noise (notebook 01, section 1; DDPM eq. 2).

# %% nbgrader={"grade": false, "grade_id": "q_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def q_step(x_prev, t, schedule, noise):
    """x_t drawn from q(x_t | x_{t-1} = x_prev) with this noise; t has shape (batch,). Return x_prev's dtype."""
    ### BEGIN SOLUTION
    beta = schedule.betas[t].to(x_prev.dtype).view(-1, *[1] * (x_prev.dim() - 1))
    return (1 - beta).sqrt() * x_prev + beta.sqrt() * noise
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_q_step", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("q_step", q_step)

# %% [markdown]
# **4. When does $x_t$ stop resembling $x_0$?** Take one coordinate of the data, with variance `var` (any mean), and
# noise it with the forward process. The correlation between $x_0$ and $x_t$ (over the data and the noise) starts at 1
# and falls towards 0 as $t$ grows. Derive it as a function of $\bar\alpha_t$ and `var` from the closed form
# $q(x_t\mid x_0)$ (notebook 01, section 2; DDPM eq. 4): no cell of the notebook prints it. Then return the **first**
# $t$ in $1..T$ at which the correlation is below `level`, as an `int`, or `None` if it stays at or above `level`
# up to $t = T$. Then try it: on the linear schedule, for `level = 0.5`, is $x_t$ still recognizable later for data
# of variance 4 or of variance 0.25, and why?

# %% nbgrader={"grade": false, "grade_id": "decorrelation_time", "locked": false, "schema_version": 3, "solution": true, "task": false}
def decorrelation_time(schedule, var, level):
    """The first t in 1..T with corr(x_0, x_t) < level for data of variance var (an int), or None if none."""
    ### BEGIN SOLUTION
    # Cov(x_0, x_t) = sqrt(ab) var and Var x_t = ab var + (1 - ab), so corr^2 = ab var / (ab var + 1 - ab)
    ab = schedule.alpha_bars
    corr = (ab * var / (ab * var + 1 - ab)).sqrt()
    for t in range(1, schedule.T + 1):
        if corr[t] < level:
            return t
    return None
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_decorrelation_time", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
grading.check("decorrelation_time", decorrelation_time)
