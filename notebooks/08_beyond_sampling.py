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
# ---

# %% [markdown]
# # 08 · What a trained DDPM does besides sampling
#
# **You will be able to:** read a trained DDPM's variational bound as a progressive code and plot its rate and
# distortion against $t$; say what a shared $x_t$ fixes in the draws from it; interpolate two images through $q$;
# inpaint with an unconditional model by replacement and by RePaint's resampling.
#
# **You need first:** notebook 02 (the bound's terms $L_0, L_{t-1}, L_T$ and bits/dim), notebooks 04-05 (DDIM's
# step, eq. 12, and $\eta$), notebook 07 (the shipped MNIST U-Net and classifier); the mathematics: a KL divergence
# read as a codelength, and sampling $q(x_t \mid x_0)$ in one step.
#
# **Time:** about 35 min to read (an estimate); runs in about 115 s on a 2-core CPU (one thread, AVX2 kernels; README, "Running the tests").
#
# DDPM reads its trained model as a progressive lossy code and its sampler as progressive decoding (sec. 4.3), and
# shows samples that share an $x_t$ (fig. 7) and interpolations through $q$ (sec. 4.4). DDPM does no inpainting:
# that goes back to Sohl-Dickstein et al. (2015, sec. 2.5, fig. 5), the paper DDPM builds on; the replacement method
# used here is from Song et al. (2021, the SDE paper, app. I.2), resampling from RePaint (Lugmayr et al. 2022). We
# do each with notebook 07's shipped MNIST U-Net (unconditional, no retraining) and its classifier:
#
# 1. **progressive lossy compression** (DDPM sec. 4.3, Algorithms 3-4, fig. 5): rate and distortion against $t$;
# 2. **a shared $x_t$** (DDPM fig. 7): how much of a test digit survives noising to $t$;
# 3. **interpolation through $q$** (DDPM sec. 4.4, fig. 8), stochastic and deterministic, against mixing pixels;
# 4. **inpainting**: replacement, RePaint's resampling and a deterministic replacement, on three masks.
#
# *Going further*: DDPM's Table 4 in full; progressive generation (figs. 6, 10); DDPM's autoregressive reading
# of the bound (eq. 16) on a 4-pixel image; the other masks.
# Time is DDPM's $t = 0..T$; DDIM's $\alpha_t$ is our $\bar\alpha_t$ (`alpha_bars`).

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm import tqdm  # to stderr, which nbval does not compare (a widget would be an output)

import minddim as md
from minddim import plotting
from minddim.data import load_mnist, to_model_range

torch.manual_seed(0)
schedule = md.Schedule.linear()
T = schedule.T
ab = schedule.alpha_bars
test_u8, test_labels = load_mnist("test")
x_test = to_model_range(test_u8)                     # pixels {0..255} -> [-1, 1]
model = md.pretrained("mnist_unet")                  # notebook 07's shipped EMA U-Net
classifier = md.pretrained("mnist_classifier")       # its record: 99.06% test accuracy (weights/mnist_classifier.json)
print(f"the U-Net: {sum(p.numel() for p in model.parameters()):,} parameters, trained on L_simple")


def show(images, title, ncol, ax=None, rows=None):
    """A grid of images in [-1, 1], ncol per row, with a label left of each row."""
    ax = plotting.show_images(images, title, ncol, ax)
    if rows is not None:
        ax.axis("on")
        ax.set_xticks([])
        ax.tick_params(left=False)
        ax.set_yticks([2 + 30 * r + 14 for r in range(len(rows))], rows, fontsize=7)   # 28-pixel cells, 2 apart
        for side in ax.spines.values():
            side.set_visible(False)
    return ax


def classify(images):
    """The classifier's class and top probability for images in [-1, 1]."""
    with torch.no_grad():
        p = classifier(images.clamp(-1, 1)).softmax(1)
    return p.argmax(1), p.max(1).values


def gray_rmse(a, b, where=None):
    """Root mean squared difference per image on the [0, 255] scale, over the pixels where `where` is 1."""
    sq = ((a - b) * 127.5).pow(2)
    if where is None:
        return sq.flatten(1).mean(1).sqrt()
    where = where.expand_as(sq)
    return ((sq * where).flatten(1).sum(1) / where.flatten(1).sum(1)).sqrt()


# %% [markdown]
# ## 1. Progressive lossy compression (DDPM sec. 4.3, Algorithms 3-4, fig. 5)
#
# The bound (DDPM eq. 5) is a **codelength**. Sender and receiver share the model and a source of random numbers.
# The sender draws $x_T \sim q(x_T \mid x_0)$ and transmits it coded with $p(x_T)$; then, for
# $t = T, \dots, 2$, it draws $x_{t-1} \sim q(x_{t-1} \mid x_t, x_0)$ and transmits it coded with
# $p_\theta(x_{t-1} \mid x_t)$, which the receiver can evaluate since it holds $x_t$; last, $x_0$ with the decoder
# $p_\theta(x_0 \mid x_1)$ (Algorithm 3; Algorithm 4 is the receiver). DDPM assumes a procedure such as minimal
# random coding (Harsha et al. 2007; Havasi et al. 2019) that sends a draw of $q$ in about
# $D_\mathrm{KL}(q \,\|\, p)$ bits when the receiver knows only $p$. Step $t$ then costs $L_{t-1}$, and the whole
# message costs the bound. Neither DDPM nor we build the coder (*Going further* says why); the bound's terms are
# the codelengths such a code would reach.
#
# At any time the receiver holds $x_t$ and can show its best guess $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,
# \epsilon_\theta(x_t, t))/\sqrt{\bar\alpha_t}$ (eq. 15). **We clip $\hat x_0$ to $[-1, 1]$**, the pixel range, as
# this notebook's samplers do (`clip_x0=1.0`); eq. 15 has no clip. Since every pixel of $x_0$ lies in $[-1, 1]$,
# clipping can only lower the distortion; the bound's terms use the same clipped $\hat x_0$ in the reverse mean. This gives a lossy decoding at
#
# - **rate** $R(t) = L_T + \sum_{s > t} L_{s-1}$, the bits received so far (`md.progressive_rate`), and
# - **distortion** $D(t)$ = RMSE of $\hat x_0$ against $x_0$ on the $[0, 255]$ scale, $x_t \sim q(x_t \mid x_0)$.
#
# **Budget.** Each term but $L_T$ costs one network evaluation per digit. For 16 digits we evaluate them on a grid of 50 times
# (every $t \le 10$, then 40 spaced geometrically up to 1000; `md.vlb_terms(..., times=grid_t)`) and interpolate
# $\log L_{t-1}$ linearly in $\log(t-1)$ in between: the rate is an **estimate**, and redoing it on every other grid
# time measures its error. The model we pass records $\hat x_0$ at each evaluation, which gives $D(t)$.

# %%
digits, digit_labels = x_test[:16], test_labels[:16]
grid_t = np.unique(np.r_[1:11, np.geomspace(11, T, 40).round()].astype(int))
x0_hat = {}


