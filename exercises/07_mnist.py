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
#     assignment: 07_mnist
# ---

# %% [markdown]
# # Exercise 07 · The U-Net's time embedding and the FID
#
# Implement two pieces of notebook `07_mnist`: the sinusoidal time embedding that tells `md.UNet` the time $t$
# (section 2), and the Frechet distance between two Gaussians, the formula behind the MNIST FID (section 3). Then
# derive what no cell of the notebook prints: the FID a *perfect* model still scores because both Gaussians are
# fitted to finitely many samples, in closed form (the notebook's band of real digits measures such a floor; it
# does not derive it). No question needs MNIST or a network: the inputs are small random
# tensors, and every check runs in well under a second.
# Time is DDPM's, 1-based: $t = 1, \dots, T$, with $t = 0$ the data. Do not call the minddim function of the same
# name (or a package function that computes the same thing): the check refuses such an answer, with no points.
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
# Points: `timestep_embedding` 1, `frechet_distance` 1, `fid_bias` 3.

# %%
import math

import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** The sinusoidal embedding of the time $t$ (notebook `07_mnist`, section 2; DDPM appendix B), laid out exactly
# as `md.UNet` feeds it to its time MLP: the docstring of the package's function (`help(md.timestep_embedding)`)
# states the layout, column by column, for any `dim` (the notebook's formula gives the frequencies, not the layout). `t` is an integer tensor of shape `(batch,)`; return shape
# `(batch, dim)` in float32.

# %% nbgrader={"grade": false, "grade_id": "timestep_embedding", "locked": false, "schema_version": 3, "solution": true, "task": false}
def timestep_embedding(t, dim):
    """The sinusoidal embedding of the integer times t (shape (batch,)): shape (batch, dim), float32."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_timestep_embedding", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("timestep_embedding", timestep_embedding)

# %% [markdown]
# **2.** The Frechet distance between $\mathcal N(\mu_1, C_1)$ and $\mathcal N(\mu_2, C_2)$, the formula of the
# MNIST FID (notebook `07_mnist`, section 3; Heusel et al. 2017). `mu1`, `mu2` have shape `(d,)`, `cov1`, `cov2`
# shape `(d, d)` (symmetric positive definite), all float64; return a Python float. You may use `scipy.linalg` or
# `torch.linalg`. The check
# compares to `rtol = 1e-6`, `atol = 1e-5`.

# %% nbgrader={"grade": false, "grade_id": "frechet_distance", "locked": false, "schema_version": 3, "solution": true, "task": false}
def frechet_distance(mu1, cov1, mu2, cov2):
    """The Frechet distance between the Gaussians N(mu1, cov1) and N(mu2, cov2): a float."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_frechet_distance", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("frechet_distance", frechet_distance)

# %% [markdown]
# **3.** The FID of a perfect model (a derivation: notebook `07_mnist` measures such a floor on real digits, and no
# cell derives it). Section 3 scores 1,000 real training digits against the 10,000 test digits and gets an FID near
# 7, not 0. Part of it can be a real difference between training and test digits; part comes from fitting each
# Gaussian to finitely many samples, whose errors in the means and covariances add to the distance. This question
# derives the second part in the simplest case. Draw $n$ points from $\mathcal N(0, I_d)$ and fit a Gaussian to them (the sample mean
# and the sample covariance $S_1$); fit another to $m$ further points ($S_2$); take the Frechet distance of
# question 2 between the two fits. Derive its expectation to leading order for $n, m \gg d$: a constant that
# depends on $d$ times $(1/n + 1/m)$. Return it from `fid_bias(d, n, m)`; `m = math.inf` stands for comparing
# with the true $\mathcal N(0, I_d)$ itself.
#
# An outline: first the mean term; then the covariance term, expanded to second order in $S - I$ (try commuting
# $S_1$, $S_2$ first, where $\operatorname{tr}(S_1 + S_2 - 2 (S_1 S_2)^{1/2}) = \sum_i (\sqrt{a_i} - \sqrt{b_i})^2$
# for their eigenvalues $a_i$, $b_i$), which then needs the expected square of each entry of a sample covariance.
# The check compares to `rtol = 1e-2` (writing $n - 1$ for $n$ is as good). You can test your formula by Monte
# Carlo with your `frechet_distance` (say $d = 8$, $n = m = 1000$, a few hundred draws).
#
# Then use it: for features with $d = 128$ (the MNIST classifier's, were they white), how large a bias do
# 1,000 samples against 10,000 reference images carry, and how much of it would remain with infinitely many
# samples against the same 10,000 reference images? For features with another covariance the constant changes, but to leading order the bias still falls
# like $1/n + 1/m$: FIDs compare only at the same $n$ and $m$, which is why notebook 07 scores its band of real
# digits at the samplers' $n$.

# %% nbgrader={"grade": false, "grade_id": "fid_bias", "locked": false, "schema_version": 3, "solution": true, "task": false}
def fid_bias(d, n, m):
    """The leading term of E[FID] between Gaussians fitted to n and to m draws of N(0, I_d) (m = inf: the truth)."""
    # YOUR CODE HERE
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% nbgrader={"grade": true, "grade_id": "check_fid_bias", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
grading.check("fid_bias", fid_bias)

# %% [markdown]
# Your formula, at the sizes the question asks about (white features, $d = 128$):

# %%
print(f"1,000 samples against 10,000 reference images: {fid_bias(128, 1_000, 10_000):.2f}")
print(f"infinitely many samples against the same 10,000: {fid_bias(128, math.inf, 10_000):.2f}")
