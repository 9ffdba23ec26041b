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
# # 01 · The forward process
#
# **What this notebook shows.** DDPM (Ho et al., 2020) destroys data with a fixed Markov chain that adds
# a little Gaussian noise at each of $T$ steps. We will
#
# 1. apply the chain $q(x_t \mid x_{t-1})$ step by step to a 2-D data set;
# 2. derive the closed form $q(x_t \mid x_0)$ and check that it agrees with the chain (moments and histograms);
# 3. compare the linear and cosine schedules ($\beta_t$, $\bar\alpha_t$, SNR, and how fast each destroys the data);
# 4. see why $\bar\alpha_T$ must be close to zero;
# 5. pin down the notation: DDPM, DDIM and 0-based code (diffusers, the official DDIM code) side by side.
#
# Everything runs on a CPU in well under a minute.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

import minddim as md
from minddim import plotting

torch.manual_seed(0)
schedule = md.Schedule.linear()          # DDPM: beta from 1e-4 to 0.02 over T = 1000
print(schedule)

# %% [markdown]
# ## 1. One step of noise: $q(x_t \mid x_{t-1})$
#
# DDPM eq. (2): each step shrinks the previous point a little and adds noise of variance $\beta_t$,
#
# $$q(x_t \mid x_{t-1}) = \mathcal N\big(x_t;\ \sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I\big).$$
#
# The shrinking by $\sqrt{1-\beta_t}$ is what keeps the variance bounded: if $x_{t-1}$ has unit variance,
# so does $x_t$ ($(1-\beta_t)\cdot 1 + \beta_t = 1$). In code, one step is one line. We write it inline
# once, check that the package's `q_step` gives the same numbers, and use the package from then on.

# %%
x0 = md.toy_data("swiss_roll", 5000, seed=0)
t, noise = 300, torch.randn_like(x0)

beta = schedule.betas[t].item()
inline = math.sqrt(1 - beta) * x0 + math.sqrt(beta) * noise          # eq. (2), by hand
print("max |inline - md.q_step| =", f"{(inline - md.q_step(x0, t, schedule, noise)).abs().max().item():.1e}")

# %% [markdown]
# Running the chain from $t = 1$ to $T$ turns the swiss roll into a Gaussian blob:

# %%
shown = [0, 25, 50, 100, 200, 400, 1000]
chain, x = {0: x0}, x0
for t in range(1, schedule.T + 1):
    x = md.q_step(x, t, schedule)
    if t in shown:
        chain[t] = x
plotting.scatter_panels([chain[t] for t in shown], [f"t = {t}" for t in shown],
                        suptitle="the Markov chain q(x_t | x_{t-1}), applied step by step")
plt.show()

# %% [markdown]
# ## 2. Jumping to any $t$: $q(x_t \mid x_0)$
#
# Composing Gaussians gives a Gaussian. With $\alpha_t = 1-\beta_t$ and $\bar\alpha_t = \prod_{s\le t}\alpha_s$,
# unrolling two steps, $x_t = \sqrt{\alpha_t}\big(\sqrt{\alpha_{t-1}}x_{t-2} + \sqrt{1-\alpha_{t-1}}\,\epsilon'\big) + \sqrt{1-\alpha_t}\,\epsilon''$,
# and the two independent noises combine into one of variance $\alpha_t(1-\alpha_{t-1}) + 1 - \alpha_t = 1 - \alpha_t\alpha_{t-1}$.
# By induction (DDPM eq. 4):
#
# $$q(x_t \mid x_0) = \mathcal N\big(x_t;\ \sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I\big),
# \qquad x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon.$$
#
# This is what makes training cheap: no need to run the chain. **Check:** start 200,000 chains from one
# fixed point $x_0$ and compare their empirical mean and variance with the closed form.

# %%
n, point = 200_000, torch.tensor([1.0, -0.5], dtype=torch.float64)
x = point.expand(n, 2).clone()
rows = []
for t in range(1, schedule.T + 1):
    x = md.q_step(x, t, schedule)
    if t in (1, 10, 100, 500, 1000):
        ab = schedule.alpha_bars[t].item()
        rows.append((t, x[:, 0].mean().item(), math.sqrt(ab) * 1.0, x[:, 0].var().item(), 1 - ab))
