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
# # 04 · DDIM: non-Markovian forward processes
#
# **What this notebook shows.** DDPM's objective only ever uses the marginals $q(x_t\mid x_0)$, never the
# joint law of the chain. Song, Meng & Ermon (DDIM, 2021) exploit this: a whole family of forward processes
# $q_\sigma$, indexed by per-step standard deviations $\sigma$, has the same marginals, and so the same
# training objective up to weights. Each member has its own generative process. We
#
# 1. define $q_\sigma$ (DDIM eq. 7) and check Lemma 1 (the marginals are $q(x_t\mid x_0)$ for every $\sigma$);
# 2. see that the joints differ even though the marginals agree;
# 3. build the generative process, with $\eta$ interpolating between DDPM ($\eta=1$) and a deterministic
#    sampler ($\eta=0$);
# 4. check Theorem 1 numerically, and reuse the network trained in notebook 03 as is;
# 5. compare deterministic and stochastic trajectories, and read the deterministic sampler as an ODE.
#
# **Notation.** DDIM writes $\alpha_t$ for DDPM's $\bar\alpha_t$. We keep DDPM's $\bar\alpha_t$ (`alpha_bars`).

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

import minddim as md
from minddim import plotting

torch.manual_seed(0)
schedule = md.Schedule.linear()
T = schedule.T
ab = schedule.alpha_bars

# %% [markdown]
# ## 1. The family $q_\sigma$
#
# DDIM defines the forward process *backwards*: $x_T \sim q(x_T\mid x_0) = \mathcal N(\sqrt{\bar\alpha_T}x_0, (1-\bar\alpha_T)I)$, then for $t = T, \dots, 2$
#
# $$q_\sigma(x_{t-1}\mid x_t, x_0) = \mathcal N\Big(\sqrt{\bar\alpha_{t-1}}\,x_0 + \sqrt{1-\bar\alpha_{t-1}-\sigma_t^2}\cdot\frac{x_t - \sqrt{\bar\alpha_t}\,x_0}{\sqrt{1-\bar\alpha_t}},\ \sigma_t^2 I\Big)\qquad\text{(DDIM eq. 7).}$$
#
# Read the mean as: "the signal part $\sqrt{\bar\alpha_{t-1}}x_0$, plus the noise that $x_t$ carries
# (the fraction $\frac{x_t - \sqrt{\bar\alpha_t}x_0}{\sqrt{1-\bar\alpha_t}}$ is exactly the $\epsilon$ in $x_t$), rescaled so that
# together with the fresh noise $\sigma_t$ the variance is $1-\bar\alpha_{t-1}$". The forward step
# $q_\sigma(x_t \mid x_{t-1}, x_0)$ follows by Bayes' rule and depends on $x_0$: the process is not Markov.
# Inline, then against the package:

# %%
def q_sigma_inline(x0, x_t, t, t_prev, sigma):
    eps_in_xt = (x_t - ab[t].sqrt() * x0) / (1 - ab[t]).sqrt()
    return ab[t_prev].sqrt() * x0 + (1 - ab[t_prev] - sigma**2).sqrt() * eps_in_xt, sigma**2


x0 = md.toy_data("swiss_roll", 4000, seed=0).double()
x_t = md.q_sample(x0, 400, schedule)
sigma = md.ddim_sigma(schedule, 400, 399, 0.5)
m1, _ = q_sigma_inline(x0, x_t, 400, 399, sigma)
m2, _ = md.q_sigma_posterior(x0, x_t, 400, 399, sigma, schedule)
print("max |inline - md.q_sigma_posterior| =", f"{(m1 - m2).abs().max().item():.1e}")

# %% [markdown]
# **Lemma 1** (DDIM): for every choice of $\sigma$, $q_\sigma(x_t\mid x_0) = \mathcal N(\sqrt{\bar\alpha_t}x_0, (1-\bar\alpha_t)I)$.
# The proof is an induction from $T$ down: if $x_t$ has that law, the mean of $x_{t-1}$ is
# $\sqrt{\bar\alpha_{t-1}}x_0$ and its variance $(1-\bar\alpha_{t-1}-\sigma_t^2) + \sigma_t^2$. **Check:**
# run the process from 100,000 copies of one point $x_0$, for three values of the scale $\eta$ (section 3
# makes $\sigma$ a function of $\eta$), and compare the moments of $x_t$ with the DDPM marginal.