def recording_model(x_t, t):
    """eps_theta, recording the receiver's x0_hat (eq. 15, clipped to [-1, 1] as vlb_terms clips it) at each t."""
    eps = model(x_t, t)
    x0_hat[int(t[0])] = md.predict_x0(x_t, eps, int(t[0]), schedule).clamp(-1, 1)
    return eps


terms = md.vlb_terms(recording_model, digits, schedule, variance="beta_tilde", clip_x0=1.0, times=grid_t,
                     progress=True, generator=torch.Generator().manual_seed(0))   # (16, T + 1) nats; column k: L_k
measured = terms[0].isfinite()                                    # L_{t-1} for t on the grid, and L_T
print(f"{len(grid_t)} grid times, {len(grid_t) * len(digits)} network evaluations instead of {T * len(digits)}; "
      f"{int(measured.sum())} of the {T + 1} columns measured, the others NaN")


def fill_terms(terms, known_t):
    """All columns L_0..L_T: L_0 and L_T as measured, L_{t-1} (1 <= t - 1 <= T - 1) measured at the times
    known_t >= 2 and interpolated in between, log L linear in log(t - 1)."""
    k_known = np.asarray([t - 1 for t in known_t if t >= 2])      # L_{t-1} sits in column t - 1
    full = terms.clone()
    log_k = np.log(np.arange(1, T))
    for i in range(len(terms)):
        log_l = np.log(terms[i, k_known].numpy())
        full[i, 1:T] = torch.from_numpy(np.exp(np.interp(log_k, np.log(k_known), log_l)))
    return full


full = fill_terms(terms, grid_t)
assert full.isfinite().all()                                      # every NaN column interpolated
rate = md.bits_per_dim(md.progressive_rate(full), digits).numpy()    # (16, T + 1): rate[:, t] = R(t), bits/dim
coarse = md.bits_per_dim(md.progressive_rate(fill_terms(terms, grid_t[::2])), digits).numpy()
bound, L0 = rate[:, 0], rate[:, 0] - rate[:, 1]
distortion = {t: gray_rmse(x0_hat[t], digits).numpy() for t in grid_t}         # (16,) per grid time
print(f"bound R(0): {md.mean_spread(bound)} bits/dim (mean +- std over 16 digits); interpolation check, every other "
      f"grid time: R(1) changes by {np.abs(coarse[:, 1] - rate[:, 1]).mean():.3f} bits/dim on average\n")
print(md.table({str(t): [rate[:, t], 100 * rate[:, t] / bound, distortion[t] if t else None]
                for t in (1000, 707, 500, 250, 99, 49, 20, 10, 5, 2, 1, 0)},
               ["rate R(t) (bits/dim)", "share of the bound sent (%)", "RMSE of x0_hat (0..255)"], header="t",
               digits=[3, 1, 1], title="mean +- std over 16 test digits; t = 0: x_0 itself, after L_0"))

# %% [markdown]
# The three panels of DDPM's fig. 5 for our 16 digits (mean, and a band of $\pm$ one standard deviation over
# digits); $t$ on a log axis, since the interesting part is near $t = 0$. Dotted lines: 1 and 2 gray levels.

# %%
D = np.array([distortion[t] for t in grid_t]).T                  # (16, grid)
R = rate[:, grid_t]
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
for ax, (x, y, xlabel, ylabel, title) in zip(axes, (
        (grid_t, R, "t (log scale)", "rate R(t) (bits/dim)", "rate: bits received by time t"),
        (grid_t, D, "t (log scale)", "distortion: RMSE of x0_hat (0..255)", "distortion against t"),
        (R.mean(0), D, "rate R(t) (bits/dim)", "distortion: RMSE of x0_hat (0..255)", "distortion against rate"))):
    m, s = y.mean(0), y.std(0, ddof=1)
    ax.plot(x, m, "o-", ms=2, label="mean of 16 digits")
    ax.fill_between(x, m - s, m + s, alpha=0.3, label="+- 1 std over digits")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if "log" in xlabel:
        ax.set_xscale("log")
    if "distortion" in ylabel:
        for level in (1, 2):
            ax.axhline(level, color="k", ls=":", lw=0.8)
    ax.legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# How much of the code is spent after the picture is right? For each digit: the earliest point of the decoding (the
# largest grid $t$) from which $\hat x_0$ stays within 2 gray levels (then 1) of the truth, and the share of its
# codelength still to come from there; then our split beside DDPM's.

# %%
reached = {}
for level in (2.0, 1.0):
    reach, left = [], []
    for i in range(16):
        below = D[i] < level                                  # along grid_t, increasing t
        if not below[0]:
            continue
        last = len(grid_t) if below.all() else int(np.argmin(below))   # first grid time that is not below
        t_star = int(grid_t[last - 1])
        reach.append(t_star)
        left.append(100 * (1 - rate[i, t_star] / bound[i]))
    reached[f"RMSE < {level:.0f} gray level(s)"] = [float(np.median(reach)), left, len(reach)]
print(md.table(reached, ["from t (median)", "share of the bits still to send (%)", "digits (of 16)"],
               digits=[0, 1, 0], title="mean +- std over the digits"))
print()
print(md.table({"DDPM, CIFAR-10 (Table 1, sec. 4.3)": [1.78, 1.97, 3.75, 100 * 1.97 / 3.75, 0.95],
                "here, MNIST, 16 test digits": [rate[:, 1], L0, bound, 100 * L0 / bound, distortion[1]]},
               ["rate L_1..L_T", "distortion L_0", "bound", "L_0 share (%)", "RMSE at t = 1"], digits=[2, 2, 2, 1, 2],
               title="bits/dim; RMSE on 0..255; DDPM's test-set numbers, ours mean +- std over digits"))

# %% [markdown]
# The same digits (first six) as the receiver would show them, $\hat x_0$ at decreasing $t$, that is, at
# increasing rate; and how many of the 16 the classifier reads as their label.

# %%
cols = (1000, 707, 500, 353, 250, 176, 99, 49, 10, 1)
cells = torch.stack([x0_hat[t][:6] for t in cols], 1).reshape(-1, 1, 28, 28)
ax = show(cells, "x0_hat at t = " + ", ".join(map(str, cols)) + " (columns)", len(cols),
          rows=[f"test digit {i}" for i in range(6)])
ax.figure.set_size_inches(7.5, 4.6)
plt.show()
print(md.table({str(t): [rate[:, t], 100 * rate[:, t] / bound, int((classify(x0_hat[t])[0] == digit_labels).sum())]
                for t in cols}, ["rate R(t) (bits/dim)", "share of the bound (%)", "read as its label (of 16)"],
               header="t", digits=[3, 1, 0], title="mean +- std over 16 test digits"))

