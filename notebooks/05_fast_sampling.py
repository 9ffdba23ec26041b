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
# **You will be able to:** sample a model trained on $T = 1000$ steps in $S \ll T$ steps, measure what that costs
# in sample quality against the spread of perfect samples (a toy DDIM Table 1, over seeds), and use $x_T$ as a
# latent code: consistency across $S$, interpolation, encoding and decoding.
#
# **You need first:** notebook 04 (DDIM's $q_\sigma$, $\eta$ and its step, eq. 12; the ODE view, its section 5) and notebook
# 03 (the trained MLP; SW, MMD² and the perfect-sample band, section 3); maths: Gaussian covariances, and what
# a first-order ODE solver's error is.
#
# **Time:** about 30 min to read; runs in about 85 s on a 2-core CPU (one thread, AVX2 kernels).
#
# DDIM's forward processes can be defined on any increasing subsequence
# $\tau_1 < \dots < \tau_S$ of $1..T$ with the same marginals (DDIM sec. 4.2), so a model trained with
# $T = 1000$ can sample in $S \ll T$ steps. We
#
# 1. build the subsequences (uniform and quadratic, as in DDIM's experiments);
# 2. make the toy analogue of DDIM's Table 1: sample quality for $S \in \{10, 20, 50, 100\}$ and
#    $\eta \in \{0, 0.2, 0.5, 1\}$ plus $\hat\sigma$, for a trained MLP and for the exact model, over five seeds,
#    beside the paper's table, with wall-clock;
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
ax.set(xlabel="t", ylabel=r"$\bar\alpha_t$", title="where the S = 10 subsequences sample the schedule"), ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 2. Quality against the number of steps (the toy analogue of DDIM's Table 1)
#
# We load the MLP that notebook 03 trains (its recipe, training seed 0; shipped as `md.pretrained("eight_gaussians_mlp")`) and sample
# $n = 1{,}000$ points for each setting, $S \in \{10, 20, 50, 100\}$ and $\eta \in \{0, 0.2, 0.5, 1\}$ plus
# $\hat\sigma$, DDPM's larger variance $\sigma^2 = 1 - \bar\alpha_{\tau_i}/\bar\alpha_{\tau_{i-1}}$ (DDIM sec. 5.1).
# Every setting is run with **five seeds**: seed $k$ fixes both $x_T$ and the sampler's noise, and the same
# $x_T$ is used by every setting. We do the same with the exact model of the mixture, which has no
# approximation error at all: what it gets wrong is the sampler's discretization error alone.
#
# Two measures of sample quality, both against fresh data from the true mixture (lower is better; notebook 03,
# section 3 defines both and the perfect-sample band): the sliced Wasserstein distance (SW, in data units) to 2,000
# points, and the MMD$^2$ (times 1000) to 1,000 points. **Be honest about noise:** even perfect samples do not score zero, and they score a random amount.
# We measure that first, by scoring ten fresh draws of 1,000 data points. (The MMD$^2$ estimate is unbiased
# over both sample sets, but we keep one fixed reference set, so perfect samples average a little below
# zero here: the band of perfect samples, not zero, is the floor.)

# %%
exact = md.GaussianMixtureDenoiser(*md.toy_mixture("eight_gaussians"), schedule)
mlp = md.pretrained("eight_gaussians_mlp")   # notebook 03: md.train_toy("eight_gaussians", steps=3000, seed=0).ema
n, seeds = 1000, (0, 1, 2, 3, 4)
reference = exact.sample_data(10_000, torch.Generator().manual_seed(5))
metrics = {"SW": (md.sliced_wasserstein, reference[:2000]),
           "MMD^2 x 1000": (lambda x, ref: 1000 * md.mmd(x, ref), reference[:1000])}
perfect = lambda seed: exact.sample_data(n, torch.Generator().manual_seed(100 + seed))  # noqa: E731
floor = {name: md.reference_spread(perfect, ref, metric, repeats=10) for name, (metric, ref) in metrics.items()}
for name, (mean, std) in floor.items():
    print(f"perfect samples: {name:<13} {mean:6.3f} +- {std:.3f} (mean +- std over 10 draws of {n})")

Ss, etas = (10, 20, 50, 100), (0.0, 0.2, 0.5, 1.0, "sigma_hat")
x_Ts = {seed: torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)) for seed in seeds}
scores = {}  # (model, eta, S) -> array (seed, metric)
for name, model in (("MLP", mlp), ("exact", exact)):
    for eta in etas:
        for S in Ss:
            rows = []
            for seed in seeds:
                x = md.sample(model, x_Ts[seed], schedule, md.timesteps(T, S), eta=eta,
                              generator=torch.Generator().manual_seed(1000 + seed))
                rows.append([metric(x, ref) for metric, ref in metrics.values()])
            scores[name, eta, S] = np.array(rows)