# %%
n, point = 100_000, torch.tensor([0.8, -1.1], dtype=torch.float64)
x0_rep = point.expand(n, 2)
checks = (999, 700, 400, 100, 10, 1)
print(f"{'eta':>4} {'t':>4} {'mean (coord 0)':>15} {'theory':>7} {'var':>7} {'theory':>7}")
for eta in (0.0, 0.5, 1.0):
    g = torch.Generator().manual_seed(1)
    x = md.q_sample(x0_rep, T, schedule, generator=g)
    for t in range(T, 1, -1):
        mean, var = md.q_sigma_posterior(x0_rep, x, t, t - 1, md.ddim_sigma(schedule, t, t - 1, eta), schedule)
        x = mean + var.sqrt() * torch.randn(n, 2, generator=g, dtype=torch.float64)
        if t - 1 in checks[::2]:
            print(f"{eta:>4} {t - 1:>4} {x[:, 0].mean().item():>15.4f} {ab[t - 1].sqrt().item() * 0.8:>7.4f} "
                  f"{x[:, 0].var().item():>7.4f} {1 - ab[t - 1].item():>7.4f}")
print(f"standard errors: mean up to {1 / math.sqrt(n):.4f}, variance about {math.sqrt(2 / n):.4f} x variance")

# %% [markdown]
# ## 2. Same marginals, different joints
#
# What $\eta$ changes is how $x_t$ and $x_{t-1}$, or $x_T$ and $x_t$, relate. With $\eta = 0$ every
# $x_t$ is a deterministic function of $(x_0, x_T)$; with $\eta = 1$ (DDPM's own forward process, see
# section 3) fresh noise enters at each step. Below, for one fixed $x_0$: the correlation between the noise in
# $x_T$ and the noise in $x_t$.

# %%
n = 20_000
x0_rep = point.expand(n, 2)
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, eta in zip(axes, (0.0, 0.5, 1.0)):
    g = torch.Generator().manual_seed(2)
    x = x_T = md.q_sample(x0_rep, T, schedule, generator=g)
    for t in range(T, 500, -1):
        mean, var = md.q_sigma_posterior(x0_rep, x, t, t - 1, md.ddim_sigma(schedule, t, t - 1, eta), schedule)
        x = mean + var.sqrt() * torch.randn(n, 2, generator=g, dtype=torch.float64)
    e_T, e_t = md.predict_eps(x_T, x0_rep, T, schedule), md.predict_eps(x, x0_rep, 500, schedule)
    corr = np.corrcoef(e_T[:, 0].numpy(), e_t[:, 0].numpy())[0, 1]
    ax.scatter(e_T[:2000, 0], e_t[:2000, 0], s=1)
    ax.set(title=f"eta = {eta}: corr = {corr:.2f}", xlabel="noise in $x_T$", ylabel="noise in $x_{500}$")
    print(f"eta = {eta}: correlation between the noise in x_T and in x_500 = {corr:.3f}, "
          f"variance of x_500 (coord 0) = {x[:, 0].var().item():.3f} (theory {1 - ab[500].item():.3f})")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. The generative process, and $\eta$
#
# To generate, we do not know $x_0$, so we replace it by the network's guess
# $\hat x_0 = f_\theta(x_t) = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t,t))/\sqrt{\bar\alpha_t}$ (DDIM eq. 9) and sample
# $x_{t-1}$ from $q_\sigma(x_{t-1}\mid x_t, \hat x_0)$. Since $\frac{x_t - \sqrt{\bar\alpha_t}\hat x_0}{\sqrt{1-\bar\alpha_t}} = \epsilon_\theta$, this is DDIM eq. 12:
#
# $$x_{t-1} = \sqrt{\bar\alpha_{t-1}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t-1}-\sigma_t^2}\;\epsilon_\theta(x_t,t) + \sigma_t z .$$
#
# DDIM parameterizes $\sigma$ by $\eta \ge 0$ (eq. 16): $\sigma_t(\eta) = \eta\sqrt{\tfrac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}}\sqrt{1-\tfrac{\bar\alpha_t}{\bar\alpha_{t-1}}}$.
# At $\eta = 1$, $\sigma_t^2 = \tilde\beta_t$ and $q_\sigma$ *is* DDPM's Markov forward process: eq. 12 becomes
# DDPM's ancestral step. At $\eta = 0$ the step is deterministic. Both checks, numerically:

# %%
t = torch.arange(2, T + 1)
print("max |sigma(eta=1)^2 - beta_tilde| over t =",
      f"{(md.ddim_sigma(schedule, t, t - 1, 1.0) ** 2 - schedule.beta_tildes[2:]).abs().max().item():.1e}")
x, e, z = (torch.randn(T - 1, 2, dtype=torch.float64) for _ in range(3))
ddpm_step = md.p_mean(x, e, t, schedule) + schedule.beta_tildes[t].sqrt()[:, None] * z     # DDPM Algorithm 2
print("max |ddim_step(eta=1) - DDPM ancestral step| =", f"{(md.ddim_step(x, e, t, t - 1, schedule, 1.0, z)[0] - ddpm_step).abs().max().item():.1e}")

# %% [markdown]
# ## 4. Theorem 1: one model for all $\eta$
#
# DDIM's Theorem 1: for every $\sigma$, the variational objective $J_\sigma$ of $q_\sigma$ equals
# $L_\gamma = \sum_t \gamma_t\,\mathbb E\|\epsilon - \epsilon_\theta(x_t, t)\|^2$ for some weights $\gamma$, plus a constant.
# The reason is visible in one step: $p_\theta$ and $q_\sigma$ have the same variance and means that differ only
# through $x_0$ vs $\hat x_0$, and $x_0 - \hat x_0 = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}\,(\epsilon_\theta - \epsilon)$. So
#
# $$\mathrm{KL}\big(q_\sigma(x_{t-1}\mid x_t,x_0)\,\|\,p_\theta(x_{t-1}\mid x_t)\big)
# = \underbrace{\frac{\big(\sqrt{\bar\alpha_{t-1}} - \sqrt{1-\bar\alpha_{t-1}-\sigma_t^2}\sqrt{\bar\alpha_t/(1-\bar\alpha_t)}\big)^2\,(1-\bar\alpha_t)}{2\sigma_t^2\,\bar\alpha_t}}_{\gamma_t}\ \|\epsilon - \epsilon_\theta\|^2 .$$
#
# Since a flexible $\epsilon_\theta$ minimizes each $t$'s term separately, the weights do not change the
# optimum: **the network trained with $L_\text{simple}$ serves every $\eta$.** Check the identity with an
# imperfect model (the exact model scaled by 0.9), for two values of $\eta$:

# %%
exact = md.GaussianMixtureDenoiser(*md.toy_mixture("eight_gaussians"), schedule)
imperfect = lambda x, t: 0.9 * exact(x, t)  # noqa: E731
x0 = exact.sample_data(2000, torch.Generator().manual_seed(3), dtype=torch.float64)
eps = torch.randn_like(x0)
for eta in (0.3, 1.0):
    t, t_prev = 300, 299
    x_t = md.q_sample(x0, t, schedule, eps)
    sigma = md.ddim_sigma(schedule, t, t_prev, eta)
    q_mean, var = md.q_sigma_posterior(x0, x_t, t, t_prev, sigma, schedule)
    eps_hat = imperfect(x_t, t)
    p_mean, _ = md.q_sigma_posterior(md.predict_x0(x_t, eps_hat, t, schedule), x_t, t, t_prev, sigma, schedule)
    kl = md.normal_kl(q_mean, var, p_mean, var).sum(1)
    a, ap = ab[t].item(), ab[t_prev].item()
    gamma = (math.sqrt(ap) - math.sqrt(1 - ap - sigma.item() ** 2) * math.sqrt(a / (1 - a))) ** 2 * (1 - a) / (2 * sigma.item() ** 2 * a)
    print(f"eta = {eta}: mean KL {kl.mean().item():.6f}, gamma_t * mean ||eps - eps_hat||^2 = "
          f"{gamma * (eps - eps_hat).pow(2).sum(1).mean().item():.6f}")

