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
# inpainting. Then two whose answers no cell of the notebook prints: RePaint's jump back up the chain, which the
# course's inpainting takes but the notebook never derives (a derivation), and when the progressive code's picture is
# sharp on a small exact model, with the share of the code still to come then (a measurement; section 1 of the
# notebook measures the same on MNIST).
# Time is DDPM's, 1-based: `schedule.alpha_bars[t]` is $\bar\alpha_t$ (with $\bar\alpha_0 = 1$), and DDIM's
# $\alpha_t$ is DDPM's $\bar\alpha_t$. `t`, `t_prev` and `t_up` are integer tensors of shape `(batch,)`.
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
# Points: `replace_known` 1, `progressive_rate` 1, `inpaint_step` 1, `repaint_jump` 2, `bits_left_when_sharp` 2.

# %%
import torch

import minddim as md
from minddim import grading

schedule = md.Schedule.linear()  # T = 1000, 1-based: schedule.betas[t] is beta_t, schedule.alpha_bars[t] is alpha-bar_t

# %% [markdown]
# **1.** The replacement step of inpainting (notebook `08_beyond_sampling`, section 4; Song et al. 2021,
# app. I.2). A mask $m$ marks the known pixels ($m = 1$) of an image $x_0$; the unknown
# ones ($m = 0$) are to be filled in. `x_prev` is the reverse process's sample $x'_{t_\text{prev}}$ at time
# $t_\text{prev}$, reached from time $t$ ($0 \le t_\text{prev} < t$); apply the replacement step to it. Use the given
# standard normal `noise` for the draw the step needs.
# `mask` is a bool or 0/1 tensor that broadcasts against `x0` (one `(1, 1, 28, 28)` mask may serve a whole batch of
# images): `torch.where(mask.bool(), a, b)` handles both. Return a tensor shaped like `x0`, in its dtype.