# %% [markdown]
# **The picture arrives early, the bits late.** $\hat x_0$ is within two gray levels of the digit from $t = 10$ on
# (median over digits), with 75.8% $\pm$ 4.7% of the codelength still to come, and within one gray level from
# $t = 3$, with 65.5% $\pm$ 6.9% still to come; $L_0$ alone, the last message, is 54.3% $\pm$ 5.6% of the bound. From
# the other end, the classifier reads $\hat x_0$ as the right digit for 15 of the 16 at $t = 353$, after
# 1.8% $\pm$ 0.5% of the bits, and for all 16 at every printed $t$ from 250 down (2.9% $\pm$ 0.7% of the bits at
# $t = 250$). This is DDPM's reading of its fig. 5: "the majority of the bits are indeed allocated to imperceptible
# distortions". The interpolated rates are good to about 0.05 bits/dim: halving the grid moves $R(1)$ by 0.053.
#
# **Beside DDPM's CIFAR-10 model** (the $L_\text{simple}$ model with the best samples: its test bound of 3.75
# bits/dim in Table 1, split in sec. 4.3 into a rate of 1.78 and $L_0$ = 1.97 bits/dim, an RMSE of 0.95 at $t = 1$;
# *Going further* sets all of its Table 4 beside ours), the **shares** agree: $L_0$ is 54.3% $\pm$ 5.6% of our
# bound and 52.5% of theirs, inside our spread. The absolute numbers do not compare: other data (28x28 gray digits,
# mostly black background, against 32x32 colour photographs) and a much smaller model (ours: 0.64 M parameters,
# printed above; DDPM's CIFAR-10 model: 35.7 million, its appendix B); both were trained on $L_\text{simple}$.

# %% [markdown]
# ## 2. Samples that share $x_t$ (DDPM fig. 7)
#
# Noise a test digit to $x_t \sim q(x_t \mid x_0)$ once, then run the stochastic reverse process from that one $x_t$
# several times. What the draws have in common is what $x_t$ still knows about the digit. DDPM's fig. 7 (CelebA-HQ)
# shares an $x_t$ taken from one reverse chain started at the prior (its app. D), not a noised data image; we noise
# a test digit instead, so that its label tells us what survived. There, draws from the same $x_t$ share high-level
# attributes: "When $t$ is small, all but fine details are
# preserved, and when $t$ is large, only large scale features are preserved." Here: one test digit of each class,
# $t \in \{250, 500, 750, 1000\}$, 6 draws from each shared $x_t$, each the $\eta = 1$ step on 20 steps of $[1, t]$
# (`md.timesteps(t, 20, "trailing")`, which ends at $t$): $10 \times 4 \times 6 \times 20 = 4{,}800$ image
# evaluations. We measure the share of draws that the classifier reads as the source's class.

# %%
read_test = classify(x_test[:1000])[0]
sources = torch.tensor([int(((test_labels[:1000] == c) & (read_test == c)).nonzero()[0]) for c in range(10)])
src, src_labels = x_test[sources], test_labels[sources]       # the first test digit of each class read correctly
print("test indices of the 10 sources:", sources.tolist())
t_shared, n_draws = (250, 500, 750, 1000), 6
g = torch.Generator().manual_seed(1)
shared, drawn = {}, {}
for t in tqdm(t_shared, desc="shared x_t"):
    shared[t] = md.q_sample(src, t, schedule, generator=g)                   # one x_t per source digit ...
    drawn[t] = md.sample(model, shared[t].repeat_interleave(n_draws, 0), schedule,   # ... shared by 6 chains
                         md.timesteps(t, 20, "trailing"), eta=1.0, generator=g, clip_x0=1.0)
same = {t: (classify(drawn[t])[0].reshape(10, n_draws) == src_labels[:, None]).double().mean(1).numpy()
        for t in t_shared}                                                     # (10,) per t
print(md.table({str(t): [math.sqrt(ab[t]), 100 * same[t], 100 * same[t].min(), 100 * same[t].max()] for t in t_shared},
               ["sqrt(alpha_bar_t)", "draws read as the source's class (%)", "lowest source", "highest source"],
               header="t", digits=[3, 1, 0, 0],
               title="mean +- std over the 10 source digits, 6 draws each; a random digit is one class in ten"))
fig, ax = plt.subplots(figsize=(5, 3))
m, s = np.array([same[t].mean() for t in t_shared]), np.array([same[t].std(ddof=1) for t in t_shared])
ax.plot(t_shared, m, "o-", label="mean over 10 source digits")
ax.fill_between(t_shared, np.clip(m - s, 0, 1), np.clip(m + s, 0, 1), alpha=0.3,
                label="+- 1 std over source digits (within [0, 1])")
ax.axhline(0.1, color="k", ls=":", label="chance: one class in ten")
ax.set(xlabel="t of the shared x_t", ylabel="share of draws in the source's class", ylim=(-0.05, 1.05),
       title="how much of a digit survives noising to t")
ax.legend(fontsize=7)
plt.show()
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
for ax, c in zip(axes, (2, 5, 7)):
    grid = [torch.cat([src[c:c + 1], shared[t][c:c + 1].clamp(-1, 1), drawn[t][c * n_draws:(c + 1) * n_draws]])
            for t in t_shared]
    show(torch.cat(grid), f"source {c}: the source, x_t, 6 draws", n_draws + 2, ax,
         rows=[f"t = {t}" for t in t_shared])
plt.tight_layout()
plt.show()

# %% [markdown]
# **A digit's class survives noising to $t = 250$ and is gone by $t = 750$.** At $t = 250$ the draws keep the
# source's class (95.0% $\pm$ 15.8% of them; the lowest source 50%), and in the grid they look alike in pose and
# stroke width too, differing in details. At $t = 500$ the class survives in 55.0% $\pm$ 42.3% of the draws, and the
# spread is the finding: for some sources every draw keeps the class, for others none does. At $t = 750$ and
# $t = 1000$ the share, 10.0% $\pm$ 11.7% and 11.7% $\pm$ 11.2%, is chance (one class in ten); the digit's weight
# $\sqrt{\bar\alpha_t}$ in $x_t$ is 0.058 and 0.006 there. This is our MNIST counterpart of DDPM's fig. 7, measured
# (DDPM still sees attributes shared at $x_{750}$ on CelebA-HQ; here the class is gone by $t = 750$): the class, a
# high-level feature, is decided while $t$ is still large; the later steps fill in details (section 1's split).
#
# ## 3. Interpolation through $q$ (DDPM sec. 4.4, fig. 8)
#
# DDPM noises two images to the same $t$, mixes $\bar x_t = (1 - \lambda) x_t + \lambda x'_t$, and decodes with the
# reverse process; it "fixed the noise for different values of $\lambda$ so $x_t$ and $x'_t$ remain the same". We
# also noise both digits with the **same** $\epsilon$ (our choice: $\bar x_t$ is then a draw of $q$ for the pixel
# mix), and decode (a) with the $\eta = 1$ step, its sampling noise the same for every $\lambda$, and (b) with the
# deterministic DDIM step; 20 steps, from $t = 250$, 500 and 750, 9 values of $\lambda$, three pairs of section 2's
# source digits. For contrast, mixing the pixels.

