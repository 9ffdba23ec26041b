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
# # 05 · Fast sampling, consistency, interpolation and encoding
#
# **What this notebook shows.** DDIM's forward processes can be defined on any increasing subsequence
# $\tau_1 < \dots < \tau_S$ of $1..T$ with the same marginals (DDIM sec. 4.2), so a model trained with
# $T = 1000$ can sample in $S \ll T$ steps. We
#
# 1. build the subsequences (uniform and quadratic, as in DDIM's experiments);
# 2. make the toy analogue of DDIM's Table 1: sample quality for $S \in \{10, 20, 50, 100, 1000\}$ and
#    $\eta \in \{0, 0.2, 0.5, 1\}$ plus $\hat\sigma$, for a trained MLP and for the exact model, with wall-clock;
# 3. compute, for Gaussian data, the *exact* error of deterministic DDIM as a function of $S$;
# 4. look at what the deterministic sampler adds: sample consistency across $S$, interpolation in $x_T$,
#    and encoding data into $x_T$ and back.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import linalg

import minddim as md
from minddim import plotting

torch.manual_seed(0)
schedule = md.Schedule.linear()
T = schedule.T

# %% [markdown]
# ## 1. Subsequences $\tau$
#
# `md.timesteps(T, S, kind)` returns $\tau_1 < \dots < \tau_S$ in $1..T$. DDIM uses *uniform* spacing
# ($\tau_i = (i-1)T/S + 1$, the official code's `range(0, T, T // S)` shifted to 1-based time) and
# *quadratic* spacing ($\tau_i \approx 0.8T\,((i-1)/(S-1))^2 + 1$), which spends more steps at small $t$. The sampler
# walks $\tau_S \to \dots \to \tau_1 \to 0$ with the DDIM step of notebook 04.

# %%
for kind in ("uniform", "quadratic", "trailing"):
    print(f"{kind:>9}, S = 10:", md.timesteps(T, 10, kind).tolist())
fig, ax = plt.subplots(figsize=(6, 2.6))
ax.plot(np.arange(T + 1), schedule.alpha_bars, color="0.7", label=r"$\bar\alpha_t$")
for kind, marker in (("uniform", "o"), ("quadratic", "s")):
    tau = md.timesteps(T, 10, kind)
    ax.plot(tau, schedule.alpha_bars[tau], marker, label=f"{kind}, S = 10")
ax.set(xlabel="t"), ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 2. Quality against the number of steps (the toy analogue of DDIM's Table 1)
#
# We train the MLP with the course recipe (notebook 03) and sample 1,000 points for each setting from the
# same $x_T$. $\hat\sigma$ is DDPM's larger variance $\sigma^2 = 1 - \bar\alpha_{\tau_i}/\bar\alpha_{\tau_{i-1}}$ (DDIM sec. 5.1).
#
# Two measures of sample quality, both against fresh data from the true mixture (lower is better):
# the sliced Wasserstein distance (SW, in data units) to 10,000 points, and the MMD$^2$ (times 1000) to 2,000
# points. **Be honest about noise:** even perfect samples score above zero, and by a random amount. We
# measure that first, by scoring 1,000 fresh data points five times. SW turns out to be noisy here: it squares
# distances, so a slightly unequal share of points between far-apart modes moves it a lot. MMD is much steadier.

# %%
exact = md.GaussianMixtureDenoiser(*md.toy_mixture("eight_gaussians"), schedule)
mlp = md.train_toy("eight_gaussians", steps=3000, seed=0).ema
n = 1000
reference = exact.sample_data(10_000, torch.Generator().manual_seed(5))
metrics = {"SW": (md.sliced_wasserstein, reference),
           "MMD^2 x 1000": (lambda x, ref: 1000 * md.mmd(x, ref), reference[:2000])}
perfect = lambda seed: exact.sample_data(n, torch.Generator().manual_seed(100 + seed))  # noqa: E731
for name, (metric, ref) in metrics.items():
    mean, std = md.reference_spread(perfect, ref, metric)
    print(f"perfect samples: {name:<13} {mean:.3f} +- {std:.3f} (mean +- std over 5 draws of {n})")

x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(7))
Ss, etas = (10, 20, 50, 100, 1000), (0.0, 0.2, 0.5, 1.0, "sigma_hat")
table, seconds = {}, {}
for name, model in (("MLP", mlp), ("exact", exact)):
    for eta in etas:
        for S in Ss:
            start = time.perf_counter()
            x = md.sample(model, x_T, schedule, md.timesteps(T, S), eta=eta, generator=torch.Generator().manual_seed(8))
            seconds[name, eta, S] = time.perf_counter() - start
            table[name, eta, S] = [metric(x, ref) for metric, ref in metrics.values()]

for k, metric in enumerate(metrics):
    for name in ("MLP", "exact"):
        print(f"\n{name}, {metric} (rows: eta, columns: S)")
        print(f"{'eta':>10}" + "".join(f"{S:>8}" for S in Ss))
        for eta in etas:
            print(f"{str(eta):>10}" + "".join(f"{table[name, eta, S][k]:>8.3f}" for S in Ss))