for k, (metric, digits) in enumerate((("SW", 3), ("MMD^2 x 1000", 2))):
    for name in ("MLP", "exact"):
        mean, std = floor[metric]
        print(f"\n{name}, {metric}: mean +- std over {len(seeds)} seeds (perfect samples: {mean:.{digits}f} +- {std:.{digits}f})")
        print(f"{'eta':>10}" + "".join(f"{'S = ' + str(S):>15}" for S in Ss))
        for eta in etas:
            cells = [scores[name, eta, S][:, k] for S in Ss]
            print(f"{str(eta):>10}" + "".join(f"{c.mean():>8.{digits}f} +-{c.std(ddof=1):>5.{digits}f}" for c in cells))

# %% [markdown]
# DDIM's Table 1 measures the same grid on CIFAR-10 with FID (lower is better; one trained U-Net, one
# number per cell, no spread reported). We print it beside ours. FID and MMD$^2$ are different quantities on
# different data, so compare the *orderings* and how fast each row falls, not the values.

# %%
ddim_table1 = {  # DDIM (Song et al., 2021), Table 1, CIFAR-10 32 x 32, FID; columns S = 10, 20, 50, 100, 1000
    0.0: (13.36, 6.84, 4.67, 4.16, 4.04), 0.2: (14.04, 7.11, 4.77, 4.25, 4.09), 0.5: (16.66, 8.35, 5.25, 4.46, 4.29),
    1.0: (41.07, 18.36, 8.01, 5.78, 4.73), "sigma_hat": (367.43, 133.37, 32.72, 9.99, 3.17)}
print("DDIM Table 1, CIFAR-10 FID" + " " * 14 + f"| ours, exact model, MMD^2 x 1000 (mean of {len(seeds)} seeds)")
print(f"{'eta':>10}" + "".join(f"{S:>8}" for S in (10, 20, 50, 100, 1000)) + "  |" + "".join(f"{S:>7}" for S in Ss))
for eta in etas:
    print(f"{str(eta):>10}" + "".join(f"{v:>8.2f}" for v in ddim_table1[eta]) + "  |"
          + "".join(f"{scores['exact', eta, S][:, 1].mean():>7.2f}" for S in Ss))

# %% [markdown]
# How long does each $S$ take? We decode seed 0's $x_T$ with the MLP and $\eta = 0$ for every $S$, now including
# $S = 1000$, the full chain. The wall-clock varies with the machine, so the tests do not compare it.
# Sampling cost is nearly linear in $S$: the network call is almost the whole cost.

# %%
decoded, seconds = {}, {}
for S in Ss + (1000,):
    start = time.perf_counter()
    decoded[S] = md.sample(mlp, x_Ts[0], schedule, md.timesteps(T, S), eta=0.0)
    seconds[S] = time.perf_counter() - start
