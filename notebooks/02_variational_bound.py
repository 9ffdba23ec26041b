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
# # 02 · The variational bound
#
# **What this notebook shows.** A diffusion model is a latent-variable model: the reverse chain
# $p_\theta(x_{0:T}) = p(x_T)\prod_t p_\theta(x_{t-1}\mid x_t)$ generates data, and $x_{1:T}$ are latents
# whose "encoder" $q(x_{1:T}\mid x_0)$ is the fixed forward process. We
#
# 1. derive the bound $L = L_T + \sum_{t>1} L_{t-1} + L_0$ on $-\log p_\theta(x_0)$ (DDPM eq. 5);
# 2. derive the forward-process posterior $q(x_{t-1}\mid x_t, x_0)$ and check it against Bayes' rule;
# 3. compute the bound term by term on Gaussian data, where the exact model and the true likelihood are
#    known in closed form, and look at the gap;
# 4. see where the bits go across $t$ (DDPM sec. 4.3).

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import stats

import minddim as md

torch.manual_seed(0)
schedule = md.Schedule.linear()

# %% [markdown]
# ## 1. The bound
#
# Jensen's inequality with the forward process as the proposal gives
#
# $$-\log p_\theta(x_0) \le \mathbb E_q\Big[-\log \frac{p_\theta(x_{0:T})}{q(x_{1:T}\mid x_0)}\Big]
# = \mathbb E_q\Big[-\log p(x_T) - \sum_{t\ge1}\log\frac{p_\theta(x_{t-1}\mid x_t)}{q(x_t\mid x_{t-1})}\Big].$$
#
# The trick (DDPM appendix A) is to rewrite each forward step with Bayes' rule *conditioned on $x_0$*,
# $q(x_t\mid x_{t-1}) = q(x_t \mid x_{t-1}, x_0) = q(x_{t-1}\mid x_t,x_0)\,q(x_t\mid x_0)/q(x_{t-1}\mid x_0)$.
# The ratios $q(x_t\mid x_0)/q(x_{t-1}\mid x_0)$ telescope, and what is left groups into KL divergences
# between Gaussians:
#
# $$L = \mathbb E_q\Big[\underbrace{\mathrm{KL}(q(x_T\mid x_0)\,\|\,p(x_T))}_{L_T}
# + \sum_{t=2}^T \underbrace{\mathrm{KL}(q(x_{t-1}\mid x_t,x_0)\,\|\,p_\theta(x_{t-1}\mid x_t))}_{L_{t-1}}
# \underbrace{-\log p_\theta(x_0\mid x_1)}_{L_0}\Big].$$
#
# Every term is tractable because $q(x_{t-1}\mid x_t, x_0)$ is a Gaussian we can write down.
#
# ## 2. The posterior $q(x_{t-1}\mid x_t, x_0)$
#
# As a function of $x_{t-1}$, the product $q(x_t\mid x_{t-1})\,q(x_{t-1}\mid x_0)$ is
# $\exp\!\big(-\tfrac{(x_t-\sqrt{\alpha_t}x_{t-1})^2}{2\beta_t} - \tfrac{(x_{t-1}-\sqrt{\bar\alpha_{t-1}}x_0)^2}{2(1-\bar\alpha_{t-1})}\big)$.
# Completing the square: the precisions add, $\frac{\alpha_t}{\beta_t}+\frac{1}{1-\bar\alpha_{t-1}} = \frac{1-\bar\alpha_t}{\beta_t(1-\bar\alpha_{t-1})}$, so
#
# $$\tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t,\qquad
# \tilde\mu_t(x_t,x_0) = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1-\bar\alpha_t}x_0 + \frac{\sqrt{\alpha_t}(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}x_t
# \qquad\text{(DDPM eqs. 6-7).}$$
#
# Inline once, then compared with `md.q_posterior`:

# %%
def posterior_inline(x0, x_t, t):
    ab, ab_prev, beta = schedule.alpha_bars[t], schedule.alpha_bars[t - 1], schedule.betas[t]
    mean = ab_prev.sqrt() * beta / (1 - ab) * x0 + (1 - beta).sqrt() * (1 - ab_prev) / (1 - ab) * x_t
    return mean, (1 - ab_prev) / (1 - ab) * beta


x0 = torch.randn(1000, 2, dtype=torch.float64)
for t in (2, 100, 1000):
    x_t = md.q_sample(x0, t, schedule)
    (m1, v1), (m2, v2) = posterior_inline(x0, x_t, t), md.q_posterior(x0, x_t, t, schedule)
    print(f"t = {t:>4}: max |mean difference| = {(m1 - m2).abs().max().item():.1e}, "
          f"variance {v1.item():.3e} vs {v2.item():.3e}")