# %% [markdown]
# So we take the MLP trained with $L_\text{simple}$ (the recipe of notebook 03) and sample with several $\eta$
# over all 1000 steps, without retraining:

# %%
mlp = md.train_toy("eight_gaussians", steps=3000, seed=0).ema
n = 2000
reference = exact.sample_data(n, torch.Generator().manual_seed(5))
spread = md.reference_spread(lambda seed: exact.sample_data(n, torch.Generator().manual_seed(100 + seed)), reference,
                             lambda x, ref: 1000 * md.mmd(x, ref))
print(f"perfect samples: MMD^2 x 1000 = {spread[0]:.2f} +- {spread[1]:.2f}")
x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(7))
panels, titles = [], []
for eta in (0.0, 0.5, 1.0):
    x = md.sample(mlp, x_T, schedule, md.timesteps(T, T), eta=eta, generator=torch.Generator().manual_seed(8))
    score = 1000 * md.mmd(x, reference)
    panels.append(x)
    titles.append(f"eta = {eta}, MMD^2 x 1000 = {score:.2f}")
    print(f"eta = {eta}: MMD^2 x 1000 to fresh data {score:.2f}")
plotting.scatter_panels(panels, titles, size=2.8, reference=reference)
plt.show()

# %% [markdown]
# ## 5. Deterministic against stochastic trajectories, and the ODE view
#
# From the same starting points, $\eta = 0$ paths are smooth curves; $\eta = 1$ paths jitter and can end on a
# different mode.

# %%
fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
for ax, eta in zip(axes, (0.0, 1.0)):
    traj = md.sample(mlp, x_T[:25], schedule, md.timesteps(T, T), eta=eta, trajectory=True,
                     generator=torch.Generator().manual_seed(9))
    plotting.trajectories(traj.xs, ax=ax, reference=reference, title=f"eta = {eta}")
plt.tight_layout()
plt.show()

# %% [markdown]
# With $\eta = 0$, divide eq. 12 by $\sqrt{\bar\alpha_{t-1}}$ and write $\bar x = x/\sqrt{\bar\alpha}$,
# $s = \sqrt{(1-\bar\alpha)/\bar\alpha}$ (a noise-to-signal ratio). The step becomes
#
# $$\bar x_{t-1} = \bar x_t + (s_{t-1} - s_t)\,\epsilon_\theta(x_t, t)\qquad\text{(DDIM eq. 13)},$$
#
# one Euler step of the ODE $\mathrm d\bar x = \epsilon_\theta\,\mathrm ds$ (eq. 14). Fewer, larger Euler steps
# are the idea behind notebook 05's fast sampling. **Check:** the Euler step in $(\bar x, s)$ coordinates is the
# package's `ddim_step` with $\eta = 0$, for a big jump from $t = 900$ to $t = 400$.

# %%
t, t_prev = 900, 400
x_t = torch.randn(5, 2, dtype=torch.float64)
e = mlp(x_t, torch.full((5,), t)).double()
s = lambda k: math.sqrt((1 - ab[k].item()) / ab[k].item())  # noqa: E731
euler = (x_t / ab[t].sqrt() + (s(t_prev) - s(t)) * e) * ab[t_prev].sqrt()
print("max |Euler step - ddim_step(eta=0)| =", f"{(euler - md.ddim_step(x_t, e, t, t_prev, schedule, 0.0)[0]).abs().max().item():.1e}")

# %% [markdown]
# ## Summary
#
# - DDIM's $q_\sigma$ is a family of non-Markovian forward processes with DDPM's marginals (Lemma 1,
#   checked by simulation for $\eta = 0, 0.5, 1$); their joints differ.
# - Its generative process is eq. 12; $\eta = 1$ is exactly DDPM's ancestral step, $\eta = 0$ is deterministic.
# - Theorem 1: every member's bound is a reweighted $L_\text{simple}$, so one trained network serves all
#   $\eta$. We checked the per-step identity and sampled with one MLP at three $\eta$.
# - With $\eta = 0$ the sampler is the Euler method for an ODE, which is why it tolerates large steps.
#
# **Exercise:** `exercises/04_ddim_step.ipynb` asks you to implement $\sigma(\eta)$, the DDIM step and the sampler loop.
