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
#     assignment: 05_subsequences_and_encoding
# ---

# %% [markdown]
# # Exercise 05 · Subsequences, interpolation and encoding
#
# Implement three tools of notebook `05_fast_sampling`, write down where the encoder goes as the number of steps
# grows, then measure how fast your encoder gets there. Time is DDPM's, 1-based: `schedule.alpha_bars[t]` is $\bar\alpha_t$, and DDIM's $\alpha_t$ is DDPM's
# $\bar\alpha_t$. Do not call the minddim function of the same name (or a package function that computes the same
# thing): the check refuses such an answer, with no points.
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
# Points: `uniform_timesteps` 1, `slerp` 1, `encode` 2, `exact_latent` 1, `encoder_convergence` 2.

# %%
import math

import numpy as np
import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.betas[t] is beta_t, schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** The package's `"uniform"` subsequence $\tau$ of $S$ times out of $T$ (notebook 05, section 1; DDIM app. D.2's
# "linear" spacing on sec. 4.2's subsequences, written so that it has exactly $S$ entries for every $S$), as a Python list of ints in the order `md.timesteps` returns it,
# for any $1 \le S \le T$.

# %% nbgrader={"grade": false, "grade_id": "uniform_timesteps", "locked": false, "schema_version": 3, "solution": true, "task": false}
def uniform_timesteps(T, S):
    """The uniform subsequence tau for S steps out of T, as a list of ints."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_uniform_timesteps", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("uniform_timesteps", uniform_timesteps)

# %% [markdown]
# **2.** Spherical linear interpolation for a number `w` in $[0, 1]$, per sample: the angle is measured between
# `z0[i]` and `z1[i]` flattened (notebook 05, section 3, "Interpolation"; DDIM sec. 5.3 and app. D.5, eq. 67).

# %% nbgrader={"grade": false, "grade_id": "slerp", "locked": false, "schema_version": 3, "solution": true, "task": false}
def slerp(z0, z1, w):
    """Spherical interpolation between z0 and z1 (same shape), w a number in [0, 1]."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_slerp", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("slerp", slerp)

# %% [markdown]
# **3.** Deterministic encoding $x_0 \to x_{\tau_S}$ along $0 \to \tau_1 \to \dots \to \tau_S$ (notebook 05, section 3,
# "Encoding data into $x_T$ and back"; DDIM sec. 4.3 and eq. 13). One convention the check needs: each step
# evaluates the model where it starts, at $t_\text{prev}$ (on the first step, from $t_\text{prev} = 0$, at $\tau_1$).

# %% nbgrader={"grade": false, "grade_id": "encode", "locked": false, "schema_version": 3, "solution": true, "task": false}
def encode(model, x0, schedule, timesteps):
    """x_{tau_S} from x_0 by the deterministic DDIM step run forwards."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_encode", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("encode", encode)


# %% [markdown]
# **4.** Where does your `encode` go as $S$ grows? Take data with independent coordinates,
# $x_0 \sim \mathcal N(m, \operatorname{diag}(v))$, and its exact model (the Bayes-optimal $\mathbb E[\epsilon \mid x_t]$,
# `md.GaussianDenoiser`, no training error). As $S \to \infty$ the deterministic encoder solves DDIM's ODE (eq. 14)
# from $0$ up to $t$ (DDIM sec. 4.3). Return the point $x_t$ that this ODE carries each row of `x0` to, in closed form
# (no ODE solver, no loop over time), in `x0`'s dtype: `x0` has shape `(batch, d)`, `mean` and
# `var` shape `(d,)`, `t` shape `(batch,)` with $0 \le t \le T$. The ODE is Song et al.'s probability-flow ODE (DDIM
# Proposition 1), which keeps the marginals $q(x_t)$ (notebook 06, section 6), and the exact model of Gaussian data
# is affine in $x_t$; notebook 06, Going further E, writes this flow map.

# %% nbgrader={"grade": false, "grade_id": "exact_latent", "locked": false, "schema_version": 3, "solution": true, "task": false}
def exact_latent(x0, t, mean, var, schedule):
    """x_t reached from x_0 by DDIM's ODE with the exact model of N(mean, diag(var)) data."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_exact_latent", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("exact_latent", exact_latent)


# %% [markdown]
# **5.** How fast does an encoder meet that point? `encode` is a function with your `encode`'s signature (the check
# passes DDIM's encoder and another one). For each $S$ in `Ss`, encode the rows of `x0` (shape `(batch, d)`, drawn from
# $\mathcal N(m, \operatorname{diag}(v))$) with the exact model `md.GaussianDenoiser(mean, torch.diag(var), schedule)`
# on the uniform grid `md.timesteps(schedule.T, S)`. Its error is the RMS distance to your `exact_latent` at the time
# where the encoder stops: the square root of the mean over the rows of the squared Euclidean distance. Return
# `(errors, slope)`: the errors, a tuple of floats, one per $S$, and the least-squares slope of $\ln(\text{error})$
# against $\ln S$ (`np.polyfit`), a float; the check accepts each within a relative $10^{-4}$.
#
# Then run it with your `encode` on `mean = torch.tensor([0.5, -1.0], dtype=torch.float64)`,
# `var = torch.tensor([0.3, 2.0], dtype=torch.float64)`, 40 points $x_0 \sim \mathcal N(m, \operatorname{diag}(v))$ and
# `Ss = (10, 20, 50, 100, 200)`. Is the encoder first order? Which $S$ first brings it within 0.05 of the ODE's point,
# and about how many steps would 0.01 take? No notebook prints these numbers.

# %% nbgrader={"grade": false, "grade_id": "encoder_convergence", "locked": false, "schema_version": 3, "solution": true, "task": false}
def encoder_convergence(encode, x0, mean, var, schedule, Ss):
    """(errors, slope): the RMS distance of encode's x_{tau_S} to the exact latent, for each S, and its log-log slope."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_encoder_convergence", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("encoder_convergence", encoder_convergence)
