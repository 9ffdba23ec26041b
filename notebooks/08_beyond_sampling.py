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
# **What this notebook shows.** DDPM reads its trained model as a progressive lossy code (sec. 4.3: Algorithms 3-4,
# fig. 5 and Table 4 on CIFAR-10), writes the bound in an autoregressive form (eq. 16), and shows samples that share
# an $x_t$ (fig. 7) and interpolations (sec. 4.4, fig. 8) on CelebA-HQ. We do the same with the shipped MNIST U-Net
# of notebook 07 (no retraining, no labels: the model is unconditional), add inpainting, which DDPM does not show
# (the methods of Song et al. 2021 and RePaint), and measure each with the shipped MNIST classifier:
#
# 1. **progressive lossy compression** (DDPM Algorithms 3-4, fig. 5): the rate received so far and the distortion of
#    $\hat x_0$ against $t$, and where the bits go;
# 2. the **autoregressive reading** (DDPM eq. 16), worked exactly on a 4-pixel image;
# 3. **a shared $x_t$** (DDPM fig. 7): how much of a test digit survives noising to $t$;
# 4. **interpolation through $q$** (DDPM fig. 8), stochastic and deterministic, against mixing pixels;
# 5. **inpainting** with the unconditional model: replacement, RePaint's resampling and deterministic DDIM
#    replacement, on three masks.
#
# Every network evaluation costs a few milliseconds per image on a CPU, so each section states its budget in
# network evaluations.
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
classifier = md.pretrained("mnist_classifier")       # 99.06% test accuracy

show = plotting.show_images          # show(images, title, nrow, ax): a grid of images in [-1, 1]


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
# The bound (DDPM eq. 5) is a **codelength**. Suppose sender and receiver share the model and a source of random
# numbers. The sender draws $x_T \sim q(x_T \mid x_0)$ and transmits it coded with $p(x_T)$; then, for
# $t = T, \dots, 2$, it draws $x_{t-1} \sim q(x_{t-1} \mid x_t, x_0)$ and transmits it coded with
# $p_\theta(x_{t-1} \mid x_t)$, which the receiver can evaluate because it already holds $x_t$; finally $x_0$ with
# the decoder $p_\theta(x_0 \mid x_1)$ (Algorithm 3; Algorithm 4 is the receiver's side). A *relative-entropy
# code* (minimal random coding, Havasi et al. 2019) transmits a draw of $q$ using
# about $D_\mathrm{KL}(q \,\|\, p)$ bits when only $p$ is known to the receiver. So step $t$ costs $L_{t-1}$, the
# first message $L_T$, and the whole message costs $L_T + \sum_{t \ge 2} L_{t-1} + L_0$ = the bound. We build
# **no entropy coder**: relative-entropy coding needs about $2^{D_\mathrm{KL}}$ shared random candidates per
# message, and the last Gaussian reverse step of one digit ($L_1$) carries about 90 bits (the table below: $R(1) - R(2)$ =
# 0.12 bits/dim times 784 pixels), so the code exists on paper only; DDPM too uses the scheme to read the bound,
# and builds no codec. The bound's terms are the codelengths such a code would reach, up to
# a small overhead per step; that is why we can plot the rate without building the coder.
#
# At any time the receiver holds $x_t$ and can show its best guess $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,
# \epsilon_\theta(x_t, t))/\sqrt{\bar\alpha_t}$ (eq. 15): a lossy decoding at
#
# - **rate** $R(t) = L_T + \sum_{s > t} L_{s-1}$, the bits received so far (`md.progressive_rate`), and
# - **distortion** $D(t)$ = RMSE of $\hat x_0$ against $x_0$ on the $[0, 255]$ scale, with $x_t \sim q(x_t \mid x_0)$
#   (the marginal of the sender's chain).
#
# **Budget and estimator.** All $T$ terms cost one network evaluation each per digit. We need 16 digits for a
# spread, so we compute the terms only on a grid of 50 times (every $t \le 10$, where the terms change fastest,
# and 40 times spaced geometrically from 11 to 1000): `md.vlb_terms(..., times=grid_t)` draws
# $x_t \sim q(x_t \mid x_0)$ and evaluates the network only at those $t$, and returns their columns $L_{t-1}$
# (each an unbiased one-draw estimate), $L_T$, which is exact, and NaN in the other columns.
# Between grid times we interpolate $\log L_{t-1}$ linearly in $\log(t-1)$ (the terms are KL divergences, $> 0$)
# and sum. The rate is therefore an **estimate**; we measure its interpolation error by redoing it on every other
# grid time. The model we pass records $\hat x_0$ at each evaluation, so the same evaluations give $D(t)$ at every
# grid time.