# %% [markdown]
# The wall-clock of each setting is printed below (it varies with the machine, so the tests do not compare it).
# Sampling cost is linear in $S$: the network call is the whole cost.

# %%
for name in ("MLP", "exact"):
    print(f"{name}: wall-clock per setting, seconds for 1,000 samples (rows: eta, columns: S)")
    print(f"{'eta':>10}" + "".join(f"{S:>10}" for S in Ss))
    for eta in etas:
        print(f"{str(eta):>10}" + "".join(f"{seconds[name, eta, S]:>8.3f} s" for S in Ss))
    print("speed-up of S steps over S = 1000 (eta = 0): " + ", ".join(
        f"S = {S}: {seconds[name, 0.0, 1000] / seconds[name, 0.0, S]:.1f}x" for S in Ss[:-1]) + "\n")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
for ax, name in zip(axes, ("MLP", "exact")):
    for eta in etas:
        ax.plot(Ss, [table[name, eta, S][1] for S in Ss], "o-", label=f"eta = {eta}")
    ax.set(xscale="log", yscale="log", xlabel="S (steps)", ylabel="MMD^2 x 1000 to data", title=name)
axes[0].legend(fontsize=7)
plt.tight_layout()
plt.show()
plotting.scatter_panels(
    [md.sample(mlp, x_T, schedule, md.timesteps(T, S), eta=0.0) for S in Ss], [f"MLP, eta = 0, S = {S}" for S in Ss],
    reference=reference[:n])
plt.show()

# %% [markdown]
# Read the MMD tables as DDIM's Table 1 reads: with few steps ($S = 10, 20$) the error grows with $\eta$ and
# $\hat\sigma$, the large variance, is by far the worst; with more steps the differences shrink until they
# are within the spread of perfect samples (the first lines printed). The exact model's errors at small $S$
# are *pure discretization error*, the price of large steps with a perfect network. The SW tables show
# the same trend at $S = 10$ but are too noisy at 1,000 samples to separate most settings: always compare
# a metric with its spread on perfect data before reading a table.
#
# ## 3. The exact error of deterministic DDIM on Gaussian data
#
# For Gaussian data the exact $\epsilon$-model is affine in $x_t$, so every $\eta = 0$ step is affine, and so is
# the whole sampler: $x_0 = A x_T + b$. We read $A$ and $b$ off the package's sampler (run it on $0$ and the
# unit vectors). Samples then follow exactly $\mathcal N(b, AA^\top)$, and we can compute the 2-Wasserstein
# distance to the data $\mathcal N(m, C)$ in closed form, with no sampling noise at all.

# %%
_, means, covs = md.toy_mixture("gaussian")
gauss = md.GaussianDenoiser(means[0], covs[0], schedule)
m, C = gauss.mean.numpy(), gauss.cov.numpy()


def w2_gaussians(m1, C1, m2, C2):
    r2 = linalg.sqrtm(C2)
    cross = linalg.sqrtm(r2 @ C1 @ r2).real
    return math.sqrt(max(np.sum((m1 - m2) ** 2) + np.trace(C1 + C2 - 2 * cross), 0.0))


probe = torch.cat([torch.zeros(1, 2), torch.eye(2)]).double()
rows = []
for kind in ("uniform", "quadratic"):
    for S in (2, 5, 10, 20, 50, 100, 200, 1000):
        out = md.sample(gauss, probe, schedule, md.timesteps(T, S, kind), eta=0.0).numpy()
        b, A = out[0], (out[1:] - out[0]).T
        rows.append((kind, S, w2_gaussians(b, A @ A.T, m, C)))
print(f"{'kind':>10} {'S':>5} {'W2(model law, data)':>20}")
for kind, S, w in rows:
    print(f"{kind:>10} {S:>5} {w:>20.5f}")
uni = [(S, w) for k, S, w in rows if k == "uniform"]
slope = np.polyfit(np.log([S for S, _ in uni[2:]]), np.log([w for _, w in uni[2:]]), 1)[0]
print(f"log-log slope of the error against S (uniform, S >= 10): {slope:.2f}")

plt.figure(figsize=(4.5, 3))
for kind in ("uniform", "quadratic"):
    plt.loglog([S for k, S, _ in rows if k == kind], [w for k, _, w in rows if k == kind], "o-", label=kind)
plt.xlabel("S"), plt.ylabel("exact W2 error"), plt.legend()
plt.show()

# %% [markdown]
# The error falls like a power of $S$ (the slope printed above): the discretization error of an ODE
# solver, which DDIM's Euler view (notebook 04) predicts.
#
# ## 4. What a deterministic sampler gives you
#
# ### Sample consistency
#
# With $\eta = 0$ the sample is a function of $x_T$ alone. DDIM (sec. 5.2) observes that the *same* $x_T$
# decoded with different $S$ gives nearly the same sample: $x_T$ is a meaningful latent code.