print(f"MLP, eta = 0, wall-clock for {n} samples: " + ", ".join(f"S = {S}: {seconds[S]:.3f} s" for S in seconds))
print("speed-up over S = 1000: " + ", ".join(f"S = {S}: {seconds[1000] / seconds[S]:.1f}x" for S in Ss))

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
mean, std = floor["MMD^2 x 1000"]
for ax, name in zip(axes, ("MLP", "exact")):
    ax.axhspan(mean - std, mean + std, color="0.85", label="perfect samples, mean +- std")
    for j, eta in enumerate(etas):
        values = np.array([scores[name, eta, S][:, 1] for S in Ss])
        ax.errorbar(np.array(Ss) * 1.06 ** (j - 2), values.mean(1), yerr=values.std(1, ddof=1), fmt="o-", ms=4,
                    capsize=3, label=f"eta = {eta}")
    ax.set(xscale="log", xticks=Ss, xticklabels=[str(S) for S in Ss], xlabel="S (steps)",
           title=f"{name}: mean +- std over {len(seeds)} seeds")
axes[0].set_ylabel("MMD^2 x 1000 to data")
axes[0].legend(fontsize=7)
plt.tight_layout()
plt.show()
plotting.scatter_panels([decoded[S] for S in decoded], [f"MLP, eta = 0, S = {S}" for S in decoded],
                        reference=reference[:n])
plt.show()

# %% [markdown]
# **What the tables show.** Read each cell against its seed spread and against the band of perfect samples
# ($-1.13 \pm 1.42$ for MMD$^2 \times 1000$, i.e. $-2.55$ to $0.29$). We call a difference noise when it is smaller
# than the larger of the two cells' standard deviations.
#
# - **$S = 10$:** every setting is far above the band (7.3 to 38.6), so the error is the sampler's. $\hat\sigma$
#   is by far the worst (38.6 MLP, 33.1 exact). $\eta = 1$ has the next-highest mean (12.8 and 10.9, against
#   7.3 to 9.0 for $\eta \le 0.5$): beyond the spreads for the MLP, but for the exact model its gap to
#   $\eta = 0$ (2.6) is within $\eta = 0$'s spread (2.7). $\eta = 0$, $0.2$ and $0.5$ cannot be ordered: their
#   means lie within one another's seed spread ($\eta = 0$: $9.0 \pm 2.6$ MLP, $8.2 \pm 2.7$ exact).
# - **$S = 20$:** $\hat\sigma$ is still clearly worse (15.4 MLP, 6.9 exact); the four other settings (0.3 to 3.1)
#   are within their spreads of one another.
# - **$S = 50, 100$:** the exact model is inside the band for every setting (means from $-2.14$ to $0.05$). For
#   the MLP only $\hat\sigma$ at $S = 50$ ($5.6 \pm 1.3$) still stands out. The $\eta = 0$ rows barely change
#   from $S = 50$ to $S = 100$ (2.13 and 2.29; $-0.53$ and $-0.60$): a deterministic sampler turns each seed's
#   $x_T$ into almost the same points at both $S$ (section 4), so what is left in those cells is how lucky
#   each seed's 1,000 points are, not the sampler.
# - **MLP against exact model** (the same $x_T$ and noise for both): at $S = 10$ they agree within the spreads
#   for $\eta \le 0.5$ (9.0 against 8.2 for $\eta = 0$), so the network's few-step error is mostly
#   discretization, not approximation. At $S = 50$ and $100$ it is the other way round: the MLP's rows for
#   $\eta \le 0.5$ sit 2.2 to 2.9 above the exact model's (at $S = 100$: 0.5 to 2.3 against $-2.0$ to $-0.6$),
#   more than the spreads. Once the discretization error is gone, what remains is the network's own
#   approximation error.
# - **SW** separates nothing: every cell (0.085 to 0.145) lies within one standard deviation of perfect samples
#   ($0.115 \pm 0.032$). Always compare a metric with its spread on perfect data before reading a table; here
#   MMD$^2$ is the useful one.
#
# **Against DDIM's Table 1.** Where the two agree: $\hat\sigma$ is by far the worst at few steps, $\eta = 1$ has
# the next-worst score at $S = 10$, and every row falls steeply with $S$ until the small-$\eta$ rows flatten
# out (the paper's by $S = 100$, the exact model's by $S = 50$). Where they differ: the paper finds $\eta = 0$
# best at every $S < 1000$, by margins that are small next to the values themselves (13.36, 14.04, 16.66 FID
# for $\eta = 0, 0.2, 0.5$ at $S = 10$); in our table the whole range of those three rows at $S = 10$ (0.6 for
# the MLP, 1.0 for the exact model) is smaller than the seed spread of $\eta = 0$ alone (2.6 and 2.7), so five
# seeds of 1,000 points in 2-D can neither confirm nor refute that ordering. And the paper's $\hat\sigma$ collapses far more (367 against 13 FID at
# $S = 10$, 27 times) than ours (about 4 times the $\eta = 0$ value): FID compares 2048 Inception features of
# $32 \times 32 \times 3$ images, MMD$^2$ compares 2-D points, and the exact model has no approximation error at
# all, so our table measures the samplers' discretization error alone. Our table stops at $S = 100$: there the
# exact model is already inside the band for every $\eta$, so $S = 1000$ could only show the same at ten times
# the cost. The paper's $S = 1000$ column, where $\hat\sigma$ wins (3.17 against 4.04), is about how samplers
# cope with a trained network's approximation error. Our MLP shows that error appearing at $S \ge 50$, and
# only a hint of such an ordering: at $S = 50$ its $\eta = 1$ scores 2.1 below its $\eta = 0$, just beyond
# $\eta = 0$'s spread (1.7), and at $S = 100$ the gap (1.9) is within $\eta = 1$'s spread (2.5).
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
plt.xlabel("S (steps)"), plt.ylabel("exact W2 error"), plt.legend(), plt.title("deterministic DDIM, Gaussian data")
plt.show()