# %%
digits, digit_labels = x_test[:16], test_labels[:16]
grid_t = np.unique(np.r_[1:11, np.geomspace(11, T, 40).round()].astype(int))
x0_hat = {}


def recording_model(x_t, t):
    """eps_theta, recording the receiver's x0_hat (eq. 15, clipped as vlb_terms clips it) at each evaluated t."""
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
print(f"bound R(0): {bound.mean():.2f} +- {bound.std(ddof=1):.2f} bits/dim (mean +- std over 16 digits)")
print(f"interpolation check, every other grid time: R(1) changes by {np.abs(coarse[:, 1] - rate[:, 1]).mean():.3f} "
      f"bits/dim on average (R(1) itself {rate[:, 1].mean():.2f})")
distortion = {t: gray_rmse(x0_hat[t], digits).numpy() for t in grid_t}         # (16,) per grid time
show_rows = (1000, 707, 500, 250, 99, 49, 20, 10, 5, 2, 1)
print(f"\n{'t':>5}{'rate R(t), bits/dim':>22}{'share sent':>13}{'RMSE of x0_hat, gray levels':>31}")
for t in show_rows + (0,):
    d = distortion[t] if t else np.zeros(16)
    print(f"{t:>5}{rate[:, t].mean():>14.3f} +- {rate[:, t].std(ddof=1):.3f}{(rate[:, t] / bound).mean():>11.1%}"
          f"{d.mean():>21.1f} +- {d.std(ddof=1):.1f}")
print("(mean +- std over 16 test digits; t = 0: x_0 itself, after L_0)")

# %% [markdown]
# The three panels of DDPM's fig. 5, for our 16 digits (mean and the band of $\pm$ one standard deviation over
# digits). The rate is drawn against $t$ on a log axis, since the interesting part is near $t = 0$.

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
# How much of the code is spent after the picture is already right? For each digit we find the earliest point of
# the decoding (the largest grid $t$) from which $\hat x_0$ stays within 2 gray levels (then 1) of the truth, and
# the share of its codelength still to come from there on.

# %%
print(f"{'RMSE below':>11}{'reached at t':>18}{'share of the bits still to send':>34}")
for level in (2.0, 1.0):
    reach, left = [], []
    for i in range(16):
        below = D[i] < level                                  # along grid_t, increasing t
        if not below[0]:
            continue
        last = len(grid_t) if below.all() else int(np.argmin(below))   # first grid time that is not below
        t_star = int(grid_t[last - 1])
        reach.append(t_star)
        left.append(1 - rate[i, t_star] / bound[i])
    print(f"{level:>8.0f} gl{np.median(reach):>12.0f} (median){np.mean(left):>20.1%} +- {np.std(left, ddof=1):.1%}"
          f"   ({len(reach)} of 16 digits)")
print(f"L_0 alone: {(L0 / bound).mean():.1%} +- {(L0 / bound).std(ddof=1):.1%} of the bound")
print(f"\n{'':<28}{'rate L_1..L_T':>14}{'distortion L_0':>16}{'bound':>7}{'RMSE at t = 1':>15}")
print(f"{'DDPM, CIFAR-10 (sec. 4.3)':<28}{1.78:>14.2f}{1.97:>16.2f}{3.75:>7.2f}{0.95:>15.2f}")
print(f"{'here, MNIST, 16 test digits':<28}{rate[:, 1].mean():>14.2f}{L0.mean():>16.2f}{bound.mean():>7.2f}"
      f"{distortion[1].mean():>15.2f}")

