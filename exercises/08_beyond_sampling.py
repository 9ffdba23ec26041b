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
#     assignment: 08_beyond_sampling
# ---

# %% [markdown]
# # Exercise 08 · Beyond sampling: inpainting and the rate of the progressive code
#
# Implement three pieces of notebook `08_beyond_sampling`: the replacement step that turns an unconditional
# model into an inpainter, the rate of DDPM's progressive code from the terms of the bound, and one full step of
# inpainting (DDIM's step, then the replacement).
# Time is DDPM's, 1-based: `schedule.alpha_bars[t]` is $\bar\alpha_t$ (with $\bar\alpha_0 = 1$), and DDIM's
# $\alpha_t$ is DDPM's $\bar\alpha_t$. `t` and `t_prev` are integer tensors of shape `(batch,)` with
# $0 \le t_\text{prev} < t$.
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
# Points: `replace_known` 2, `progressive_rate` 2, `inpaint_step` 1.

# %%
import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.betas[t] is beta_t, schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** The replacement step of inpainting (notebook `08_beyond_sampling`, section 4; Song et al. 2021,
# app. I.2; Lugmayr et al. 2022, eq. 8). A mask $m$ marks the known pixels ($m = 1$) of an image $x_0$; the unknown
# ones ($m = 0$) are to be filled in. The reverse process has just taken a step from $t$ to $t_\text{prev}$ and
# reached $x'_{t_\text{prev}}$ (`x_prev`); use the given standard normal `noise` for the draw the step needs.
# `mask` is a bool or 0/1 tensor that broadcasts against `x0` (one `(1, 1, 28, 28)` mask may serve a whole batch of
# images): `torch.where(mask.bool(), a, b)` handles both. Return a tensor shaped like `x0`, in its dtype.

# %% nbgrader={"grade": false, "grade_id": "replace_known", "locked": false, "schema_version": 3, "solution": true, "task": false}
def replace_known(x_prev, x0, mask, t, t_prev, schedule, noise):
    """x_{t_prev} after the replacement: x_prev where mask is 0, the known pixels brought to time t_prev where it is 1."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_replace_known", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("replace_known", replace_known)

# %% [markdown]
# **2.** The rate $R_t$ of DDPM's progressive code: the codelength the receiver has received by the time it has
# $x_t$ (DDPM sec. 4.3, Algorithms 3-4, the terms of eq. 5; notebook `08_beyond_sampling`, section 1), for
# $t = 0, \dots, T$. `terms` holds $L_0, \dots, L_T$ along its last axis
# (index $k$ is $L_k$, as `md.vlb_terms` returns them), one row per image: shape `(batch, T + 1)`. Return
# $R_0, \dots, R_T$ in the same shape (and units). Notebook `08_beyond_sampling` plots $R_t$ against the
# distortion of $\hat x_0$ at $t$ (DDPM Fig. 5).

# %% nbgrader={"grade": false, "grade_id": "progressive_rate", "locked": false, "schema_version": 3, "solution": true, "task": false}
def progressive_rate(terms):
    """rate[..., t] = the codelength received once x_t is decoded, from the bound's terms L_0..L_T."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_progressive_rate", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("progressive_rate", progressive_rate)

# %% [markdown]
# **3.** One step of inpainting with an unconditional eps-model from $t$ to $t_\text{prev}$ (notebook
# `08_beyond_sampling`, section 4): the model's noise estimate on the whole of $x_t$, DDIM's step (DDIM
# eq. 12; `md.ddim_step(x_t, eps, t, t_prev, schedule, eta, noise)[0]`, your `ddim_step` of exercise 04) with `eta`
# and the step's standard normal `noise`, and your `replace_known` with its own standard normal draw `noise_known`.
#
# `md.inpaint` repeats this step from $\tau_S$ down to 0 (with $\eta = 1$ over all $T$ steps it is DDPM's sampler
# with replacement); RePaint (Lugmayr et al. 2022) also walks back up with the forward process now and then, so
# that the unknown pixels can adapt to the known ones. Notebook `08_beyond_sampling` compares both on MNIST.

# %% nbgrader={"grade": false, "grade_id": "inpaint_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def inpaint_step(model, x_t, x0, mask, t, t_prev, schedule, eta, noise, noise_known):
    """x_{t_prev}: one inpainting step from x_t."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_inpaint_step", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("inpaint_step", inpaint_step)