# %%
pairs = ((0, 1), (3, 5), (4, 9))
lams = torch.linspace(0, 1, 9)
a, b = src[[p[0] for p in pairs]], src[[p[1] for p in pairs]]
eps = torch.randn(a.shape, generator=torch.Generator().manual_seed(2))    # one encoding noise per pair, both digits
paths = {"pixels": torch.stack([(1 - w) * a + w * b for w in lams], 1)}    # (pair, lambda, 1, 28, 28)
for t in tqdm((250, 500, 750), desc="interpolation"):
    tau = md.timesteps(t, 20, "trailing")
    mix = torch.stack([(1 - w) * md.q_sample(a, t, schedule, eps) + w * md.q_sample(b, t, schedule, eps)
                       for w in lams], 1)
    paths[f"DDIM {t}"] = md.sample(model, mix.flatten(0, 1), schedule, tau, eta=0.0, clip_x0=1.0).reshape(mix.shape)
    paths[f"DDPM {t}"] = torch.stack([md.sample(model, mix[:, k], schedule, tau, eta=1.0, clip_x0=1.0,   # same noise
                                                generator=torch.Generator().manual_seed(3)) for k in range(len(lams))], 1)
order = ["pixels", "DDPM 250", "DDPM 500", "DDPM 750", "DDIM 250", "DDIM 500", "DDIM 750"]
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
for i, ax in enumerate(axes):
    show(torch.cat([paths[k][i] for k in order]), f"source {pairs[i][0]} -> source {pairs[i][1]}", 9, ax,
         rows=order if i == 0 else None)
fig.suptitle("rows: how the path is made (decoder and t); columns: lambda = 0, 1/8, ..., 1", fontsize=9)
plt.tight_layout()
plt.show()
ends = torch.tensor(pairs)
interp = {}
print("the classifier's reading along each path (lambda = 0 .. 1; the three pairs):")
for k in order:
    labels, conf = (v.reshape(3, 9) for v in classify(paths[k].flatten(0, 1)))
    print(f"  {k:<9} " + " | ".join("".join(map(str, row.tolist())) for row in labels))
    inner, sure = labels[:, 1:-1], conf[:, 1:-1]                       # the 7 inner images of each path
    of_pair = ((inner == ends[:, :1]) | (inner == ends[:, 1:])).double().mean(1)
    interp[k] = [100 * (sure > 0.9).double().mean(1), 100 * of_pair]
print()
print(md.table(interp, ["inner images it is sure of (%)", "inner images of the pair's classes (%)"], header="path",
               digits=0, title="mean +- std over the 3 pairs; sure: top probability > 0.9"))

# %% [markdown]
# **Decoded from $t = 250$, a mix of two noised digits morphs from one digit to the other; from larger $t$ the
# DDPM paths lose the sources.** At $t = 250$ every inner image of the DDIM paths and 95% $\pm$ 8% of the DDPM ones are read as
# one of the pair's classes, the class switching once along each DDIM path; the grid shows one digit changing
# shape into the other (with a few scribbles midway), where pixel mixing shows two faded digits on top of each other. (The classifier is
# sure of 81% $\pm$ 8% of the pixel mixes, 95% $\pm$ 8% and 86% $\pm$ 14% of the decoded ones; with three pairs
# the differences are within about two spreads, too few to rank them.) At $t = 500$ the sources survive for some pairs only (48% $\pm$ 41% of the
# DDPM inner images; its 0 -> 1 path is a 6 throughout); at $t = 750$ each DDPM path is one digit, in no pair a
# source (0%). The DDIM paths from 500 and 750 read as one of the pair's classes in 52% $\pm$ 50% and 57% $\pm$ 52%
# of their inner images; only the 4 -> 9 path from 500 runs from one source to the other, and three of the six
# paths are one digit throughout (printed above). DDPM reports the same on CelebA-HQ (sec. 4.4): "Larger $t$ results in coarser and more varied
# interpolations, with novel samples at $t = 1000$". The DDIM paths are deterministic functions of $\lambda$, the
# property DDIM sec. 5.3 uses to interpolate in $x_T$ (notebook 07 does it by slerp).
#
# ## 4. Inpainting with an unconditional model
#
# Given the pixels where the mask $m$ is 1, fill in the others. The **replacement** method (Song et al. 2021,
# app. I.2; RePaint sec. 4.1, eq. 8, up to its index: it writes $\bar\alpha_t$) runs the reverse process and after every step overwrites the known pixels with a
# fresh draw of $q(x_{t_\text{prev}} \mid x_0)$: $x_{t_\text{prev}} \leftarrow m \odot q\text{-draw} + (1 - m)
# \odot x_{t_\text{prev}}$. The unknown part follows the known part only through the model's denoising of the whole
# image. **RePaint** (Lugmayr et al. 2022, sec. 4.2) therefore *resamples*: it noises $x_t$ back up a few steps with
# the forward process and walks down again, several times, so that the unknown pixels can adapt to the known ones.
# `md.inpaint` does both on the sampler's one path (DDIM's step, eq. 12, then `md.replace_known`); with $\eta = 0$
# it gives a third variant, ours, not a paper's: the unknown pixels get no fresh noise.
#
# **Budget.** RePaint's paper runs $T = 250$ steps with $r = 10$ resamplings and jumps of $j = 10$ (its appendix B,
# fig. 8), about ten times the evaluations of one pass (printed below). We compare **at equal cost, about 25
# network evaluations per image**: replacement on 25 steps ($\eta = 1$), RePaint on 10 steps with $r = 3$ and jumps
# of 2 ($\eta = 1$), DDIM replacement on 25 steps ($\eta = 0$). Three masks: the right half, the centre 12x12
# square, or a random 80% of the pixels unknown. 72 random test digits in three disjoint groups of 24, each with its
# own noise; spreads are over the three groups (a rough spread: three values). References: the classifier on the
# original digits, and on the masked digit with the unknown pixels left black (the background).

# %%
n_groups, n_per = 3, 24
pick = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(4))[:n_groups * n_per]
x_in, y_in = x_test[pick], test_labels[pick]
right = torch.ones(1, 1, 28, 28)
right[..., 14:] = 0
centre = torch.ones(1, 1, 28, 28)
centre[..., 8:20, 8:20] = 0
masks = {"right half": right, "centre square": centre,
         "80% random": (torch.rand(x_in.shape, generator=torch.Generator().manual_seed(5)) > 0.8).float()}
methods = {"replacement": dict(timesteps=md.timesteps(T, 25), eta=1.0),
           "RePaint r=3": dict(timesteps=md.timesteps(T, 10), eta=1.0, resample=3, jump=2),
           "DDIM repl.": dict(timesteps=md.timesteps(T, 25), eta=0.0)}


def evaluations(steps, resample=1, jump=1):
    """Network evaluations per image of md.inpaint: the downward moves of RePaint's walk."""
    walk = md.repaint_walk(steps, resample, jump)
    return sum(j < i for i, j in zip(walk[:-1], walk[1:]))


