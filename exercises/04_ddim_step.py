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
# Implement the generalized step of notebook `04_non_markovian_forward` and answer three questions about it
# with functions (checked on numbers, on several schedules). Remember: DDIM's $\alpha_t$ is
# DDPM's $\bar\alpha_t$ (`schedule.alpha_bars`). `t` and `t_prev` are integer tensors of shape `(batch,)`
# with $0 \le t_\text{prev} < t$.
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
# Points: `ddim_sigma` 1, `ddim_step` 2, `ddim_sample` 2, `eta_one_variances` 1, `gamma_weight` 2,
# `least_weighted_t` 1.

# %%
import math

import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.betas[t] is beta_t, schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** $\sigma(\eta)$ for the step $t \to t_\text{prev}$, from your own derivation (notebook 04, section 3; DDIM
# eq. 16: $\eta = 1$ gives the posterior variance of the Markov chain that jumps $t \to t_\text{prev}$, DDPM's eq. 7
# when $t_\text{prev} = t - 1$; $\eta = 0$ makes the step deterministic). One value per entry of `t`, float64 like the schedule.

# %% nbgrader={"grade": false, "grade_id": "ddim_sigma", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ddim_sigma(schedule, t, t_prev, eta):
    """sigma for the step t -> t_prev, shape (batch,)."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_ddim_sigma", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("ddim_sigma", ddim_sigma)

# %% [markdown]
# **2.** One generalized step from $t$ to $t_\text{prev}$ with the given noise (notebook 04, section 3; DDIM eq. 12).
# You may use your `ddim_sigma`.

# %% nbgrader={"grade": false, "grade_id": "ddim_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ddim_step(x_t, eps, t, t_prev, schedule, eta, noise):
    """One DDIM step from t to t_prev; returns x_{t_prev}."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


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
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_ddim_sample", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("ddim_sample", ddim_sample)

# %% [markdown]
# **4.** Show that $\eta = 1$ with unit strides is DDPM: return, for $t = 1..T$, $\sigma_t^2$ from your `ddim_sigma`
# ($\eta = 1$, $t_\text{prev} = t - 1$) and DDPM's posterior variance $\tilde\beta_t$ written out from `betas` and
# `alpha_bars` (DDPM eq. 7; notebook 02, section 2), not read from `schedule.beta_tildes`. The check compares
# both with the package on three schedules; the cell after the check prints whether their largest difference
# is below $10^{-12}$.

# %% nbgrader={"grade": false, "grade_id": "eta_one_variances", "locked": false, "schema_version": 3, "solution": true, "task": false}
def eta_one_variances(schedule):
    """(sigma_t^2 at eta = 1 and t_prev = t - 1, tilde-beta_t), each of shape (T,) for t = 1..T."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_eta_one_variances", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("eta_one_variances", eta_one_variances)

# %%
sigma2, beta_tilde = eta_one_variances(schedule)
gap = float((sigma2 - beta_tilde).abs().max())
print(f"max over t of |sigma_t(1)^2 - tilde-beta_t| < 1e-12: {gap < 1e-12}")


# %% [markdown]
# **5.** DDIM's Theorem 1 says $J_\sigma = L_\gamma + C$. Return the weight $\gamma_t$ for $t \ge 2$ that makes each
# step's KL exactly $\gamma_t\|\epsilon - \epsilon_\theta\|^2$, for given $\sigma_t$ (one per entry of `t`, the step
# $t \to t-1$). Derive it as notebook 04 does in section 4 ("Where the weights come from"): the
# notebook checks it numerically, and at $\sigma_t^2 = \tilde\beta_t$ it must be DDPM eq. 12's weight.

# %% nbgrader={"grade": false, "grade_id": "gamma_weight", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gamma_weight(t, schedule, sigma):
    """Theorem 1's gamma_t for t >= 2 (shape (batch,)) given sigma_t (shape (batch,)), unit strides."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_gamma_weight", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("gamma_weight", gamma_weight)


# %% [markdown]
# **6.** DDPM eq. 12 writes each term of the bound as a weight times the eps error (notebook 03, section 1). With
# $\sigma_t^2 = \beta_t$, at which $t$ is that weight smallest, i.e. where does $L_\text{simple}$ give the most
# extra emphasis relative to the bound? Return it for any schedule (the check uses three); compute in the
# schedule's float64 (near the minimum neighbouring weights differ in their fifth or sixth
# significant digit).

# %% nbgrader={"grade": false, "grade_id": "least_weighted_t", "locked": false, "schema_version": 3, "solution": true, "task": false}
def least_weighted_t(schedule):
    """The t in 1..T (a Python int) at which the bound's per-step weight on the eps error is smallest."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_least_weighted_t", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("least_weighted_t", least_weighted_t)