# %%
decoded = {S: md.sample(mlp, x_T, schedule, md.timesteps(T, S), eta=0.0) for S in Ss}
typical = (decoded[1000] - decoded[1000].roll(1, 0)).norm(dim=1).median().item()
print(f"median distance between two different samples: {typical:.3f}")
for S in Ss[:-1]:
    d = (decoded[S] - decoded[1000]).norm(dim=1)
    print(f"S = {S:>4}: median distance to the S = 1000 sample from the same x_T {d.median().item():.3f}")
fig, ax = plt.subplots(figsize=(3.4, 3.4))
ax.scatter(reference[:n, 0], reference[:n, 1], s=1, color="0.85")
for k in range(40):
    path = torch.stack([decoded[S][k] for S in Ss])
    ax.plot(path[:, 0], path[:, 1], "-", color="C0", lw=0.8)
    ax.plot(path[-1, 0], path[-1, 1], "o", color="C3", ms=3)
ax.set(xlim=(-3.5, 3.5), ylim=(-3.5, 3.5), aspect="equal", title="same x_T, S = 10 ... 1000 (red)")
plt.show()

# %% [markdown]
# ### Interpolation
#
# Gaussian latents concentrate near a sphere of radius $\sqrt d$, and a straight line between two of them
# passes through the low-norm interior, which the model never saw at $t = T$. DDIM therefore interpolates
# with spherical linear interpolation (slerp). In 2-D we can see both the latent paths and where they land.

# %%
z0, z1 = torch.tensor([[1.4, -0.2]]), torch.tensor([[-0.9, 1.2]])
w = torch.linspace(0, 1, 41)
lat_slerp = md.slerp(z0, z1, w)[:, 0]
lat_lerp = (1 - w)[:, None] * z0 + w[:, None] * z1
tau = md.timesteps(T, 50)
fig, ax = plt.subplots(1, 2, figsize=(7, 3.4))
ax[0].add_patch(plt.Circle((0, 0), math.sqrt(2), fill=False, ls=":", color="0.5"))
for name, lat in (("slerp", lat_slerp), ("lerp", lat_lerp)):
    ax[0].plot(lat[:, 0], lat[:, 1], ".-", label=name, ms=3)
    out = md.sample(mlp, lat, schedule, tau, eta=0.0)
    ax[1].plot(out[:, 0], out[:, 1], ".-", label=name, ms=3)
    print(f"{name}: latent norms from {lat.norm(dim=1).min().item():.2f} to {lat.norm(dim=1).max().item():.2f}")
ax[1].scatter(reference[:n, 0], reference[:n, 1], s=1, color="0.85")
ax[0].set(title="latent path x_T", aspect="equal", xlim=(-2, 2), ylim=(-2, 2))
ax[1].set(title="decoded (eta = 0, S = 50)", aspect="equal", xlim=(-3.5, 3.5), ylim=(-3.5, 3.5))
ax[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Encoding data into $x_T$ and back
#
# Running the deterministic step forwards (`md.encode`, the Euler method of the ODE in increasing $t$)
# maps data to latents; decoding them should give the data back, up to discretization error that shrinks
# as $S$ grows (DDIM Table 2). With the exact model the remaining error is all discretization.

# %%
data = exact.sample_data(1000, torch.Generator().manual_seed(11))
print(f"{'S':>5} {'RMSE, MLP':>10} {'RMSE, exact':>12}")
for S in (10, 20, 50, 100, 200, 1000):
    tau = md.timesteps(T, S)
    errs = [(md.sample(model, md.encode(model, data, schedule, tau), schedule, tau, eta=0.0) - data).pow(2).mean().sqrt().item()
            for model in (mlp, exact)]
    print(f"{S:>5} {errs[0]:>10.4f} {errs[1]:>12.4f}")
latents = md.encode(exact, data, schedule, md.timesteps(T, 100))
print("latents of the data (exact model, S = 100): mean", latents.mean(0).numpy().round(2),
      "std", latents.std(0).numpy().round(2), "(the prior is N(0, I))")

# %% [markdown]
# ## Summary
#
# - A model trained on $T = 1000$ samples well with $S \ll T$ steps on a subsequence; with few steps the
#   deterministic sampler ($\eta = 0$) is the best choice, and $\hat\sigma$ the worst (the toy Table 1
#   above, measured by MMD against its spread on perfect samples).
# - For Gaussian data we computed the deterministic sampler's exact error: it falls as a power of $S$, like
#   an ODE solver's.
# - $x_T$ is a latent code: consistent across $S$, interpolable by slerp, and data can be encoded into it and
#   decoded back, more precisely as $S$ grows.
#
# **Exercise:** `exercises/05_subsequences_and_encoding.ipynb` asks you to implement the timestep
# subsequence, slerp and the encoder.