for name, kw in methods.items():
    print(f"{name:<12} network evaluations per image: {evaluations(len(kw['timesteps']), kw.get('resample', 1), kw.get('jump', 1))}")
print(f"RePaint's own setting (T = 250, r = 10, j = 10): {evaluations(250, 10, 10)}")


def by_group(values):
    """Per-image values -> the mean of each group of digits (3 values: md.table prints their mean +- std)."""
    return np.asarray(values, dtype=float).reshape(n_groups, n_per).mean(1)


print(f"the classifier on the {len(x_in)} original digits: {md.mean_spread(100 * by_group(classify(x_in)[0] == y_in), 1)}% "
      "agree with the label (mean +- std over the 3 groups)")
filled, scores = {}, {}
for mask_name, mask in masks.items():
    unknown = 1 - mask
    blank = x_in * mask - unknown                          # unknown pixels left black (-1)
    scores[mask_name, "left black"] = (classify(blank)[0] == y_in).double().numpy(), gray_rmse(blank, x_in, unknown).numpy()
    for name, kw in methods.items():
        out = md.inpaint(model, x_in, mask, schedule, generator=torch.Generator().manual_seed(6), clip_x0=1.0,
                         progress=True, **kw)
        filled[mask_name, name] = out
        scores[mask_name, name] = (classify(out)[0] == y_in).double().numpy(), gray_rmse(out, x_in, unknown).numpy()
rows = {}
for (mask_name, name), (agree, err) in scores.items():
    base_agree, base_err = scores[mask_name, "replacement"]
    paired = name != "replacement"                         # minus replacement's value on the same digits
    rows[f"{mask_name}: {name}"] = [100 * by_group(agree), 100 * by_group(agree - base_agree) if paired else None,
                                    by_group(err), by_group(err - base_err) if paired else None]
print()
print(md.table(rows, ["agrees with label (%)", "paired (%)", "RMSE, unknown pixels", "paired"],
               header="mask: method", digits=[1, 1, 1, 1],
               title="mean +- std over 3 disjoint groups of 24 test digits; paired: minus replacement's value on the "
                     "same digits; RMSE on 0..255"))

# %% [markdown]
# The right-half mask for the first 8 digits: the original, the input (unknown pixels grey), and each method's
# completion. (The other two masks are pictured in *Going further*.)

# %%
shown = [x_in[:8], (x_in * masks["right half"])[:8]] + [filled["right half", name][:8] for name in methods]
ax = show(torch.cat(shown), "right half unknown", 8,
          rows=["original", "input (left half)", "replacement", "RePaint r=3", "DDIM replacement"])
ax.figure.set_size_inches(6.5, 4.4)
plt.show()

# %% [markdown]
# **At equal cost, resampling lowers the error on the unknown pixels.** On the same digits RePaint's completions
# are closer to the truth than replacement's for all three masks: paired RMSE $-9.3 \pm 5.2$ gray levels (right
# half, 1.8 times its spread), $-20.2 \pm 6.7$ (centre square) and $-8.9 \pm 3.1$ (80% random), the last two about
# three times their spread. Whether the classifier then recognizes the digit more often, 72 digits cannot say: the
# agreement differences (+9.7% $\pm$ 8.7%, +4.2% $\pm$ 19.1%, +4.2% $\pm$ 8.3%) are each about one spread or less.
# RePaint's ablation (sec. 5.6, Table 2: 32 ImageNet validation images, wide masks) is the same equal-cost comparison
# with far more compute: resampling lowers LPIPS (a learned perceptual distance; lower is better) from 0.168
# ($T = 250$, $r = 1$) to 0.134 ($r = 4$), while $T = 1000$ plain steps give 0.161.
#
# **Noise-free steps for the unknown pixels do not help.** DDIM replacement ($\eta = 0$) has a higher RMSE than
# replacement for the right half (+4.2 $\pm$ 1.6) and the 80% mask (+6.6 $\pm$ 2.6), about 2.5 times their
# spread; for the centre square (+7.9 $\pm$ 6.9) the difference is about one spread, noise; so are its agreement
# differences. A plausible reason, not isolated here: with $\eta = 0$ the unknown pixels get no fresh noise to
# shake off a start that contradicts the known ones.
#
# **Filling in is not the same as recognizing.** The classifier reads the bare left half (right half left black)
# correctly for 84.7% $\pm$ 4.8% of the digits, more often than after replacement (paired +15.3% $\pm$ 2.4%), although
# every method's RMSE beats leaving it black (88.2 against 70.0 to 83.6). One possible reason, not isolated here: a
# completion is one plausible digit, and for an ambiguous half it may be another (in the grid, replacement and RePaint both complete the 0 in the fourth
# column as an 8). RMSE, too, penalizes a plausible but different completion as much as a
# bad one; the fill with the least RMSE would be the posterior mean, a blurred average, not a sample.
#
# ## Summary
#
# - **Progressive coding:** by time $t$ the receiver holds $L_T + \dots + L_t$ (`md.progressive_rate`). On MNIST the
#   class is readable after 2.9% of the bits, $\hat x_0$ is within two gray levels with three quarters still to
#   come, and $L_0$ is about half of the bound, the share DDPM reports for CIFAR-10.
# - **Shared $x_t$:** a digit's class survives noising to $t = 250$, to $t = 500$ for some digits only, and from
#   $t = 750$ only at chance.
# - **Interpolation:** decoded from $t = 250$, mixes of two noised digits morph from one digit to the other; from
#   larger $t$ the sources survive only for some pairs, and DDPM's decoding from $t = 750$ loses them.
# - **Inpainting** (`md.inpaint`): at equal cost RePaint's resampling lowers the error on the unknown pixels for
#   every mask, by about three spreads for two of them; the deterministic variant does not help.
#
# ## Going further
#
# ### Why we build no coder
#
# Relative-entropy coding (minimal random coding) needs about $2^{D_\mathrm{KL}}$ shared random candidates per
# message. Our last Gaussian step, $L_1$, alone carries this many bits per digit:

# %%
print(f"L_1 = R(1) - R(2): {md.mean_spread((rate[:, 1] - rate[:, 2]) * 784, 0)} bits per digit "
      "(mean +- std over 16 digits)")

# %% [markdown]
# Sent in one piece, that step alone would need about $2^{93}$ candidates; split into pieces (as Havasi et al. split a
# network's weights into blocks) each needs few, at an overhead per piece. We build neither, so here the code stays
# on paper; DDPM's "Extra information" section (its paragraph "Progressive compression")
# says the same of its Algorithms 3-4: they "serve as a compression interpretation of the variational bound", not yet
# a practical compression system.

# %% [markdown]
# ### DDPM's Table 4 beside ours
#
# DDPM's Table 4 lists its fig. 5 at ten times, labelled by the reverse-process time $T - t + 1$: its row 1000 is
# $t = 1$, its row 100 is $t = 901$. Beside each row, our rate $R(t)$ (section 1's terms, `md.progressive_rate`)
# and a fresh distortion (`md.progressive_distortion(..., per_image=True)`, the same 16 digits, new draws of $x_t$).