print(f"{'t':>5} {'chain mean':>11} {'sqrt(ab) x0':>12} {'chain var':>10} {'1 - ab':>8}")
for t, m, m_th, v, v_th in rows:
    print(f"{t:>5} {m:>11.3f} {m_th:>12.3f} {v:>10.4f} {v_th:>8.4f}")
print(f"standard errors: mean about {math.sqrt(1 / n):.4f}, variance about {math.sqrt(2 / n):.4f} x variance")

# %% [markdown]
# The whole distribution agrees, not just two moments. Here is the first coordinate at $t = 100$ for the
# swiss roll: the chain run step by step against one jump with `q_sample`.

# %%
t = 100
jumped = md.q_sample(x0, t, schedule)
fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
for ax, k in zip(axes, (0, 1)):
    ax.hist(chain[t][:, k].numpy(), bins=60, density=True, alpha=0.5, label="chain, 100 steps")
    ax.hist(jumped[:, k].numpy(), bins=60, density=True, alpha=0.5, label="q_sample, one jump")
    ax.set_title(f"coordinate {k} at t = {t}", fontsize=9)
axes[0].legend(fontsize=8)
plt.show()
print("means :", chain[t].mean(0).numpy().round(2), "vs", jumped.mean(0).numpy().round(2))
print("stds  :", chain[t].std(0).numpy().round(2), "vs", jumped.std(0).numpy().round(2))

# %% [markdown]
# ## 3. Schedules: linear against cosine
#
# DDPM uses a linear schedule for $\beta_t$; Nichol & Dhariwal (2021) proposed a cosine schedule for
# $\bar\alpha_t$ itself, which destroys information more evenly. A useful summary is the signal-to-noise
# ratio $\mathrm{SNR}(t) = \bar\alpha_t / (1-\bar\alpha_t)$.

# %%
schedules = {"linear": schedule, "cosine": md.Schedule.cosine()}
fig, axes = plt.subplots(1, 3, figsize=(11, 2.8))
ts = np.arange(1, 1001)
for name, s in schedules.items():
    axes[0].plot(ts, s.betas[1:], label=name)
    axes[1].plot(ts, s.alpha_bars[1:], label=name)
    axes[2].plot(ts, np.log(s.snr[1:].numpy()), label=name)
axes[0].set(title=r"$\beta_t$", yscale="log", xlabel="t")
axes[1].set(title=r"$\bar\alpha_t$", xlabel="t")
axes[2].set(title=r"$\log \mathrm{SNR}(t)$", xlabel="t")
axes[0].legend()
plt.tight_layout()
plt.show()
for name, s in schedules.items():
    half = int((s.snr[1:] < 1).nonzero()[0]) + 1
    print(f"{name:>6}: alpha_bar_T = {s.alpha_bars[-1].item():.1e}, SNR falls below 1 at t = {half}")

# %% [markdown]
# How fast does each schedule destroy the data? We measure the distance (sliced Wasserstein, in data
# units) between $q(x_t)$ and the standard normal that the reverse process starts from.

