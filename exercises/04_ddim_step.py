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
# Implement the generalized step of notebook `04_non_markovian_forward` and its sampler, and answer four questions
# about them with functions (checked on numbers, on several schedules); the last asks for a quantity that no cell of
# the notebooks prints: derive it. Conventions as in exercise 01 (1-based time); `t` and `t_prev` are integer tensors
# of shape `(batch,)` with $0 \le t_\text{prev} < t$. The schedule is float64: `ddim_step` returns a tensor of `x_t`'s
# dtype (float32 or float64), the other tensors are float64. Do not call the minddim function of the same name (or a
# package function that computes the same thing): the check refuses such an answer, with no points.
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
# Points: `ddim_sigma` 1, `ddim_step` 1, `ddim_sample` 1, `eta_one_variances` 1, `gamma_weight` 1,
# `least_weighted_t` 1, `ddim_output_variance` 3.

# %%
import math

import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.betas[t] is beta_t, schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** $\sigma_t(\eta)$ for the step $t \to t_\text{prev}$ (notebook 04, section 3; DDIM eq. 16, written there
# for the step $\tau_i \to \tau_{i-1}$). One value per entry of `t`, float64 like the schedule.

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


# %% nbgrader={"grade": true, "grade_id": "check_ddim_step", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("ddim_step", ddim_step)

# %% [markdown]
# **3.** The sampler of notebook 05, section 1: from `x_T`, given at $\tau_S$, to $x_0$ with your `ddim_step` over
# the subsequence `timesteps`, the increasing tensor $\tau_1 < \dots < \tau_S$. Call the model with `t` of shape
# `(batch,)`. For the noise, draw `torch.randn(x.shape, generator=generator, dtype=x.dtype)` once per step, in the
# order of the steps (the check compares with a seeded generator).

# %% nbgrader={"grade": false, "grade_id": "ddim_sample", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ddim_sample(model, x_T, schedule, timesteps, eta, generator):
    """x_0 from x_T by the generalized DDIM sampler."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_ddim_sample", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("ddim_sample", ddim_sample)

# %% [markdown]
# **4.** When is DDIM's step with $\eta = 1$ DDPM's (notebook 04, section 3)? For each entry of `t` and `t_prev`,
# return the variance $\sigma^2$ of the step $t \to t_\text{prev}$ at $\eta = 1$ (from your `ddim_sigma`) and DDPM's
# posterior variance $\tilde\beta_t$, written out from `betas` and `alpha_bars` (DDPM eq. 7; notebook 02, section 2):
# the check's schedules have no `beta_tildes`. The check uses unit strides ($t_\text{prev} = t - 1$) on three
# schedules and longer strides; the cell after it compares the two.

# %% nbgrader={"grade": false, "grade_id": "eta_one_variances", "locked": false, "schema_version": 3, "solution": true, "task": false}
def eta_one_variances(schedule, t, t_prev):
    """(sigma^2 of the step t -> t_prev at eta = 1, tilde-beta_t), each of shape (batch,), float64."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_eta_one_variances", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("eta_one_variances", eta_one_variances)

# %%
t = torch.arange(1, schedule.T + 1)
sigma2, beta_tilde = eta_one_variances(schedule, t, t - 1)
gap = float((sigma2 - beta_tilde).abs().max())
print(f"unit strides: max over t of |sigma^2 - tilde-beta_t| < 1e-12: {gap < 1e-12}")
t = torch.tensor([100, 500, 1000])
sigma2, beta_tilde = eta_one_variances(schedule, t, t - 10)
print("stride 10, t = 100, 500, 1000: sigma^2 / tilde-beta_t =", [round(r, 2) for r in (sigma2 / beta_tilde).tolist()])


# %% [markdown]
# **5.** DDIM's Theorem 1 says $J_\sigma = L_\gamma + C$. Return the weight $\gamma_t$ for which this holds, for
# $t \ge 2$ (notebook 04, section 4, "Where the weights come from"), given $\sigma_t$ (one per entry of `t`, the step
# $t \to t-1$), as a float64 tensor.

# %% nbgrader={"grade": false, "grade_id": "gamma_weight", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gamma_weight(t, schedule, sigma):
    """Theorem 1's gamma_t for t >= 2 (shape (batch,)) given sigma_t (shape (batch,)), unit strides."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_gamma_weight", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("gamma_weight", gamma_weight)


# %% [markdown]
# **6.** DDPM eq. 12 writes each term of the bound as a weight times the eps error; notebook 03, section 1 plots that
# weight for the true bound. At which $t$ is it smallest, i.e. where does $L_\text{simple}$ give the most extra
# emphasis relative to the bound? Return it for any schedule (the check uses three); compute in the schedule's float64
# (neighbouring weights near the minimum are close).

# %% nbgrader={"grade": false, "grade_id": "least_weighted_t", "locked": false, "schema_version": 3, "solution": true, "task": false}
def least_weighted_t(schedule):
    """The t in 1..T (a Python int) at which the bound's per-step weight on the eps error is smallest."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_least_weighted_t", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("least_weighted_t", least_weighted_t)


# %% [markdown]
# **7.** How much of the data's spread does the sampler keep? Take 1-D data $x_0 \sim \mathcal N(m, \lambda)$ and the
# exact model $\epsilon^*(x_t, t) = \mathbb E[\epsilon\mid x_t]$ (`md.GaussianDenoiser(torch.tensor([m]),
# torch.tensor([[lam]]), schedule)`; notebook 05, Going further C: for Gaussian data it is affine in $x_t$). Run the
# sampler of question 3 from $x_T \sim \mathcal N(0, 1)$, given at $\tau_S$, over `timesteps` with this `eta`.
# Return the variance of its output $x_0$, exactly (a float): derive how one step of DDIM eq. 12 acts on the
# variance, then follow it along the walk. It does not depend on $m$. No cell of the notebooks prints it; the check
# compares with the exact value (relative tolerance $10^{-6}$), so a Monte Carlo estimate will not pass, but it is a
# good test of your formula (the cell after the check runs your `ddim_sample` with 100,000 draws). You may use
# your `ddim_sigma`.

# %% nbgrader={"grade": false, "grade_id": "ddim_output_variance", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ddim_output_variance(schedule, timesteps, eta, lam):
    """Var[x_0] of the sampler with the exact model for data N(m, lam) in 1-D and x_T ~ N(0, 1); a float."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_ddim_output_variance", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
grading.check("ddim_output_variance", ddim_output_variance)

# %% [markdown]
# The share of the data's variance $\lambda = 4$ that the sampler keeps, on the linear schedule with uniform steps.
# The model is exact, so what is missing is the sampler's own error. Which $\eta$ keeps more at $S = 10$, and how
# many steps does $\eta = 0$ need to keep 95%? Your `ddim_sample` with 100,000 draws stands beside the first row. At
# $\eta = 0$ your sampler is deterministic and affine in $x_T$, so its variance is the formula times the sample variance
# of the 100,000 drawn $x_T$ (not exactly 1): that product is printed beside it, and a correct sampler matches it.

# %%
lam = 4.0
rows = {f"S = {S}": [ddim_output_variance(schedule, md.timesteps(1000, S), eta, lam) / lam for eta in (0.0, 0.5, 1.0)]
        for S in (10, 20, 50, 100, 1000)}
print(md.table(rows, ["eta = 0", "eta = 0.5", "eta = 1"], digits=3, title="Var[x_0] / lambda, exact model, lambda = 4"))
gauss = md.GaussianDenoiser(torch.tensor([1.0]), torch.tensor([[lam]]), schedule)
g = torch.Generator().manual_seed(0)
for eta in (0.0, 1.0):
    x_T = torch.randn(100_000, 1, generator=g, dtype=torch.float64)
    x = ddim_sample(gauss, x_T, schedule, md.timesteps(1000, 10), eta, g)
    line = (f"S = 10, eta = {eta}: your sampler, 100,000 draws: {x.var().item() / lam:.3f} "
            f"(standard error {x.var().item() / lam * (2 / (x.numel() - 1)) ** 0.5:.3f})")
    if eta == 0.0:
        line += (f"; the formula times these x_T's sample variance ({x_T.var().item():.4f}): "
                 f"{rows['S = 10'][0] * x_T.var().item():.3f}")
    print(line)