# %% [markdown]
# These numbers are exact: no samples are drawn, so there is no seed spread to report. The error falls like
# a power of $S$ with slope $-0.93$, close to $-1$: the global error of a first-order ODE solver, which DDIM's
# Euler view (notebook 04) predicts. Quadratic spacing is 10-15% more accurate than uniform at $S = 10$ to $50$
# (0.212 against 0.237 at $S = 10$), but worse at $S = 2$ and $S = 200$: which spacing wins depends on $S$ and
# the data.
#
# ## 4. What a deterministic sampler gives you
#
# ### Sample consistency
#
# With $\eta = 0$ the sample is a function of $x_T$ alone. DDIM (sec. 5.2) observes that the *same* $x_T$
# decoded with different $S$ gives nearly the same sample: $x_T$ is a meaningful latent code. We measure it
# on the 1,000 latents of seed 0 from section 2 (the MLP), against the distance between two different samples.

# %%
Sall = tuple(decoded)  # 10, 20, 50, 100, 1000: seed 0's x_T decoded by the MLP with eta = 0 (section 2)
typical = (decoded[1000] - decoded[1000].roll(1, 0)).norm(dim=1)
print(f"distance between two different samples (S = 1000): median {typical.median().item():.3f}, "
      f"10th percentile {typical.quantile(0.1).item():.3f}")
for S in Ss:
    d = (decoded[S] - decoded[1000]).norm(dim=1)
    print(f"S = {S:>4}: distance to the S = 1000 sample from the same x_T: median {d.median().item():.3f}, "
          f"90th percentile {d.quantile(0.9).item():.3f}")
fig, ax = plt.subplots(figsize=(3.6, 3.6))
ax.scatter(reference[:n, 0], reference[:n, 1], s=1, color="0.85", label="data")
for k in range(12):
    path = torch.stack([decoded[S][k] for S in Sall])
    ax.plot(path[:, 0], path[:, 1], "-", color="C0", lw=0.8, label="S = 10 ... 1000" if k == 0 else None)
    ax.plot(path[-1, 0], path[-1, 1], "o", color="C3", ms=3, label="S = 1000" if k == 0 else None)
ax.set(xlim=(-3.5, 3.5), ylim=(-3.5, 3.5), aspect="equal", xlabel="x[0]", ylabel="x[1]",
       title="12 latents x_T, decoded with each S")