# %%
gauss = torch.randn(5000, 2, generator=torch.Generator().manual_seed(1))
checkpoints = [1, 50, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
plt.figure(figsize=(5, 3))
for name, s in schedules.items():
    d = [md.sliced_wasserstein(md.q_sample(x0, t, s), gauss) for t in checkpoints]
    plt.plot(checkpoints, d, "o-", label=name)
    print(f"{name:>6}: distance to N(0, I) at t = 250, 500, 750:",
          [round(md.sliced_wasserstein(md.q_sample(x0, t, s), gauss), 2) for t in (250, 500, 750)])
plt.xlabel("t"), plt.ylabel("SW distance to N(0, I)"), plt.legend()
plt.show()

# %% [markdown]
# The linear schedule has essentially finished by $t \approx 600$: the last 40% of its steps act on pure
# noise. The cosine schedule keeps some structure until near the end.
#
# ## 4. Why $\bar\alpha_T$ must be close to zero
#
# Sampling starts from $p(x_T) = \mathcal N(0, I)$, so the forward process must really end there. The
# mismatch is the prior term of the bound, $L_T = \mathrm{KL}(q(x_T\mid x_0)\,\|\,\mathcal N(0,I))$, which
# no network can reduce. With the paper's endpoints but fewer steps, it is far from zero:

# %%
for T in (10, 100, 1000):
    s = md.Schedule.linear(T)
    LT = md.bits_per_dim(md.prior_term(x0.double(), s), x0).mean().item()
    print(f"T = {T:>4}: alpha_bar_T = {s.alpha_bars[-1].item():.2e}, L_T = {LT:.2e} bits per dimension")

# %% [markdown]
# With $T = 1000$, $L_T$ is of the order of $10^{-5}$ bits/dim, as the DDPM paper reports (sec. 4): the chain truly
# ends in noise. With $T = 10$ the same endpoints leave most of the signal in $x_T$, and a sampler that
# starts from pure noise would miss it.
#
# ## 5. Notation: DDPM, DDIM and 0-based code
#
# The two papers and the code bases use different symbols for the same numbers. This course uses the
# DDPM paper's symbols and its **1-based** time throughout.
#
# | quantity | DDPM paper | DDIM paper | `minddim` | diffusers / official DDIM code |
# |---|---|---|---|---|
# | noise added at step $t$ | $\beta_t$ | $1 - \alpha_t/\alpha_{t-1}$ | `schedule.betas[t]` | `betas[t-1]` |
# | signal kept up to $t$ | $\bar\alpha_t$ | $\alpha_t$ | `schedule.alpha_bars[t]` | `alphas_cumprod[t-1]` |
# | data | $x_0$ | $x_0$ | `alpha_bars[0] == 1` | no index |
# | times a model sees | $1..T$ | $1..T$ | `t` in `1..T` | `0..T-1` |
#
# So **DDIM's $\alpha_t$ is DDPM's $\bar\alpha_t$**, and a 0-based array's entry `k` is our time `k + 1`.
# Here are the first rows, computed as diffusers computes them:

# %%
betas_0based = np.linspace(1e-4, 0.02, 1000)                 # diffusers: torch.linspace(beta_start, beta_end, T)
alphas_cumprod = np.cumprod(1 - betas_0based)               # index k = 0..T-1
print(f"{'k':>3} {'alphas_cumprod[k]':>18} {'t = k+1':>8} {'alpha_bars[t]':>14}")
for k in range(4):
    print(f"{k:>3} {alphas_cumprod[k]:>18.6f} {k + 1:>8} {schedule.alpha_bars[k + 1].item():>14.6f}")
print("identical over all T:", np.allclose(alphas_cumprod, schedule.alpha_bars[1:].numpy(), rtol=1e-12))

# %% [markdown]
# The classic off-by-one: reading `alpha_bars[k]` with a 0-based `k` uses the noise level of the
# *previous* step. Near $t = 1$ that is not a rounding error: at $k = 0$ it would say "no noise at all".

# %%
for k in (0, 1, 10, 500):
    right, wrong = schedule.alpha_bars[k + 1].item(), schedule.alpha_bars[k].item()
    print(f"k = {k:>3}: noise std sqrt(1 - ab) right {math.sqrt(1 - right):.4f}, off by one {math.sqrt(1 - wrong):.4f}")

# %% [markdown]
# ## 6. The forward process, animated
#
# (The animation's HTML carries random element ids, so this one output is not compared by the tests.)

# %%
# NBVAL_IGNORE_OUTPUT
from IPython.display import HTML

frames_t = [0, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 400, 600, 1000]
frames = [md.q_sample(x0[:2000], t, schedule, generator=torch.Generator().manual_seed(0)) for t in frames_t]
HTML(plotting.animate_points(frames, [f"t = {t}" for t in frames_t]).to_jshtml())

# %% [markdown]
# ## Summary
#
# - One step $q(x_t\mid x_{t-1})$ shrinks by $\sqrt{1-\beta_t}$ and adds variance $\beta_t$; composed, it
#   gives the closed form $x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\epsilon$, which we checked
#   against 200,000 simulated chains.
# - The linear schedule ends at $\bar\alpha_T \approx 4\times10^{-5}$ and has destroyed the data by
#   $t \approx 600$; the cosine schedule destroys it more evenly.
# - $\bar\alpha_T \approx 0$ is what lets sampling start from $\mathcal N(0, I)$ ($L_T \approx 10^{-5}$ bits/dim).
# - DDIM's $\alpha_t$ is DDPM's $\bar\alpha_t$; 0-based code's `alphas_cumprod[k]` is our `alpha_bars[k+1]`.
#
# **Exercise:** `exercises/01_forward_process.ipynb` asks you to implement `q_sample`, the schedule's
# $\bar\alpha_t$ and one Markov step yourself, with checks that catch the usual slips.