# %%
table4 = {1000: (1.77581, 0.95136), 900: (0.11994, 12.02277), 800: (0.05415, 18.47482), 700: (0.02866, 24.43656),
          600: (0.01507, 30.80948), 500: (0.00716, 38.03236), 400: (0.00282, 46.12765), 300: (0.00081, 54.18826),
          200: (0.00013, 60.97170), 100: (0.00000, 67.60125)}          # DDPM Table 4: rate (bits/dim), RMSE [0, 255]
t4 = [T - r + 1 for r in table4]                                    # its rows are reverse-process times T - t + 1
d4 = md.progressive_distortion(model, digits, schedule, t4, generator=torch.Generator().manual_seed(9), clip_x0=1.0,
                               per_image=True).numpy()              # (10 times, 16 digits)
print(md.table({f"{r} (t = {t})": [table4[r][0], 100 * table4[r][0] / table4[1000][0], rate[:, t],
                                   100 * rate[:, t] / rate[:, 1], np.abs(coarse[:, t] - rate[:, t]).mean(),
                                   table4[r][1], d4[k]]
                for k, (r, t) in enumerate(zip(table4, t4))},
               ["DDPM rate", "% of its R(1)", "our rate", "% of our R(1)", "interp. check", "DDPM RMSE", "our RMSE"],
               header="T - t + 1", digits=[5, 1, 5, 1, 5, 5, 1],
               title="rate in bits/dim, RMSE of x0_hat on 0..255; DDPM: CIFAR-10 test set; ours: MNIST, mean +- std "
                     "over 16 test digits; interp. check: mean change of our rate on every other grid time"))

# %% [markdown]
# **Our receiver gets more of its rate early; what it saves beside DDPM's is the late part.** By $t = 101$ ours
# has received 14.0% $\pm$ 2.8% of its $R(1)$, DDPM's 6.8% of its own. At $t = 101$ the two rates are within our
# spread (0.103 $\pm$ 0.031 against 0.120 bits/dim), at $t = 1$ ours is less than half of DDPM's (0.746 $\pm$ 0.216
# against 1.776): the bits our code saves are sent between $t = 101$ and $t = 1$, when $\hat x_0$ is already
# within about 10 gray levels (our RMSE at $t = 101$: 10.0 $\pm$ 1.3). From
# $t = 201$ on our rate is above DDPM's at every row: by less than our spread at $t = 201$ and 301, by 1.0 (at
# $t = 401$) to 3.3 (at $t = 801$) of our spreads from $t = 401$ to 801, and at $t = 901$ DDPM's rounds to 0. The
# interpolation moves the rates at $t \ge 101$ by at most 0.00504 bits/dim (interp. check), below their spread
# except at $t = 901$, where the check (0.00007) is about the rate itself (0.00008): that row is good to its order
# of magnitude only. Our distortion is lower than DDPM's at $t = 1$ (0.5 $\pm$ 0.1 against 0.95) and $t = 101$
# (10.0 $\pm$ 1.3 against 12.02), and within our spread of DDPM's from $t = 201$ on, though higher at every row
# from $t = 401$. The data differ (28x28 gray digits on a black background against 32x32 colour photographs) and
# so do the models (section 1): the table compares how the two codes spread their bits over $t$, not which model
# codes better. Why ours is lower at $t = 1$ is not isolated; one candidate: most MNIST pixels are background at
# $-1$, where clipping $\hat x_0$ removes the error.

# ### Progressive generation: $\hat x_0$ along DDPM-1000 chains (DDPM sec. 4.3, figs. 6 and 10)
#
# DDPM also decodes "from random bits": it runs Algorithm 2 from $x_T \sim \mathcal N(0, I)$ and shows the
# prediction $\hat x_0$ of eq. 15 along the way (fig. 6; fig. 10: "progressive sampling quality over time"):
# "Large scale image features appear first and details appear last". We run 4 chains of all 1000 steps
# ($\eta = 1$, that is $\sigma_t^2 = \tilde\beta_t$; $\hat x_0$ clipped as above), 4,000 network evaluations, what
# this notebook's time allows, and read $\hat x_0$ at every $t$: whether the classifier is sure of it (top
# probability > 0.9), whether it reads it as the chain's final digit (as `md.commitment_times` does), and its RMSE
# to the final sample, split into **large-scale structure** (the means of 4x4 blocks) and **detail** (the rest).
# An MNIST FID of $\hat x_0$ at each $t$ would need hundreds of chains: out of this notebook's time. Beside the
# chains, the sure fraction of section 1's receiver, $\hat x_0$ from $x_t \sim q(x_t \mid x_0)$ for 16 test
# digits: were the chains' $x_t$ distributed as $q(x_t)$, the two would agree at every $t$.

# %%
n_chains = 4
chains = md.sample(model, torch.randn(n_chains, 1, 28, 28, generator=torch.Generator().manual_seed(7)), schedule,
                   md.timesteps(T, T), eta=1.0, trajectory=True, clip_x0=1.0,
                   generator=torch.Generator().manual_seed(8))          # DDPM's Algorithm 2, sigma_t^2 = beta~_t
gen_t = chains.times[:-1].numpy()                                  # 1000, 999, ..., 1: x0_preds[k] is x0_hat at gen_t[k]
preds = chains.x0_preds                                            # (1000, 4, 1, 28, 28)
read_gen, top_gen = (torch.cat(v).reshape(T, n_chains).numpy() for v in
                     zip(*[classify(preds[k:k + 250].flatten(0, 1)) for k in range(0, T, 250)]))
sure_gen = top_gen > md.metrics.SURE                              # (1000, 4)
gap = preds - chains.x0                                            # x0_hat(t) minus the chain's final sample
large = torch.nn.functional.avg_pool2d(gap.flatten(0, 1), 4).repeat_interleave(4, -1).repeat_interleave(4, -2)
large = large.reshape(gap.shape)
gap_large = gray_rmse(large.flatten(0, 1), 0).reshape(T, n_chains).numpy()
gap_detail = gray_rmse((gap - large).flatten(0, 1), 0).reshape(T, n_chains).numpy()


def from_t(ok, times):
    """The largest of `times` (decreasing) from which `ok` holds at every later time; 0 if it fails at the last."""
    bad = np.nonzero(~ok)[0]
    return int(times[0]) if len(bad) == 0 else (int(times[bad[-1] + 1]) if bad[-1] + 1 < len(times) else 0)


def first_t(ok, times):
    """The largest of `times` (decreasing) at which `ok` holds; 0 if it never does."""
    good = np.nonzero(ok)[0]
    return int(times[good[0]]) if len(good) else 0