# %% [markdown]
# The same 16 digits (first rows) as the receiver would show them, decoded from $\hat x_0$ at decreasing $t$, that
# is, at increasing rate (printed under the grid).

# %%
cols = (1000, 707, 500, 353, 250, 176, 99, 49, 10, 1)
cells = torch.stack([x0_hat[t][:6] for t in cols], 1).reshape(-1, 1, 28, 28)
ax = show(cells, "x0_hat at t = " + ", ".join(map(str, cols)), len(cols))
ax.figure.set_size_inches(7, 4.4)
plt.show()
print(f"{'t':>26}" + "".join(f"{t:>7}" for t in cols))
print(f"{'rate R(t) (bits/dim)':>26}" + "".join(f"{rate[:, t].mean():>7.3f}" for t in cols))
print(f"{'x0_hat read as its label':>26}" + "".join(f"{int((classify(x0_hat[t])[0] == digit_labels).sum()):>4} /16"
                                                  for t in cols))

# %% [markdown]
# What the printed numbers say (means and standard deviations over the 16 digits):
#
# - **The picture arrives early, the bits late.** $\hat x_0$ is within two gray levels of the digit from $t = 10$
#   on (median over digits), when 75.8% $\pm$ 4.7% of the codelength is still to come; within one gray level from
#   $t = 3$, with 65.5% $\pm$ 6.9% still to come. $L_0$ alone, the last message, is 54.3% $\pm$ 5.6% of the bound.
#   From the other end: the classifier already reads $\hat x_0$ as the right digit for 15 of the 16 digits at
#   $t = 353$, after 0.029 bits/dim (under 2% of the bound: 0.029 / 1.60), and for all 16 from $t = 250$
#   (0.047 bits/dim, 2.9%). Most of the code goes to detail below one gray level; this is DDPM's reading of its fig. 5, that most of the lossless codelength goes to imperceptible detail.
# - **The estimator.** Halving the grid changes $R(1)$ by 0.053 bits/dim (7% of it), so that is a generous error
#   bar for the interpolated rates; the whole bound is 1.60 $\pm$ 0.32 bits/dim over the 16 digits.
# - **Beside DDPM's CIFAR-10 model** (its $L_\text{simple}$ model, the one with the best samples: Table 1, sec. 4.3
#   "Progressive coding" and appendix Table 4): a test bound of 3.75 bits/dim, split into a rate
#   $L_1 + \dots + L_T$ of 1.78 and $L_0$ = 1.97 bits/dim, an RMSE of 0.95 gray levels at $t = 1$ (Table 4's first
#   row: 1.77581 bits/dim, 0.95136). Ours: 1.60, 0.75, 0.85 and 0.49. The **shares** agree: $L_0$ is
#   54.3% $\pm$ 5.6% of our bound and $1.97 / 3.75$ = 52.5% of theirs, a difference inside our spread. The
#   absolute numbers do not compare: an MNIST digit is mostly black background, which costs almost nothing, and
#   nearly binary strokes, which the network can snap to the right gray level (hence our RMSE at $t = 1$ below
#   the noise level $127.5\sqrt{1 - \bar\alpha_1}$ = 1.3 gray levels); a CIFAR-10 photograph has texture
#   everywhere. Our model is also small (0.64 M parameters, trained on a CPU on $L_\text{simple}$, not on the
#   bound), so its bound is not a tuned likelihood.
#
# ## 2. The autoregressive reading (DDPM eq. 16)
#
# DDPM writes the bound as $L = D_\mathrm{KL}(q(x_T)\,\|\,p(x_T)) + \mathbb E_q\big[\sum_{t \ge 1}
# D_\mathrm{KL}(q(x_{t-1}\mid x_t)\,\|\,p_\theta(x_{t-1}\mid x_t))\big] + H(x_0)$ (eq. 16) and takes a diffusion
# of length $T = N$, the number of pixels, whose forward step $q(x_t \mid x_{t-1})$ **masks pixel $t$**, with
# $p(x_T)$ all mass on the blank image. Then $L_T = 0$, and $q(x_{t-1} \mid x_t)$ is "copy pixels $t+1..N$ and
# reveal pixel $t$": a fully expressive $p_\theta(x_{t-1} \mid x_t)$ must predict pixel $t$ from pixels
# $t+1, \dots, N$. That is an autoregressive model, and sampling from it is autoregressive decoding in the order
# $N, N-1, \dots, 1$. We check it exactly on a 2x2 binary image ($N = 4$) whose law favours equal neighbours.

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