ax.legend(fontsize=7, loc="lower right")
plt.show()

# %% [markdown]
# From the same $x_T$, the $S = 10$ sample lies a median 0.092 from the $S = 1000$ sample (90th percentile
# 0.194), while two different samples lie a median 2.887 apart (10th percentile 0.555): even the largest 10% of
# the $S = 10$ deviations are smaller than the closest 10% of pairs of different samples. The deviation shrinks
# about in proportion to $1/S$ (median 0.092, 0.048, 0.017, 0.008 for $S = 10, 20, 50, 100$), the first-order
# behaviour of section 3.
#
# ### Interpolation
#
# In $d$ dimensions, Gaussian latents concentrate near a sphere of radius $\sqrt d$, and a straight line between
# two of them passes through the low-norm interior, which the model never sees at $t = T$. DDIM therefore
# interpolates with spherical linear interpolation (slerp). In 2-D we can see both the latent paths and where
# they land; the last line printed below does the arithmetic for a CIFAR-10-sized latent.

# %%
z0, z1 = torch.tensor([[1.4, -0.2]]), torch.tensor([[-0.9, 1.2]])
w = torch.linspace(0, 1, 41)
lat_slerp = md.slerp(z0, z1, w)[:, 0]
lat_lerp = (1 - w)[:, None] * z0 + w[:, None] * z1
tau = md.timesteps(T, 50)
data_low = exact.log_prob(reference, 0).quantile(0.01)  # 99% of the data has a higher density than this
fig, ax = plt.subplots(1, 2, figsize=(7, 3.4))
ax[0].add_patch(plt.Circle((0, 0), math.sqrt(2), fill=False, ls=":", color="0.5"))
for name, lat in (("slerp", lat_slerp), ("lerp", lat_lerp)):
    ax[0].plot(lat[:, 0], lat[:, 1], ".-", label=name, ms=3)
    out = md.sample(mlp, lat, schedule, tau, eta=0.0)
    ax[1].plot(out[:, 0], out[:, 1], ".-", label=name, ms=3)
    r_min = lat.norm(dim=1).min().item()
    on_data = (exact.log_prob(out, 0) > data_low).float().mean().item()
    print(f"{name}: latent norms from {r_min:.2f} to {lat.norm(dim=1).max().item():.2f} "
          f"(P(|x_T| < {r_min:.2f}) = {1 - math.exp(-r_min ** 2 / 2):.2f} under N(0, I) in 2-D); "
          f"{on_data:.0%} of the decoded path lies where 99% of the data lies")
ax[1].scatter(reference[:n, 0], reference[:n, 1], s=1, color="0.85")
ax[0].set(title="latent path x_T", aspect="equal", xlim=(-2, 2), ylim=(-2, 2), xlabel="x_T[0]", ylabel="x_T[1]")
ax[1].set(title="decoded (eta = 0, S = 50)", aspect="equal", xlim=(-3.5, 3.5), ylim=(-3.5, 3.5), xlabel="x_0[0]",
          ylabel="x_0[1]")
ax[0].legend(fontsize=8)
plt.tight_layout()
plt.show()
d = 3 * 32 * 32  # a CIFAR-10 latent
z = torch.randn(2, 1000, d, generator=torch.Generator().manual_seed(12))
print(f"d = {d}: |x_T| = {z[0].norm(dim=1).mean().item():.1f} +- {z[0].norm(dim=1).std().item():.2f}; "
      f"the lerp midpoint of two independent latents: {((z[0] + z[1]) / 2).norm(dim=1).mean().item():.1f}")