# %% nbgrader={"grade": false, "grade_id": "replace_known", "locked": false, "schema_version": 3, "solution": true, "task": false}
def replace_known(x_prev, x0, mask, t, t_prev, schedule, noise):
    """x_prev after the replacement step of inpainting: the unknown pixels (mask 0) kept, the known ones (mask 1) replaced."""
    ### BEGIN SOLUTION
    alpha_bar_prev = schedule.alpha_bars[t_prev].to(x0.dtype).view(-1, *[1] * (x0.dim() - 1))
    known = alpha_bar_prev.sqrt() * x0 + (1 - alpha_bar_prev).sqrt() * noise
    return torch.where(mask.bool(), known, x_prev)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_replace_known", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
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
    ### BEGIN SOLUTION
    return terms.flip(-1).cumsum(-1).flip(-1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_progressive_rate", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("progressive_rate", progressive_rate)

# %% [markdown]
# **3.** One step of inpainting with an unconditional eps-model `model(x_t, t)` from $t$ to $t_\text{prev}$
# ($0 \le t_\text{prev} < t$), as `md.inpaint` takes it (notebook `08_beyond_sampling`, section 4, says in which
# order), built from two pieces: the replacement step of question 1 (your answer, not `md.replace_known`), whose
# draw uses the standard normal `noise_known`, and DDIM's step (eq. 12) with `eta` and the standard normal `noise`
# for its draw (`md.ddim_step` and your exercise-04 answer are allowed).
#
# `md.inpaint` repeats this step from $\tau_S$ down to 0 (with $\eta = 1$ over all $T$ steps it is DDPM's sampler
# with replacement); RePaint (Lugmayr et al. 2022) also walks back up with the forward process now and then, so
# that the unknown pixels can adapt to the known ones. Notebook `08_beyond_sampling` compares both on MNIST.

# %% nbgrader={"grade": false, "grade_id": "inpaint_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def inpaint_step(model, x_t, x0, mask, t, t_prev, schedule, eta, noise, noise_known):
    """x_{t_prev}: one inpainting step from x_t."""
    ### BEGIN SOLUTION
    eps = model(x_t, t)
    x_prev, _ = md.ddim_step(x_t, eps, t, t_prev, schedule, eta, noise)
    return replace_known(x_prev, x0, mask, t, t_prev, schedule, noise_known)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_inpaint_step", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
grading.check("inpaint_step", inpaint_step)

# %% [markdown]
# **4.** RePaint's jump back up (a derivation: no cell of notebook `08_beyond_sampling` writes it down). To resample,
# RePaint (Lugmayr et al. 2022, sec. 4.2) takes $x_t$ back up to a later time $t_\text{up} > t$ with the forward
# process, one step of DDPM eq. 2 (its eq. 1) at a time, $j = t_\text{up} - t$ of them, and then walks down again;
# the course's inpainting climbs between neighbouring times of the sampler's subsequence, each move up one draw
# of this law, however many steps of eq. 2 it spans. Derive the law
# $q(x_{t_\text{up}} \mid x_t)$ of the forward process (compose its steps as DDPM composes the steps from $x_0$ into
# eq. 4, notebook `01_forward_process`) and return one draw of it from `x_t`, with the given standard normal `noise`
# (shaped like `x_t`): a tensor shaped like `x_t`, in its dtype. Each row has its own $0 \le t < t_\text{up} \le T$.

# %% nbgrader={"grade": false, "grade_id": "repaint_jump", "locked": false, "schema_version": 3, "solution": true, "task": false}
def repaint_jump(x_t, t, t_up, schedule, noise):
    """A draw of x_{t_up} ~ q(x_{t_up} | x_t), the forward process from time t up to time t_up."""
    ### BEGIN SOLUTION
    ratio = (schedule.alpha_bars[t_up] / schedule.alpha_bars[t]).to(x_t.dtype).view(-1, *[1] * (x_t.dim() - 1))
    return ratio.sqrt() * x_t + (1 - ratio).sqrt() * noise
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_repaint_jump", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("repaint_jump", repaint_jump)

# %% [markdown]
# **5.** When is the receiver's picture sharp, and how much of the code is still to come then? (A measurement.
# Notebook `08_beyond_sampling`, section 1, measures it for MNIST digits and a trained U-Net; here you measure it
# for an exact model.) In DDPM's progressive code (sec. 4.3) the receiver decodes $x_T, x_{T-1}, \dots, x_0$; holding
# $x_t$ it shows $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t, t))/\sqrt{\bar\alpha_t}$ (DDPM
# eq. 15, unclipped). For each image of `x0` (batch first, any shape; pixels in $[-1, 1]$), take
# $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ with the given `noise` as $\epsilon$ (the same at
# every $t$), and measure the distortion $D(t)$, the RMSE of $\hat x_0$ against $x_0$ over the image's pixels in gray
# levels of $[0, 255]$, for $t = 1, \dots, T$. Return `(t_star, share)`, both of shape `(batch,)`:
#
# - `t_star` (`torch.long`): the earliest point $t^*$ of the decoding from which $\hat x_0$ stays within `level`
#   gray levels ($D < $ `level`) down to $t = 1$; 0 if it is not within the level even at $t = 1$;
# - `share` (in the dtype of `terms`): the fraction of the image's codelength, the bound, still to be sent once
#   $x_{t^*}$ is decoded. `terms` holds the bound's terms $L_0, \dots, L_T$ of each image, shape `(batch, T + 1)`,
#   as `md.vlb_terms` returns them.
#
# `model(x_t, t)` takes a batch of any size with one time per row, so all $T$ times can go in one call. Your
# `progressive_rate` of question 2 (or `md.progressive_rate`) is allowed; `md.progressive_distortion` is not (it
# averages over the batch and draws its own noise).
#
# The cell below builds the first cases of the check: the exact model (`md.GaussianDenoiser`) of 2x2 Gaussian images
# (4 pixels, neighbours correlated, quantized to the 256 gray levels), six images, their noise and their terms. Once
# your function passes, run it on them with `level = 2.0` and answer: from which $t$ is this model's picture within
# two gray levels, and what share of its code is still to come then? On MNIST (notebook 08) the picture was sharp from
# $t = 10$ (median) with 75.8% of the code to come (measured there on a grid of times, with $\hat x_0$ clipped to
# the pixel range): is this model's picture sharp earlier or later in the decoding,
# and is more or less of its code still to come?

# %%
cov4 = 0.16 * torch.tensor([[1.0, 0.7, 0.7, 0.5], [0.7, 1.0, 0.5, 0.7], [0.7, 0.5, 1.0, 0.7],
                            [0.5, 0.7, 0.7, 1.0]], dtype=torch.float64)
gauss4 = md.GaussianDenoiser(torch.zeros(4), cov4, schedule)       # the exact eps-model of N(0, cov4)
g4 = torch.Generator().manual_seed(8)
x4 = gauss4.sample_data(6, g4, dtype=torch.float64).clamp(-1, 1)
x4 = ((x4 + 1) * 127.5).round() / 127.5 - 1                        # six 2x2 images (rows of 4 pixels), on the gray levels
noise4 = torch.randn(x4.shape, generator=g4, dtype=torch.float64)
terms4 = md.vlb_terms(gauss4, x4, schedule, generator=g4)            # (6, T + 1) nats: column k is L_k

# %% nbgrader={"grade": false, "grade_id": "bits_left_when_sharp", "locked": false, "schema_version": 3, "solution": true, "task": false}
def bits_left_when_sharp(model, x0, noise, terms, schedule, level):
    """(t_star, share) per image: from when x0_hat is within `level` gray levels, and the share of the code still to come then."""
    ### BEGIN SOLUTION
    B, T = x0.shape[0], schedule.T
    ab = schedule.alpha_bars[1:].to(x0.dtype).view(T, 1, *[1] * (x0.dim() - 1))       # t = 1..T along the first axis
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise                                    # (T, B, ...)
    t = torch.arange(1, T + 1).repeat_interleave(B)
    eps = model(x_t.flatten(0, 1), t).reshape(x_t.shape)
    x0_hat = (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
    rmse = (127.5 * (x0_hat - x0)).square().flatten(2).mean(2).sqrt().T            # (B, T): column t - 1 is time t
    t_star = (rmse < level).long().cumprod(1).sum(1)                                # the run under the level from t = 1
    rate = progressive_rate(terms)                                                  # rate[:, t] = L_t + ... + L_T
    share = 1 - rate.gather(1, t_star[:, None])[:, 0] / rate[:, 0]
    return t_star, share
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_bits_left_when_sharp", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
grading.check("bits_left_when_sharp", bits_left_when_sharp)