commit = [from_t(read_gen[:, i] == read_gen[-1, i], gen_t) for i in range(n_chains)]   # md.commitment_times' t
rows = {}
for i in range(n_chains):
    rows[f"chain {i} (a {read_gen[-1, i]})"] = [
        top_gen[-1, i], first_t(sure_gen[:, i], gen_t), from_t(sure_gen[:, i], gen_t), commit[i],
        from_t(gap_large[:, i] < 0.1 * gap_large[0, i], gen_t), from_t(gap_detail[:, i] < 0.1 * gap_detail[0, i], gen_t)]
settle_large = np.array([v[4] for v in rows.values()])
settle_detail = np.array([v[5] for v in rows.values()])
print(md.table(rows, ["top probability of x_0", "first sure at t", "sure from t", "its digit from t",
                      "large scale within 10% from t", "detail within 10% from t"], header="chain (final digit)",
               digits=[2, 0, 0, 0, 0, 0],
               title="'from t': the largest t from which x0_hat keeps the property down to t = 1 (0: not at t = 1); "
                     "10%: RMSE to the final sample below a tenth of its value at t = 1000"))
print(f"large scale within 10% before detail by {md.mean_spread(settle_large - settle_detail, 0)} steps (mean +- std "
      f"over the 4 chains; smallest {int((settle_large - settle_detail).min())})")
q_t = grid_t[::-1]                                                 # section 1's receiver, decreasing t
sure_q = np.array([(classify(x0_hat[t])[1] > md.metrics.SURE).numpy() for t in q_t])   # (grid, 16)
for name, when in (("first sure at t", first_t), ("sure from t", from_t)):
    q_when = np.array([when(sure_q[:, i], q_t) for i in range(16)])
    print(f"section 1's receiver, 16 test digits: {name} = {np.median(q_when):.0f} (median; quartiles "
          f"{np.quantile(q_when, 0.25):.0f}, {np.quantile(q_when, 0.75):.0f})")
print(f"the sure fraction first reaches one half at t = {first_t(sure_gen.mean(1) >= 0.5, gen_t)} along the chains "
      f"(every t) and at t = {first_t(sure_q.mean(1) >= 0.5, q_t)} for the receiver (section 1's grid times)")
print(md.table({str(t): [sure_gen[T - t].mean() * 100, (read_gen[T - t] == read_gen[-1]).mean() * 100,
                         sure_q[list(q_t).index(t)].mean() * 100,
                         gap_large[T - t], gap_detail[T - t]]
                for t in (1000, 794, 630, 500, 396, 315, 250, 198, 140, 99, 49, 20, 10, 1)},
               ["chains: sure (%)", "chains: final digit (%)", "receiver: sure (%)", "RMSE large scale",
                "RMSE detail"], header="t", digits=[0, 0, 0, 1, 1],
               title="chains: of 4; receiver: of 16 test digits (section 1's x0_hat); RMSE of x0_hat to "
                     "the chain's final sample on 0..255, mean +- std over the 4 chains"))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
axes[0].plot(gen_t, sure_gen.mean(1), label="chains: x0_hat sure (of 4)")
axes[0].plot(gen_t, (read_gen == read_gen[-1]).mean(1), "--", label="chains: read as the final digit (of 4)")
axes[0].plot(q_t, sure_q.mean(1), "o", ms=3, label="receiver, x_t ~ q(x_t | x_0): sure (of 16)")
axes[0].axhline(0.5, color="k", ls=":", lw=0.8)
axes[0].set(xlabel="t (the chain runs from right to left)", ylabel="share of x0_hat", ylim=(-0.05, 1.05),
            title="what the classifier reads in x0_hat")
for part, values, style in (("large scale (4x4 block means)", gap_large, "-"), ("detail (the rest)", gap_detail, "--")):
    m, s = values.mean(1), values.std(1, ddof=1)
    axes[1].plot(gen_t, m, style, label=part + ", mean of 4 chains")
    axes[1].fill_between(gen_t, m - s, m + s, alpha=0.25)
axes[1].set(xlabel="t (the chain runs from right to left)", ylabel="RMSE of x0_hat to the final sample (0..255)",
            title="how far x0_hat still is from the end")
for ax in axes:
    ax.legend(fontsize=7)
plt.tight_layout()
plt.show()
strip = (1000, 800, 600, 500, 400, 300, 200, 100, 50, 1)
show(torch.stack([preds[T - t] for t in strip], 1).flatten(0, 1), "x0_hat along each chain at t = "
     + ", ".join(map(str, strip)), len(strip), rows=[f"chain {i}" for i in range(n_chains)]).figure.set_size_inches(7.5, 3.3)
plt.show()
print("the classifier reads x0_hat at t = " + ", ".join(map(str, strip)) + " as (* sure):")
for i in range(n_chains):
    print(f"  chain {i}: " + " ".join(f"{read_gen[T - t, i]}{'*' if sure_gen[T - t, i] else ' '}" for t in strip))

# %% [markdown]
# **Along a sampling chain the class comes first, then the large-scale structure, then the detail**: DDPM's
# "Large scale image features appear first and details appear last", measured on four MNIST chains. The sure
# fraction first reaches one half at $t = 542$ along the chains and at $t = 561$ for section 1's receiver (16 test
# digits, whose first sure $t$ has median 561, quartiles 500 and 561): the two first reach one half within the receiver's
# grid (500 and 561 bracket 542), though at single times the four chains and the 16 digits differ widely (printed
# above), so this does not test whether the chains' $x_t$ have the law of $q(x_t)$. Each chain keeps the
# digit it ends as from
# $t = 523$, 318, 351 and 207; its large-scale distance to the final sample falls below a tenth of its
# value at $t = 1000$ from $t = 119$ to 141, its detail's only from $t = 49$ to 92: large scale settles first in every chain, by 62
# $\pm$ 15 steps (at least 49). At $t = 396$, where the classifier is sure of all four, $\hat x_0$ is still
# 15.8 $\pm$ 1.7 gray levels from its end in large scale and 28.8 $\pm$ 2.5 in detail. Being sure is not for
# good: the chains are first sure at $t = 605$, 987, 510 and 964, but without a break only from $t = 236$, 250 and
# 337, and chain 3 ends as a 4 the classifier is unsure of (top probability 0.69). In the strip, $\hat x_0$ is a
# blurred blob at $t = 800$ (the classifier is sure of none there), and on the way the classifier reads three
# chains surely as another digit than their end: chain 0 as a 6 at $t = 600$, chains 1 and 2 as an 8 and a 1 at
# $t = 400$ (printed under the strip).

# ### The autoregressive reading (DDPM eq. 16)
#
# DDPM writes the bound as $L = D_\mathrm{KL}(q(x_T)\,\|\,p(x_T)) + \mathbb E_q\big[\sum_{t \ge 1}
# D_\mathrm{KL}(q(x_{t-1}\mid x_t)\,\|\,p_\theta(x_{t-1}\mid x_t))\big] + H(x_0)$ (eq. 16) and takes a diffusion of
# length $T = N$, the number of pixels, whose forward step $q(x_t \mid x_{t-1})$ **masks pixel $t$**, with $p(x_T)$
# all mass on the blank image. Then $L_T = 0$, and $q(x_{t-1} \mid x_t)$ is *copy pixels $t+1..N$ and reveal pixel
# $t$*: a fully expressive $p_\theta(x_{t-1} \mid x_t)$ predicts pixel $t$ from pixels $t+1, \dots, N$. That is an
# autoregressive model, decoding in the order $N, N-1, \dots, 1$. We check it exactly on a 2x2 binary image
# ($N = 4$) whose law favours equal neighbours.