# %% [markdown]
# In 2-D the argument for slerp is weak: the lowest norm on the straight path, 0.56, is a common latent
# ($P(|x_T| < 0.56) = 0.14$), and both decoded paths stay on the data (98% and 95% of their 41 points, one
# point apart). In $d = 3072$ dimensions it is decisive: latents have norm $55.4 \pm 0.69$, and the
# midpoint of a straight line between two of them has norm 39.2, more than twenty standard deviations below
# any latent the model was trained to denoise at $t = T$.
#
# ### Encoding data into $x_T$ and back
#
# Running the deterministic step forwards (`md.encode`, the Euler method of the ODE in increasing $t$)
# maps data to latents; decoding them should give the data back, up to discretization error that shrinks
# as $S$ grows (DDIM Table 2; notebook 07 compares with the paper's numbers on images). We encode and decode
# 1,000 data points with each model.

# %%
data = exact.sample_data(1000, torch.Generator().manual_seed(11))
print(f"{'S':>5} {'RMSE, MLP':>16} {'RMSE, exact':>16}   (+- one standard error over the {len(data)} points)")
for S in (10, 20, 50, 100, 200):
    tau = md.timesteps(T, S)
    cells = []
    for model in (mlp, exact):
        sq = (md.sample(model, md.encode(model, data, schedule, tau), schedule, tau, eta=0.0) - data).pow(2).mean(1)
        rmse = sq.mean().sqrt().item()
        cells.append(f"{rmse:>8.4f} +-{(sq.std() / math.sqrt(len(sq))).item() / (2 * rmse):>7.4f}")
    print(f"{S:>5} " + " ".join(cells))
latents = md.encode(exact, data, schedule, md.timesteps(T, 100))
print("latents of the data (exact model, S = 100): mean", latents.mean(0).numpy().round(3),
      "std", latents.std(0).numpy().round(3), f"(the prior is N(0, I); standard errors for {len(data)} points: "
      f"mean {1 / math.sqrt(len(data)):.3f}, std {1 / math.sqrt(2 * len(data)):.3f})")

# %% [markdown]
# The round trip gets more precise as $S$ grows, roughly in proportion to $1/S$ (RMSE 0.125 at $S = 10$, 0.0094
# at $S = 200$, for the MLP), as a first-order solver's error should. The MLP reconstructs *better* than the
# exact model at $S = 10$ to $50$ (0.1252 against 0.1430 at $S = 10$, far outside the standard errors), and no
# worse at larger $S$ (0.0188 against 0.0203 at $S = 100$, within one standard error): the round
# trip does not test whether the model is right, only how well the encoder's Euler steps and the decoder's
# Euler steps undo each other, and that error is smaller where $\epsilon$ varies slowly. A plausible reason
# (not measured here) is that the exact $\epsilon$ of eight narrow modes bends more sharply at small $t$ than the
# network's smoother fit. The encoded data also look like the prior: means within about one standard error
# of 0 and standard deviations (0.953, 0.983) within about two standard errors of 1.
#
# ## Summary
#
# - A model trained on $T = 1000$ samples well with $S \ll T$ steps on a subsequence. In the toy Table 1 (five
#   seeds, MMD$^2$ against its spread on perfect samples), $\hat\sigma$ is by far the worst at few steps and
#   $\eta = 1$ has the next-worst score at $S = 10$, as in DDIM's Table 1; the paper's finer ordering among
#   $\eta \le 0.5$ ($\eta = 0$ best) is smaller than our seed spread. By $S = 50$ every setting of the exact
#   model is within the noise of perfect samples, and what separates the MLP from it there is the network's
#   own approximation error.
# - For Gaussian data we computed the deterministic sampler's exact error: it falls like $S^{-0.93}$, close to
#   the $1/S$ of a first-order ODE solver.
# - $x_T$ is a latent code: consistent across $S$, interpolable (slerp matters in high dimension, hardly in
#   2-D), and data can be encoded into it and decoded back, more precisely as $S$ grows.

# %% [markdown]
# **Next:** notebook 06 · scores, Langevin dynamics and the probability-flow ODE: why the deterministic sampler of
# notebooks 04-05 works, and a second-order solver (Heun) that needs fewer steps.
#
# **Exercise:** `exercises/05_subsequences_and_encoding.ipynb` asks you to implement the timestep
# subsequence, slerp and the encoder.