# %% [markdown]
# **Check against Bayes' rule.** Independently of the algebra: multiply the two densities on a fine grid,
# normalize numerically, and read off the mean and variance.

# %%
t, x0_v, eps_v = 100, 0.8, -0.7
ab, ab_prev, beta = (schedule.alpha_bars[t].item(), schedule.alpha_bars[t - 1].item(), schedule.betas[t].item())
x_t_v = math.sqrt(ab) * x0_v + math.sqrt(1 - ab) * eps_v
grid = np.linspace(-1.5, 2.5, 200_001)
prior = stats.norm.pdf(grid, math.sqrt(ab_prev) * x0_v, math.sqrt(1 - ab_prev))     # q(x_{t-1} | x_0)
likelihood = stats.norm.pdf(x_t_v, math.sqrt(1 - beta) * grid, math.sqrt(beta))      # q(x_t | x_{t-1})
posterior = prior * likelihood / np.trapezoid(prior * likelihood, grid)
mean_grid = np.trapezoid(grid * posterior, grid)
var_grid = np.trapezoid((grid - mean_grid) ** 2 * posterior, grid)
mean, var = md.q_posterior(torch.tensor([x0_v]), torch.tensor([x_t_v]), t, schedule)
print(f"Bayes' rule on a grid: mean {mean_grid:.5f}, variance {var_grid:.6f}")
print(f"q_posterior (eq. 7)  : mean {mean.item():.5f}, variance {var.item():.6f}")

fig, ax = plt.subplots(figsize=(6, 2.8))
ax.plot(grid, prior / prior.max(), label=r"$q(x_{t-1}\mid x_0)$")
ax.plot(grid, likelihood / likelihood.max(), label=r"$q(x_t\mid x_{t-1})$ as a function of $x_{t-1}$")
ax.plot(grid, posterior / posterior.max(), "k", label=r"posterior $q(x_{t-1}\mid x_t,x_0)$")
ax.set(xlim=(0.2, 1.4), xlabel=r"$x_{t-1}$", title=f"t = {t} (curves scaled to height 1)")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# The posterior is much narrower than either factor: knowing both endpoints pins $x_{t-1}$ down.
#
# ## 3. The bound term by term, on Gaussian data
#
# For Gaussian data $x_0\sim\mathcal N(m, C)$ every marginal $q(x_t)$ is Gaussian, the Bayes-optimal
# network $\mathbb E[\epsilon\mid x_t]$ is known in closed form (`md.GaussianDenoiser`), and the true
# negative log-likelihood is the entropy $\tfrac12\log\det(2\pi e C)$. So we can compute the bound of the
# *best possible* model of this family and compare it with the truth.
#
# The reverse step is $p_\theta(x_{t-1}\mid x_t) = \mathcal N(\mu_\theta(x_t, t), \sigma_t^2 I)$ with
# $\mu_\theta$ from the exact model (DDPM eq. 11) and two fixed choices of $\sigma_t^2$ from the paper:
# $\beta_t$ or $\tilde\beta_t$. The data are continuous, so $L_0$ is a Gaussian density.

# %%
_, means, covs = md.toy_mixture("gaussian")
exact = md.GaussianDenoiser(means[0], covs[0], schedule)
true_nll = exact.entropy()
g = torch.Generator().manual_seed(0)
x0 = exact.sample_data(4000, g, dtype=torch.float64)
terms = {v: md.vlb_terms(exact, x0, schedule, decoder="gaussian", variance=v, generator=g) for v in ("beta", "beta_tilde")}

print(f"true NLL (entropy)           : {true_nll:.3f} nats")
for v, L in terms.items():
    total = L.sum(1)
    se = total.std().item() / math.sqrt(len(total))
    print(f"bound, sigma^2 = {v:<10}  : {total.mean().item():.3f} +- {se:.3f} nats  "
          f"(L_T {L[:, -1].mean().item():.1e}, sum of L_t-1 {L[:, 1:-1].sum(1).mean().item():.3f}, "
          f"L_0 {L[:, 0].mean().item():.3f})")

# %% [markdown]
# Both bounds sit above the true NLL, as they must. With $\sigma_t^2 = \beta_t$ the gap is small; with
# $\tilde\beta_t$ it is over a nat. The DDPM paper explains why (sec. 3.2): $\tilde\beta_t$ is the right
# reverse variance when $x_0$ is a single point, $\beta_t$ when $x_0$ has unit variance — and our data
# have roughly unit variance. Where does the gap come from? Plot the per-step terms:

# %%
ts = np.arange(1, 1000)
fig, ax = plt.subplots(1, 2, figsize=(10, 3))
for v, L in terms.items():
    per_t = L[:, 1:-1].mean(0).numpy()
    ax[0].plot(ts + 1, per_t, label=rf"$\sigma_t^2$ = {v}", lw=0.8)
    ax[1].plot(ts + 1, np.cumsum(per_t), label=v)
ax[0].set(yscale="log", xlabel="t", title=r"$L_{t-1}$ (nats, mean over 4000 samples)")
ax[1].set(xlabel="t", title=r"$\sum_{s \leq t} L_{s-1}$")
ax[0].legend(fontsize=8), ax[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# With $\tilde\beta_t$ the extra cost is spread over the large $t$, where the reverse step is most
# uncertain and $\tilde\beta_t < \beta_t$ is too confident.
#
# ## 4. Where the bits go
#
# DDPM (sec. 4.3) observes that most of the lossless codelength is spent on details nobody can see. We
# reproduce the effect on 8-bit data: a Gaussian in $[-1, 1]^2$ quantized to 256 levels per
# coordinate, with the discretized decoder of DDPM eq. 13. Reading the reverse chain as a progressive code,
# by time $t$ the receiver has been sent $L_T + \sum_{s > t} L_{s-1}$ bits (the *rate*) and can form the
# estimate $\hat x_0 = \mathbb E[x_0 \mid x_t]$, whose error is the *distortion* (in gray levels out of 255).

# %%
cov8 = torch.tensor([[0.09, 0.03], [0.03, 0.04]], dtype=torch.float64)
model8 = md.GaussianDenoiser(torch.zeros(2), cov8, schedule)
g = torch.Generator().manual_seed(1)
x8 = ((model8.sample_data(4000, g, dtype=torch.float64).clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1
L8 = md.vlb_terms(model8, x8, schedule, decoder="discretized", variance="beta", generator=g)
bits = (L8.mean(0) / (2 * math.log(2))).numpy()           # bits per dimension, index k = L_k
total_bits = bits.sum()

check_ts = np.array([1, 2, 5, 10, 20, 50, 100, 200, 400, 700, 1000])
rate, distortion = [], []
for t in check_ts:
    rate.append(bits[t:].sum())                            # L_T and the L_{s-1} for s > t
    x_t = md.q_sample(x8, int(t), schedule, generator=g)
    x0_hat = md.predict_x0(x_t, model8(x_t, int(t)), int(t), schedule)
    distortion.append(((x0_hat - x8) * 127.5).pow(2).mean().sqrt().item())
print(f"total: {total_bits:.2f} bits per dimension")
print(f"{'t':>5} {'bits sent':>10} {'share':>6} {'RMSE (levels)':>14}")
for t, r, d in zip(check_ts, rate, distortion):
    print(f"{t:>5} {r:>10.2f} {r / total_bits:>6.0%} {d:>14.2f}")
k = max(i for i, d in enumerate(distortion) if d < 2)
print(f"once the error is below 2 gray levels (t = {check_ts[k]}), {1 - rate[k] / total_bits:.0%} of the bits "
      "are still to be sent")

fig, ax = plt.subplots(1, 2, figsize=(9, 3))
ax[0].plot(check_ts, np.array(rate) / total_bits, "o-")
ax[0].set(xscale="log", xlabel="t", ylabel="share of bits sent", title="rate")
ax[1].plot(np.array(rate) / total_bits, distortion, "o-")
ax[1].set(xlabel="share of bits sent", ylabel="RMSE in gray levels", yscale="log", title="rate-distortion")
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the table from the bottom: by the time the chain has reached small $t$ the estimate is already
# within a couple of gray levels, yet a large share of the codelength is still to come (the last line
# above says how large). Those last
# bits describe the exact quantization level of each coordinate — imperceptible detail — which is why
# DDPM's samples are excellent while its log-likelihood is only competitive.
#
# ## Summary
#
# - The bound is $L_T + \sum_{t>1} L_{t-1} + L_0$; each $L_{t-1}$ compares the reverse step with the
#   Gaussian posterior $q(x_{t-1}\mid x_t, x_0)$, whose mean and variance we derived and checked against
#   Bayes' rule on a grid.
# - With the exact model of Gaussian data, the bound is above the true NLL and close to it with
#   $\sigma_t^2 = \beta_t$; with $\tilde\beta_t$ it is looser, and the plots show at which $t$.
# - Most of the codelength goes to the last few steps, where only imperceptible detail is left.
#
# **Exercise:** `exercises/02_posterior_and_bound.ipynb` asks you to implement the posterior, the Gaussian
# KL and one bound term.
