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
# Implement three tools of notebook `05_fast_sampling`, then derive where the encoder goes as the number of steps
# grows. Time is DDPM's, 1-based: `schedule.alpha_bars[t]` is $\bar\alpha_t$, and DDIM's $\alpha_t$ is DDPM's
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
# Points: `uniform_timesteps` 1, `slerp` 1, `encode` 2, `exact_latent` 3.

# %%
import math

import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.betas[t] is beta_t, schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** The package's `"uniform"` subsequence $\tau_1 < \dots < \tau_S$ of $1..T$ (notebook 05, section 1; DDIM
# app. D.2, its "linear" choice, on sec. 4.2's subsequences), as a Python list of ints, for any $1 \le S \le T$.

# %% nbgrader={"grade": false, "grade_id": "uniform_timesteps", "locked": false, "schema_version": 3, "solution": true, "task": false}
def uniform_timesteps(T, S):
    """[tau_1, ..., tau_S], increasing, in 1..T."""
    ### BEGIN SOLUTION
    return [(i * T) // S + 1 for i in range(S)]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_uniform_timesteps", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("uniform_timesteps", uniform_timesteps)

# %% [markdown]
# **2.** Spherical linear interpolation for a number `w` in $[0, 1]$, per sample: the angle is measured between
# `z0[i]` and `z1[i]` flattened (notebook 05, section 3, "Interpolation"; DDIM sec. 5.3 and app. D.5, eq. 67).

# %% nbgrader={"grade": false, "grade_id": "slerp", "locked": false, "schema_version": 3, "solution": true, "task": false}
def slerp(z0, z1, w):
    """Spherical interpolation between z0 and z1 (same shape), w a number in [0, 1]."""
    ### BEGIN SOLUTION
    a, b = z0.reshape(z0.shape[0], -1), z1.reshape(z1.shape[0], -1)
    theta = torch.arccos(((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).clamp(-1, 1))[:, None]
    out = (torch.sin((1 - w) * theta) * a + torch.sin(w * theta) * b) / torch.sin(theta)
    return out.reshape(z0.shape)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_slerp", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("slerp", slerp)

# %% [markdown]
# **3.** Deterministic encoding $x_0 \to x_{\tau_S}$ along $0 \to \tau_1 \to \dots \to \tau_S$ (notebook 05, section 3,
# "Encoding data into $x_T$ and back"; DDIM sec. 4.3 and eq. 13). One convention the check needs: each step
# evaluates the model where it starts, at $t_\text{prev}$ (on the first step, from $t_\text{prev} = 0$, at $\tau_1$).

# %% nbgrader={"grade": false, "grade_id": "encode", "locked": false, "schema_version": 3, "solution": true, "task": false}
def encode(model, x0, schedule, timesteps):
    """x_{tau_S} from x_0 by the deterministic DDIM step run forwards."""
    ### BEGIN SOLUTION
    tau = timesteps.tolist()
    ab = schedule.alpha_bars
    x = x0
    with torch.no_grad():
        for t_prev, t in zip([0] + tau[:-1], tau):
            t_eval = t_prev if t_prev > 0 else tau[0]
            eps = model(x, torch.full((x.shape[0],), t_eval))
            x0_hat = (x - (1 - ab[t_prev]).sqrt() * eps) / ab[t_prev].sqrt()
            x = ab[t].sqrt() * x0_hat + (1 - ab[t]).sqrt() * eps
    return x
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_encode", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("encode", encode)


# %% [markdown]
# **4.** Where does your `encode` go as $S$ grows? Take data with independent coordinates,
# $x_0 \sim \mathcal N(m, \operatorname{diag}(v))$, and its exact model (the Bayes-optimal $\mathbb E[\epsilon \mid x_t]$,
# `md.GaussianDenoiser`, no training error). As $S \to \infty$ the deterministic encoder solves DDIM's ODE (eq. 14)
# from $0$ up to $t$ (DDIM sec. 4.3). Derive the point $x_t$ that this ODE carries a data point $x_0$ to, in closed
# form, and return it for every row of `x0` (shape `(batch, d)`; `mean` and `var` have shape `(d,)`; `t` has shape
# `(batch,)`, $0 \le t \le T$). No ODE solver and no loop over time: a formula. (Compare it with your `encode` on
# `md.GaussianDenoiser(mean, torch.diag(var), schedule)` for growing $S$, at $t = \tau_S$: how fast do they meet?)

# %% nbgrader={"grade": false, "grade_id": "exact_latent", "locked": false, "schema_version": 3, "solution": true, "task": false}
def exact_latent(x0, t, mean, var, schedule):
    """x_t reached from x_0 by DDIM's ODE with the exact model of N(mean, diag(var)) data, in DDPM's variables."""
    ### BEGIN SOLUTION
    # The exact eps-model of Gaussian data is affine in x_t, so the ODE's flow is affine; it keeps the marginals
    # (DDIM Prop. 1): N(m, v) goes to q(x_t) = N(sqrt(ab) m, ab v + 1 - ab), per coordinate; and a flow in one
    # dimension cannot reorder points, so the map is increasing. The one increasing affine map between the two
    # Gaussians scales the offset from the mean by the ratio of their standard deviations.
    alpha_bar = schedule.alpha_bars[t].to(x0.dtype).view(-1, *[1] * (x0.dim() - 1))
    gain = ((alpha_bar * var + 1 - alpha_bar) / var).sqrt()
    return alpha_bar.sqrt() * mean + gain * (x0 - mean)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_exact_latent", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
grading.check("exact_latent", exact_latent)