print(f"{'image':>7}{'-log2 q(x_0)':>14}   bound terms L_3, L_2, L_1, L_0 (bits){'sum':>9}")
for k in (0, 5, 6, 15):
    x = patterns[k]
    bits = [-math.log2(reveal_prob(x, t)) for t in range(N, 0, -1)]   # t = 4: L_3, ..., t = 1: L_0
    print(f"{''.join(map(str, x.tolist())):>7}{-math.log2(p_data[k]):>14.3f}   " + "  ".join(f"{b:.3f}" for b in bits)
          + f"{sum(bits):>12.3f}")
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
shown = int(((draws == 0).any(1) & (draws == 1).any(1)).nonzero()[0])      # the first draw with both colours
chain = [snap[shown] for snap in snapshots]
se = (p_data * (1 - p_data) / len(draws)).sqrt()
print(f"20,000 reverse-process draws: largest |frequency - q(x_0)| = {float((freq - p_data).abs().max()):.4f}, "
      f"{float(((freq - p_data).abs() / se).max()):.1f} standard errors")
fig, axes = plt.subplots(1, N + 2, figsize=(9, 1.9), gridspec_kw={"width_ratios": [1] * (N + 1) + [3]})
for ax, (step, x) in zip(axes, enumerate(chain)):
    img = np.where(x.numpy() < 0, 0.5, x.numpy()).reshape(2, 2)   # grey = masked
    ax.imshow(img, cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"x_{N - step}", fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
order = torch.argsort(p_data, descending=True)
axes[-1].bar(np.arange(16) - 0.2, p_data[order], 0.4, label="q(x_0)")
axes[-1].bar(np.arange(16) + 0.2, freq[order], 0.4, label="decoded draws")
axes[-1].set(xlabel="the 16 images, most likely first", ylabel="probability", title="law of the reverse process")
axes[-1].legend(fontsize=7)
fig.suptitle("one reverse chain (grey = masked): pixel t is revealed at step t, from pixel 4 down to 1", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# The bound's terms are exactly the autoregressive model's conditional codelengths, $L_{t-1} = -\log_2
# p(x^{(t)} \mid x^{(t+1)}, \dots, x^{(N)})$, and they sum to $-\log_2 q(x_0)$ to rounding (printed above), and the
# reverse process draws the data law (its largest deviation is within a few standard errors of the frequencies).
# Gaussian diffusion replaces "mask one pixel" by "add a little noise to every pixel": each step reveals a little
# about *all* pixels, coarse structure first (section 1's grid). DDPM calls this "a kind of autoregressive model
# with a generalized bit ordering that cannot be expressed by reordering data coordinates", and notes that $T$
# can be smaller than the dimension (here $T = 1000$ against $784$ pixels of 8 bits) because every step can
# carry information about every coordinate.

# %% [markdown]
# ## 3. Samples that share $x_t$ (DDPM fig. 7)
#
# Noise a test digit to $x_t \sim q(x_t \mid x_0)$ once, then run the stochastic reverse process from that one
# $x_t$ several times. What the draws have in common is what $x_t$ still knows about the digit. DDPM's fig. 7
# (CelebA-HQ) finds that draws from the same $x_t$ share high-level attributes, more of them the smaller $t$.
# Here: one test digit of each class, $t \in \{250, 500, 750, 1000\}$, 6 draws from each shared $x_t$, each
# draw the $\eta = 1$ step on 20 steps of $[1, t]$ (`md.timesteps(t, 20, "trailing")`, which ends at $t$),
# $10 \times 4 \times 6 \times 20 = 4{,}800$ image evaluations. We measure the share of draws that the classifier
# reads as the source digit's class, and its spread over the 10 source digits.

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
print(f"{'t':>5}{'sqrt(alpha_bar_t)':>19}{'draws read as the source class':>34}{'lowest':>8}{'highest':>9}")
for t in t_shared:
    print(f"{t:>5}{math.sqrt(ab[t]):>19.3f}{same[t].mean():>24.1%} +- {same[t].std(ddof=1):.1%}"
          f"{same[t].min():>8.0%}{same[t].max():>9.0%}")
print("(mean +- std over the 10 source digits, 6 draws each; a random digit is one class in ten)")
fig, ax = plt.subplots(figsize=(5, 3))
m, s = np.array([same[t].mean() for t in t_shared]), np.array([same[t].std(ddof=1) for t in t_shared])
ax.plot(t_shared, m, "o-", label="mean over 10 source digits")
ax.fill_between(t_shared, m - s, m + s, alpha=0.3, label="+- 1 std over source digits")
ax.axhline(0.1, color="k", ls=":", label="chance: one class in ten")
ax.set(xlabel="t of the shared x_t", ylabel="share of draws in the source's class", ylim=(-0.05, 1.05),
       title="how much of a digit survives noising to t")
ax.legend(fontsize=7)
plt.show()
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
for ax, c in zip(axes, (2, 5, 7)):
    rows = [torch.cat([src[c:c + 1], shared[t][c:c + 1].clamp(-1, 1), drawn[t][c * n_draws:(c + 1) * n_draws]])
            for t in t_shared]
    show(torch.cat(rows), f"source {c}; rows t = 250, 500, 750, 1000:\nsource, x_t, 6 draws", n_draws + 2, ax)
plt.tight_layout()
plt.show()

# %% [markdown]
# At $t = 250$ the draws keep the source's class (95.0% $\pm$ 15.8% of them; the lowest source digit 50%), and
# in the grid its pose and stroke width too; they differ in details. At $t = 500$ the class survives in
# 55.0% $\pm$ 42.3% of the draws, and the spread is the finding: for some sources every draw keeps the class,
# for others none does. At $t = 750$ and $t = 1000$ the share, 10.0% $\pm$ 11.7% and 11.7% $\pm$ 11.2%, is
# chance (one class in ten): the weight $\sqrt{\bar\alpha_t}$ of the digit in $x_t$ is 0.058 and 0.006 there.
# This is DDPM's fig. 7 on MNIST: high-level features (here the class) are fixed early in the reverse process,
# while $t$ is still large, and the remaining steps fill in details, the split that section 1 measured in bits.
# DDPM's fig. 7 shows the same effect on 256x256 faces, as pictures without a measurement; here the class is
# lost between $t = 250$ and $t = 750$.
#
# ## 4. Interpolation through $q$ (DDPM fig. 8)
#
# DDPM interpolates two images in the latent space of $q$: noise both to the same $t$, mix
# $\bar x_t = (1 - \lambda) x_t + \lambda x'_t$, and decode with the reverse process. We noise both digits with the
# **same** $\epsilon$ (so $\bar x_t$ is a proper draw of $q$ for the pixel mix, with noise of the right size) and
# decode (a) with the $\eta = 1$ step with the **same** sampling noise for every $\lambda$ (DDPM's "we fixed the
# noise for different values of $\lambda$"), and (b) with the deterministic DDIM step ($\eta = 0$); 20 steps of
# $[1, t]$ each, for $t = 250$, 500 and 750, and 9 values of $\lambda$. For contrast, mixing the pixels. Three
# pairs of section 3's source digits.

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
    show(torch.cat([paths[k][i] for k in order]), f"source {pairs[i][0]} -> source {pairs[i][1]}", 9, ax)
fig.suptitle("rows: " + ", ".join(order) + "; columns: lambda = 0, 1/8, ..., 1", fontsize=9)
plt.tight_layout()
plt.show()
print("the classifier's reading along each path (lambda = 0 .. 1, the three pairs), and over the 7 inner images of")
print("each path: the share it is sure of (top probability > 0.9), and the share read as one of the pair's classes")
print(f"{'path':<10}{'readings':<32}{'sure':>15}{'one of the pair':>20}")
ends = torch.tensor(pairs)
for k in order:
    labels, conf = (v.reshape(3, 9)[:, 1:-1] for v in classify(paths[k].flatten(0, 1)))
    readings = " | ".join("".join(map(str, row.tolist())) for row in classify(paths[k].flatten(0, 1))[0].reshape(3, 9))
    sure = (conf > 0.9).double().mean(1).numpy()
    of_pair = ((labels == ends[:, :1]) | (labels == ends[:, 1:])).double().mean(1).numpy()
    print(f"{k:<10}{readings:<32}{sure.mean():>8.0%} +- {sure.std(ddof=1):>3.0%}{of_pair.mean():>13.0%} +- "
          f"{of_pair.std(ddof=1):>3.0%}")
print("(mean +- std over the 3 pairs)")

# %% [markdown]
# At $t = 250$ both decoders walk from one source to the other: every inner image is read as one of the pair's
# classes (DDIM 100%, DDPM 95% $\pm$ 8%), the class switches once along each DDIM path (DDPM's first path passes
# through one image read as a 4), and the grid shows whole digits morphing (a 0 opening into a 1) where pixel mixing shows two faded digits on top of each other. The classifier
# does not separate the two by confidence: it is sure of 81% $\pm$ 8% of the pixel mixes against 95% $\pm$ 8%
# (DDPM) and 86% $\pm$ 14% (DDIM), differences inside the spread of three pairs. From larger $t$ the sources fade,
# as section 3 predicts. At $t = 500$ they survive for some pairs and not for others (48% $\pm$ 41% of the DDPM
# inner images are of the pair's classes; the 0 -> 1 path is a 6 from end to end); at $t = 750$, with the shared
# noise, each path is essentially one digit, often neither source (0% of the DDPM-750 inner images). DDPM
# reports the same tendency on CelebA-HQ faces (sec. 4.3, "Interpolation", and its appendix fig. 9): "larger $t$
# results in coarser and more varied interpolations, with novel samples at $t = 1000$". The DDIM paths are
# deterministic functions of $\lambda$, the property DDIM sec. 5.3 uses to interpolate in $x_T$ (notebook 07 does
# it by slerp); DDPM's stochastic decoder gives a coherent path here only because its noise is shared across
# $\lambda$.
#
# ## 5. Inpainting with an unconditional model
#
# Given the pixels where the mask $m$ is 1, fill in the others. The **replacement** method (Song et al. 2021,
# app. I.2; RePaint eq. 8) runs the reverse process and after every step overwrites the known pixels with a fresh
# draw of $q(x_{t_\text{prev}} \mid x_0)$: $x_{t_\text{prev}} \leftarrow m \odot q\text{-draw} + (1 - m) \odot
# x_{t_\text{prev}}$. The model never sees that the two parts must agree, only that its input looks like a
# noisy image; the unknown part follows the known part only through the model's denoising. **RePaint** (Lugmayr
# et al. 2022, sec. 4.2) therefore *resamples*: it noises $x_t$ back up a few steps with the forward process and
# walks down again, several times, so that the unknown pixels can adapt to the known ones. `md.inpaint` does
# both on the sampler's one path (the DDIM step of eq. 12, then `md.replace_known`), and with $\eta = 0$ gives
# a replacement whose unknown pixels get no fresh noise (the known ones are still a fresh draw of $q$ at every step).
#
# **Budget.** RePaint's paper uses $T = 250$ steps with $r = 10$ resamplings (jumps of $j = 10$), about ten times
# the evaluations of one pass. We cannot afford that; we compare the three methods **at equal cost, about 25
# network evaluations per image**: replacement on 25 steps ($\eta = 1$), RePaint on 10 steps with $r = 3$ and jumps
# of 2 ($\eta = 1$, 26 evaluations, counted from `md.repaint_walk`) and DDIM replacement on 25 steps ($\eta = 0$).
# Three masks: the right half unknown, the centre 12x12 square unknown, 80% of the pixels unknown at random (a new
# mask per digit). 72 random test digits in three disjoint groups of 24; each group has its own digits and its
# own noise, and we report the mean and the standard deviation over the three groups (a rough spread: three
# values). $72 \times 3 \times 76$ = 16,416 image evaluations. Two references: the classifier on the masked digit with the unknown pixels left black
# (the background), and on the original digits.

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
for name, kw in methods.items():
    walk = md.repaint_walk(len(kw["timesteps"]), kw.get("resample", 1), kw.get("jump", 1))
    print(f"{name:<12} network evaluations per image: {sum(j < i for i, j in zip(walk[:-1], walk[1:]))}")


def by_group(values):
    """Per-image values -> (mean, std) over the groups of digits."""
    per_group = np.asarray(values, dtype=float).reshape(n_groups, n_per).mean(1)
    return per_group.mean(), per_group.std(ddof=1)


print(f"the classifier on the {len(x_in)} original digits: " + "{:.1%} +- {:.1%} agree with the label".format(
    *by_group(classify(x_in)[0] == y_in)))
filled = {}
rows = []
for mask_name, mask in masks.items():
    unknown = 1 - mask
    blank = x_in * mask - unknown                          # unknown pixels left black (-1)
    rows.append((mask_name, "left black", (classify(blank)[0] == y_in).double().numpy(), gray_rmse(blank, x_in, unknown).numpy()))
    for name, kw in methods.items():
        out = md.inpaint(model, x_in, mask, schedule, generator=torch.Generator().manual_seed(6), clip_x0=1.0,
                         progress=True, **kw)
        filled[mask_name, name] = out
        rows.append((mask_name, name, (classify(out)[0] == y_in).double().numpy(), gray_rmse(out, x_in, unknown).numpy()))
print(f"\n{'':<28}{'classifier agrees with label':>30}{'RMSE on unknown pixels (0..255)':>34}")
print(f"{'mask':<15}{'method':<13}{'':>13}{'paired':>17}{'':>17}{'paired':>17}")
for mask_name, name, agree, err in rows:
    base = next(r for r in rows if r[:2] == (mask_name, "replacement"))
    paired = [by_group(np.asarray(v) - np.asarray(w)) for v, w in ((agree, base[2]), (err, base[3]))]
    cells = [f"{by_group(agree)[0]:>6.1%} +- {by_group(agree)[1]:>5.1%}", f"{paired[0][0]:>+6.1%} +- {paired[0][1]:>5.1%}",
             f"{by_group(err)[0]:>6.1f} +- {by_group(err)[1]:>4.1f}", f"{paired[1][0]:>+6.1f} +- {paired[1][1]:>4.1f}"]
    if name == "replacement":
        cells[1], cells[3] = "(reference)", "(reference)"
    print(f"{mask_name:<15}{name:<13}{cells[0]:>15}{cells[1]:>17}{cells[2]:>17}{cells[3]:>17}")
print(f"(mean +- std over {n_groups} disjoint groups of {n_per} test digits, each with its own noise; paired: minus")
print(" replacement's value on the same digits, then mean +- std over the groups)")

# %% [markdown]
# The right-half mask for the first 8 digits: the original, the input (unknown pixels grey), and each method's
# completion. Plain replacement's **disharmony** shows where the two halves meet.

# %%
unknown = 1 - masks["right half"]
shown = [x_in[:8], (x_in * masks["right half"])[:8]] + [filled["right half", name][:8] for name in methods]
ax = show(torch.cat(shown), "rows: original, known left half (right half grey), replacement, RePaint r=3, "
          "DDIM replacement", 8)
ax.figure.set_size_inches(6, 4.4)
plt.show()
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
for ax, mask_name in zip(axes, ("centre square", "80% random")):
    mask = masks[mask_name]
    shown = [x_in[:6], (x_in * mask)[:6]] + [filled[mask_name, name][:6] for name in methods]
    show(torch.cat(shown), f"{mask_name}: original, input, replacement, RePaint, DDIM", 6, ax)
plt.tight_layout()
plt.show()

# %% [markdown]
# What the table says, at equal cost (about 25 evaluations per image), against its spread over the three groups:
#
# - **Resampling lowers the error.** On the same digits RePaint's completions are closer to the truth than
#   replacement's for all three masks: paired RMSE $-9.3 \pm 5.2$ gray levels (right half, 1.8 times its spread),
#   $-20.2 \pm 6.7$ (centre square) and $-8.9 \pm 3.1$ (80% random), the last two about three times their spread.
#   Whether the classifier then recognizes the digit more often these 72 digits cannot say: the agreement
#   differences (+9.7% $\pm$ 8.7%, +4.2% $\pm$ 19.1%, +4.2% $\pm$ 8.3%) are each about one spread or less. RePaint (Lugmayr et al. 2022) resamples
#   with far more compute ($r = 10$, $j = 10$ on $T = 250$), and its ablation (sec. 5.6, Table 2: 32 ImageNet images,
#   wide masks) makes the same equal-cost comparison as ours: resampling lowers LPIPS from 0.168 ($T = 250$,
#   $r = 1$) to 0.134 ($T = 250$, $r = 4$), while slowing down to $T = 1000$ plain steps gives 0.161. Ours is that
#   comparison at a small budget: $r = 3$ on 10 steps against 25 plain steps.
# - **Noise-free steps for the unknown pixels do not help.** DDIM replacement ($\eta = 0$) has a higher RMSE than replacement
#   on all three masks: +4.2 $\pm$ 1.6 and +6.6 $\pm$ 2.6 (right half, 80% random: about 2.5 times their spread)
#   and +7.9 $\pm$ 6.9 (centre square: about one spread); its agreement differences are at most about one spread. A
#   plausible reason: with $\eta = 0$ the unknown pixels get no fresh noise, so nothing helps them move away from a
#   start that contradicts the known pixels.
# - **Filling in is not the same as recognizing.** For the right half, the classifier reads the bare left half
#   (right half left black) correctly for 84.7% $\pm$ 4.8% of the digits, more often than after replacement (paired
#   +15.3% $\pm$ 2.4%), although every method's RMSE beats leaving it black (88.2 against 70.0 to 83.6): a completion
#   is one plausible digit, and for an ambiguous half it may be another digit (in the first figure, replacement and
#   RePaint both complete the 0 in the fourth column as an 8). RMSE also penalizes a plausible but different
#   completion as much as a bad one; the fill with the least RMSE would be the posterior mean, a blurred average, not
#   a sample. For the centre square the completions may help the classifier (replacement +19.4% $\pm$ 10.5% over
#   leaving the square black, under twice its spread).
# - **Disharmony.** In the 80% panel, replacement draws a digit of its own, and the known pixels stay where they
#   were, as stray dots and stroke fragments beside it; in the right-half figure, replacement's 5 (last column) gets
#   strokes that do not join its known half. The two parts were never made to agree: at every step the model sees
#   only a noisy image, and the known pixels enter it only as a fresh draw of $q$. Resampling gives the unknown part
#   more steps to adapt to the known one; it does not remove every failure (RePaint's row in the right-half figure
#   completes the 9 in the third column as a 5).
#
# ## Summary
#
# - **Progressive coding:** reading the reverse chain as a code, the rate received by time $t$ is the sum of the
#   bound's terms $L_t, \dots, L_T$ (`md.progressive_rate`). On MNIST the class is readable after under 3% of the bits (2.9% at $t = 250$),
#   $\hat x_0$ is within two gray levels with three quarters of the bits still to come, and $L_0$ is about half of
#   the bound, the share DDPM reports for CIFAR-10.
# - **Autoregression:** a diffusion that masks one pixel per step is an autoregressive model whose bound is exact;
#   Gaussian diffusion reveals all pixels a little at a time, coarse structure first.
# - **Shared $x_t$:** a digit's class survives noising to $t = 250$ almost always, to $t = 500$ in about half the
#   draws (for some digits in every draw, for others in none), and from $t = 750$ only at chance.
# - **Interpolation:** decoded from $t = 250$, mixes of two noised digits become digits that morph from one to the
#   other; from $t = 500$ on the sources survive only for some pairs, and DDPM's decoding from $t = 750$ loses them.
# - **Inpainting** with the unconditional model (`md.inpaint`): at equal cost RePaint's resampling lowers the
#   error on the unknown pixels for every mask, by about three spreads for the centre square and for scattered
#   known pixels; the deterministic variant does not help.