# %%
N = 4
patterns = torch.tensor([[(k >> (N - 1 - i)) & 1 for i in range(N)] for k in range(2 ** N)])   # 16 images
neighbours = ((0, 1), (2, 3), (0, 2), (1, 3))                  # pixels 1 2 / 3 4 of a 2x2 image (0-based here)
energy = sum((patterns[:, a] == patterns[:, b]).float() for a, b in neighbours) + 0.5 * patterns.sum(1)
p_data = (0.8 * energy).exp() / (0.8 * energy).exp().sum()    # the data law q(x_0), 16 probabilities


def reveal_prob(x0_pixels, t):
    """p_theta(x_{t-1} | x_t) at its best: the law of pixel t given pixels t+1..N (0-based index t - 1)."""
    later = (patterns[:, t:] == x0_pixels[t:]).all(1)          # images agreeing with the pixels already decoded
    return p_data[later & (patterns[:, t - 1] == x0_pixels[t - 1])].sum() / p_data[later].sum()


print(md.table({"".join(map(str, patterns[k].tolist())): [-math.log2(p_data[k])] +
                [-math.log2(reveal_prob(patterns[k], t)) for t in range(N, 0, -1)] +
                [sum(-math.log2(reveal_prob(patterns[k], t)) for t in range(1, N + 1))] for k in (0, 5, 6, 15)},
               ["-log2 q(x_0)", "L_3", "L_2", "L_1", "L_0", "sum of the terms"], header="image", digits=3,
               title="bits; pixels 1 2 3 4 left to right"))
every = max(abs(sum(-math.log2(reveal_prob(patterns[k], t)) for t in range(1, N + 1)) + math.log2(p_data[k]))
            for k in range(2 ** N))
print(f"largest |bound - (-log2 q(x_0))| over all 16 images: {plotting.below(every, 1e-6)} bits (L_T = 0: x_T is always blank)")
g = torch.Generator().manual_seed(0)
draws = torch.full((20000, N), -1)                             # -1 = masked: x_T is the blank image
snapshots = [draws.clone()]
for t in range(N, 0, -1):                                      # reverse step t: decode pixel t given t+1..N
    agree = (draws[:, None, t:] == patterns[None, :, t:]).all(2).float() * p_data    # (draws, 16)
    p_one = (agree * (patterns[:, t - 1] == 1)).sum(1) / agree.sum(1)
    draws[:, t - 1] = (torch.rand(len(draws), generator=g) < p_one).long()
    snapshots.append(draws.clone())
freq = (draws[:, None, :] == patterns[None]).all(2).float().mean(0)
first = int(((draws == 0).any(1) & (draws == 1).any(1)).nonzero()[0])      # the first draw with both colours
chain = [snap[first] for snap in snapshots]
se = (p_data * (1 - p_data) / len(draws)).sqrt()
print(f"20,000 reverse-process draws: largest |frequency - q(x_0)| = {float((freq - p_data).abs().max()):.4f}, "
      f"{float(((freq - p_data).abs() / se).max()):.1f} standard errors")
fig, axes = plt.subplots(1, N + 2, figsize=(9, 1.9), gridspec_kw={"width_ratios": [1] * (N + 1) + [3]})
for ax, (step, x) in zip(axes, enumerate(chain)):
    img = np.where(x.numpy() < 0, 0.5, x.numpy()).reshape(2, 2)   # grey = masked
    ax.imshow(img, cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"x_{N - step}", fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
by_prob = torch.argsort(p_data, descending=True)
axes[-1].bar(np.arange(16) - 0.2, p_data[by_prob], 0.4, label="q(x_0)")
axes[-1].bar(np.arange(16) + 0.2, freq[by_prob], 0.4, label="decoded draws")
axes[-1].set(xlabel="the 16 images, most likely first", ylabel="probability", title="law of the reverse process")
axes[-1].legend(fontsize=7)
fig.suptitle("one reverse chain (grey = masked): pixel t is revealed at step t, from pixel 4 down to 1", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# **The bound's terms are the autoregressive model's conditional codelengths**, $L_{t-1} = -\log_2 p(x^{(t)} \mid
# x^{(t+1)}, \dots, x^{(N)})$, and they sum to $-\log_2 q(x_0)$ to rounding (printed above); the reverse process
# draws the data law (its largest deviation is 1.9 standard errors of the frequencies). Gaussian diffusion replaces
# "mask one pixel" by "add a little noise to every pixel": each step reveals a little about *all* pixels, coarse
# structure first (Going further, progressive generation). DDPM: "We can therefore interpret the Gaussian diffusion model (2) as a kind
# of autoregressive model with a generalized bit ordering that cannot be expressed by reordering data coordinates",
# and its length "is not restricted to equal the data dimension" (here $T = 1000$ against $28 \times 28 = 784$ pixels).
#
# ### The other two masks
#
# The centre square and the 80% random mask for the first 6 digits (section 4's table holds their numbers).

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
for ax, mask_name in zip(axes, ("centre square", "80% random")):
    mask = masks[mask_name]
    shown = [x_in[:6], (x_in * mask)[:6]] + [filled[mask_name, name][:6] for name in methods]
    show(torch.cat(shown), mask_name + " unknown", 6, ax,
         rows=["original", "input", "replacement", "RePaint r=3", "DDIM repl."])
plt.tight_layout()
plt.show()

# %% [markdown]
# **Disharmony**, RePaint's word for it (sec. 4.2), is what these pictures show. In the 80% panel, replacement draws
# a digit of its own and the known pixels stay where they were, as stray dots and stroke fragments beside it; in
# section 4's right-half grid, replacement's 5 (last column) gets strokes that do not join its known half. The two
# parts were never made to agree, RePaint argues (sec. 4.2: the known pixels are sampled "without considering the
# generated parts of the image"); no run here isolates that cause. Resampling gives the unknown part more steps to adapt to the known one; it does not remove
# every failure (in the right-half grid RePaint completes the 9 in the third column as a 5, and in the 80% panel it
# too leaves stray dots).

# %% [markdown]
# **Next:** notebook 09, conditional generation and guidance: asking the model for a class, with exact answers on
# the toy mixture and the shipped class-conditional U-Net on MNIST.
# The exercise for this notebook is `exercises/08_beyond_sampling.ipynb`: you write the replacement step of
# inpainting, $R(t)$ and one inpainting step, derive RePaint's jump $q(x_{t_\text{up}} \mid x_t)$, and measure
# when an exact model's decoded picture turns sharp.
