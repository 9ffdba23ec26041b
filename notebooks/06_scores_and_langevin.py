# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Scores, Langevin dynamics and the probability-flow ODE
#
# **What this notebook shows.** Both papers rest on a third view of the same model. DDPM says so in sec. 3.2: with
# the $\epsilon$-parameterization, its sampler "resembles Langevin dynamics with $\epsilon_\theta$ as a learned
# gradient of the data density" (after eq. 11), and its objective "resembles denoising score matching over
# multiple noise scales indexed by $t$" (eq. 12). DDIM sec. 4.3 shows that its deterministic sampler is Euler's
# method on an ODE (eqs. 13-14) that is the probability-flow ODE of a score SDE (Proposition 1). We
#
# 1. draw the **score** $\nabla_x \log q(x_t)$ of the noisy marginals, exact and from the trained MLP, and
#    measure the MLP's error against $t$;
# 2. check **Tweedie's formula**: predicting $x_0$ from $\epsilon_\theta$ is estimating the posterior mean;
# 3. check that $L_\text{simple}$'s term at $t$ is **denoising score matching** (Song & Ermon 2019, eq. 2) weighted by
#    $\sigma_t^2 = 1-\bar\alpha_t$, and compare the weightings;
# 4. run **Langevin dynamics** at one noise level and **annealed** over many (Song & Ermon 2019, Algorithm 1),
#    rewrite DDPM's step as a Langevin-like step, and compare the samplers at equal numbers of score evaluations;
# 5. solve the **probability-flow ODE** accurately, measure DDIM's order (1) and Heun's (2), and see what the last
#    step to $t = 0$ does to both;
# 6. check two closed forms for Gaussian data: the Langevin chain's step-size bias and the ODE's flow map.
#
# Time is DDPM's $t = 0..T$; DDIM's $\alpha_t$ is our $\bar\alpha_t$ (`alpha_bars`).

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
exact = md.GaussianMixtureDenoiser(*md.toy_mixture("eight_gaussians"), schedule)
mlp = md.pretrained("eight_gaussians_mlp")  # notebook 03's training run: md.train_toy("eight_gaussians", steps=3000, seed=0).ema

# %% [markdown]
# ## 1. The score of $q(x_t)$
#
# Write $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ (DDPM eq. 4). The noisy marginal $q(x_t)$ is
# the data law blurred by a Gaussian, and its **score** $\nabla_x\log q(x_t)$ is the expected score of the blur:
#
# $$\nabla_{x_t}\log q(x_t) = \mathbb E\big[\nabla_{x_t}\log q(x_t\mid x_0)\,\big|\,x_t\big]
#   = \mathbb E\Big[-\frac{x_t - \sqrt{\bar\alpha_t}x_0}{1-\bar\alpha_t}\,\Big|\,x_t\Big]
#   = -\frac{\mathbb E[\epsilon\mid x_t]}{\sqrt{1-\bar\alpha_t}} .$$
#
# $L_\text{simple}$ trains $\epsilon_\theta(x_t, t)$ towards $\mathbb E[\epsilon\mid x_t]$ (notebook 03), so
# $s_\theta(x_t, t) = -\epsilon_\theta(x_t, t)/\sqrt{1-\bar\alpha_t}$ estimates the score: DDPM's "learned gradient of
# the data density". For the mixture the score is known in closed form (`exact.score`). Inline, then the package:

# %%
g = torch.Generator().manual_seed(1)
x0 = exact.sample_data(2000, g, dtype=torch.float64)
for t in (10, 300):
    x_t = md.q_sample(x0, t, schedule, generator=g)
    eps = exact(x_t, torch.full((2000,), t))
    inline = -eps / (1 - ab[t]).sqrt()
    print(f"t = {t:>3}: max |-E[eps|x_t] / sqrt(1 - ab) - exact.score| = "
          f"{plotting.below((inline - exact.score(x_t, t)).abs().max())}, "
          f"max |inline - md.score_from_eps| = {plotting.below((inline - md.score_from_eps(eps, t, schedule)).abs().max())}")

# %% [markdown]
# The vector fields, exact (top) and from the MLP (bottom), on a grid, over 1,000 draws of $q(x_t)$ in grey. The score
# grows like $1/(1-\bar\alpha_t)$ as $t \to 0$ (the longest exact arrow of each column is written under it), so each
# column has its own arrow scale, shared by its two panels.

# %%
times = (10, 100, 300, 700)
ticks = torch.linspace(-3, 3, 17)
grid = torch.stack(torch.meshgrid(ticks, ticks, indexing="xy"), -1).reshape(-1, 2)
fig, axes = plt.subplots(2, len(times), figsize=(2.6 * len(times), 5.4), sharex=True, sharey=True)
for j, t in enumerate(times):
    cloud = md.q_sample(exact.sample_data(1000, torch.Generator().manual_seed(2)), t, schedule,
                        generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        fields = {"exact": exact.score(grid, t),
                  "MLP": md.score_from_eps(mlp(grid, torch.full((len(grid),), t)), t, schedule)}
    longest = fields["exact"].norm(dim=1).max().item()
    for i, (name, field) in enumerate(fields.items()):
        ax = axes[i, j]
        ax.scatter(cloud[:, 0], cloud[:, 1], s=1, color="0.8", rasterized=True)
        ax.quiver(grid[:, 0], grid[:, 1], field[:, 0], field[:, 1], angles="xy", scale_units="xy",
                  scale=longest / 0.5, width=0.006, color="C0" if i == 0 else "C3")
        ax.set(xlim=(-3.2, 3.2), ylim=(-3.2, 3.2), aspect="equal", title=f"{name}, t = {t}")
        ax.title.set_fontsize(9)
        if i == 1:
            ax.set_xlabel(f"$x^{{(1)}}$ (longest arrow: {longest:.1f})", fontsize=8)
        if j == 0:
            ax.set_ylabel("$x^{(2)}$")
fig.suptitle(r"$\nabla_x \log q(x_t)$: exact (top) and $-\epsilon_\theta/\sqrt{1-\bar\alpha_t}$ from the MLP (bottom)",
             fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# How good is the MLP's score? On $x_t \sim q(x_t)$ we measure the $\epsilon$-error
# $e_\epsilon(t) = \mathbb E\|\epsilon_\theta(x_t,t) - \mathbb E[\epsilon\mid x_t]\|^2$ (what training reduces; 2,000
# draws per $t$) and the score error it implies,
# $\mathbb E\|s_\theta - \nabla\log q_t\|^2 = e_\epsilon(t)/(1-\bar\alpha_t)$, beside the size of the exact score,
# $\mathbb E\|\nabla\log q_t\|^2$. Both errors are squared norms ($> 0$), so a log axis is safe.

# %%
t_grid = (1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 700, 1000)
g = torch.Generator().manual_seed(4)
rows = []
for t in t_grid:
    x_t = md.q_sample(exact.sample_data(2000, g), t, schedule, generator=g)
    t_batch = torch.full((2000,), t)
    with torch.no_grad():
        eps_err = (mlp(x_t, t_batch) - exact(x_t, t_batch)).pow(2).sum(1).mean().item()
    size = exact.score(x_t, t).double().pow(2).sum(1).mean().item()
    rows.append((t, eps_err, eps_err / (1 - ab[t]).item(), size))
print(f"{'t':>5} {'1 - ab_t':>9} {'eps error':>10} {'score error':>12} {'E|score|^2':>11} {'relative':>9}")
for t, e, s, size in rows:
    print(f"{t:>5} {1 - ab[t].item():>9.5f} {e:>10.3g} {s:>12.3g} {size:>11.3g} {s / size:>9.3g}")
fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot(t_grid, [r[1] for r in rows], "o-", label=r"$\epsilon$ error $E\|\epsilon_\theta - E[\epsilon|x_t]\|^2$")
ax.plot(t_grid, [r[2] for r in rows], "s-", label=r"score error $= \epsilon$ error $/(1-\bar\alpha_t)$")
ax.plot(t_grid, [r[3] for r in rows], "k:", label=r"size of the score $E\|\nabla \log q_t\|^2$")
ax.set(xscale="log", yscale="log", xlabel="t", ylabel="mean squared norm",
       title="the MLP's error against t (2,000 draws of q(x_t) each)")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# The MLP's $\epsilon$-error is small at every $t$ (at most 0.0486, at $t = 50$), but the score error is that error
# divided by $1-\bar\alpha_t$: at $t = 1$ it is 97.3, larger than the mean squared size of the exact score itself
# (50.6), a relative error of 1.92; 0.976 at $t = 2$, 0.385 at $t = 5$, 0.185 at $t = 10$, 0.0331 at $t = 100$, and at
# most 0.0011 from $t = 300$ on. $L_\text{simple}$ charges an $\epsilon$-error of 0.01 the same at every $t$; as a score
# error it is $1/(1-\bar\alpha_t)$ times larger, $10^4$ times at $t = 1$. So the learned score is least reliable exactly
# where it is largest, near the data. (A check on the table: at $t = 1000$, $q(x_t)$ is nearly $N(0, I)$, whose score is
# $-x$ with $\mathbb E\|x\|^2 = 2$; measured 2.04.)
#
# ## 2. Tweedie's formula: $\hat x_0$ is the posterior mean
#
# Tweedie's formula (Robbins 1956; Efron 2011) turns the score into the posterior mean:
# $\mathbb E[x_0\mid x_t] = \big(x_t + (1-\bar\alpha_t)\nabla\log q(x_t)\big)/\sqrt{\bar\alpha_t}$. Put in
# $\nabla\log q = -\epsilon/\sqrt{1-\bar\alpha_t}$ and it is
# $(x_t - \sqrt{1-\bar\alpha_t}\,\epsilon)/\sqrt{\bar\alpha_t}$, the "predicted $x_0$" of DDIM eq. 9 (`md.predict_x0`):
# DDIM's sampler steps towards an estimate of $\mathbb E[x_0\mid x_t]$. We check it against the mixture's posterior mean
# computed independently, from Bayes' rule on each component: with responsibilities $r_k(x_t)$ from
# $q(x_t) = \sum_k w_k\mathcal N(\sqrt{\bar\alpha_t}m_k, \Sigma_k)$, $\Sigma_k = \bar\alpha_t C_k + (1-\bar\alpha_t)I$,
#
# $$\mathbb E[x_0\mid x_t] = \sum_k r_k(x_t)\,\big(m_k + \sqrt{\bar\alpha_t}\,C_k\Sigma_k^{-1}(x_t - \sqrt{\bar\alpha_t}m_k)\big).$$

# %%
def posterior_mean_inline(x_t, t):
    """E[x_0 | x_t] for the mixture: per component, the Gaussian conditional mean; weighted by r_k(x_t)."""
    w, means_t, covs_t = exact.marginal(t)
    log_r = torch.distributions.MultivariateNormal(means_t, covs_t).log_prob(x_t[:, None, :]) + w.log()
    r = torch.softmax(log_r, 1)                                                       # (n, K)
    gain = ab[t].sqrt() * exact.covs @ torch.linalg.inv(covs_t)                       # sqrt(ab) C_k Sigma_k^{-1}
    per_k = exact.means + torch.einsum("kij,nkj->nki", gain, x_t[:, None, :] - means_t)
    return (r[..., None] * per_k).sum(1)


g = torch.Generator().manual_seed(5)
x0 = exact.sample_data(2000, g, dtype=torch.float64)
for t in (10, 100, 300, 700):
    x_t = md.q_sample(x0, t, schedule, generator=g)
    t_batch = torch.full((2000,), t)
    eps = exact(x_t, t_batch)
    via_tweedie = md.tweedie(x_t, exact.score(x_t, t), t, schedule)
    print(f"t = {t:>3}: max |tweedie - predict_x0| = "
          f"{plotting.below((via_tweedie - md.predict_x0(x_t, eps, t, schedule)).abs().max())}, "
          f"max |tweedie - E[x0|x_t] inline| = {plotting.below((via_tweedie - posterior_mean_inline(x_t, t)).abs().max())}")

# %% [markdown]
# The same for the MLP (float32): $\hat x_0$ from its $\epsilon$ and Tweedie on its score agree to rounding, and both
# are its estimate of $\mathbb E[x_0\mid x_t]$; at $t = 300$, beside the exact posterior mean:

# %%
t = 300
x_t = md.q_sample(exact.sample_data(2000, torch.Generator().manual_seed(6)), t, schedule,
                  generator=torch.Generator().manual_seed(7))
with torch.no_grad():
    eps_mlp = mlp(x_t, torch.full((2000,), t))
x0_mlp = md.tweedie(x_t, md.score_from_eps(eps_mlp, t, schedule), t, schedule)
x0_exact = md.tweedie(x_t, exact.score(x_t, t), t, schedule)
print(f"MLP: max |tweedie - predict_x0| = "
      f"{plotting.below((x0_mlp - md.predict_x0(x_t, eps_mlp, t, schedule)).abs().max(), 1e-5)} (float32); "
      f"RMS distance of its E[x0|x_t] to the exact one: {(x0_mlp - x0_exact).pow(2).sum(1).mean().sqrt().item():.3f} "
      f"(RMS distance of x_t to it: {(x_t - x0_exact).pow(2).sum(1).mean().sqrt().item():.3f})")
plotting.scatter_panels([x_t, x0_exact, x0_mlp], [f"x_t, t = {t}", "E[x0|x_t], exact", "E[x0|x_t], MLP (Tweedie)"],
                        reference=exact.sample_data(1000, torch.Generator().manual_seed(8)),
                        suptitle="Tweedie's formula: the posterior mean of 2,000 draws of x_300 (data in grey)")
plt.show()

# %% [markdown]
# Tweedie's formula and `predict_x0` agree to better than $10^{-12}$, and both agree with the independently computed
# posterior mean to better than $10^{-12}$ (float64) at all four $t$: with the exact model, DDIM's "predicted $x_0$" *is*
# $\mathbb E[x_0\mid x_t]$. For the MLP the two formulas agree to float32 rounding (to better than $10^{-5}$), and its
# posterior mean lies an RMS 0.038 from the exact one at $t = 300$, where $x_t$ itself lies 0.430 from it. The posterior
# mean is an average over the modes $x_t$ may have come from, so where $x_t$ is ambiguous it falls between modes: one
# step to $\hat x_0$ is not a sample, which is why the samplers take many.
#
# ## 3. $L_\text{simple}$ is denoising score matching, weighted by $\sigma^2$
#
# Denoising score matching (Vincent 2011; Song & Ermon 2019, eq. 2) at one noise level fits a score model to the score
# of the blur kernel: $\ell(t) = \tfrac12\,\mathbb E\,\|s_\theta(x_t, t) - \nabla_{x_t}\log q(x_t\mid x_0)\|^2$ with
# $\nabla_{x_t}\log q(x_t\mid x_0) = -\epsilon/\sqrt{1-\bar\alpha_t}$. With
# $s_\theta = -\epsilon_\theta/\sqrt{1-\bar\alpha_t}$,
#
# $$\ell(t) = \frac{1}{2(1-\bar\alpha_t)}\,\mathbb E\|\epsilon_\theta - \epsilon\|^2,\qquad\text{so}\qquad
#   L_\text{simple}\text{'s term at } t = 2\,(1-\bar\alpha_t)\,\ell(t).$$
#
# DDPM eq. 12 "resembles denoising score matching over multiple noise scales": it *is* Song & Ermon's objective
# $\sum_i \lambda(\sigma_i)\,\ell(\sigma_i)$ (their eq. 6) with $\lambda(\sigma) = \sigma^2$,
# $\sigma_t^2 = 1-\bar\alpha_t$, the weight they chose themselves (sec. 4.2), up to the constant 2 (their $\tfrac12$).
# On the same draws, with the MLP:

# %%
g = torch.Generator().manual_seed(9)
x0 = exact.sample_data(4000, g)
noise = torch.randn(4000, 2, generator=g)
score_mlp = md.score_model(mlp, schedule)
print(f"MLP, float32: {'t':>5} {'L_simple term':>14} {'DSM loss':>10} {'2 (1 - ab) DSM':>15} {'ratio':>7}")
with torch.no_grad():
    for t in (1, 10, 100, 500, 1000):
        l_eps = md.epsilon_loss(mlp, x0, schedule, t=torch.full((4000,), t), noise=noise).item()
        l_dsm = md.dsm_loss(score_mlp, x0, t, schedule, noise=noise).item()
        print(f"{'':>13}{t:>5} {l_eps:>14.4f} {l_dsm:>10.4g} {2 * (1 - ab[t].item()) * l_dsm:>15.4f} "
              f"{l_eps / (2 * (1 - ab[t].item()) * l_dsm):>7.4f}")
    score_exact = md.score_model(exact, schedule)
    x0_64, noise_64 = x0.double(), noise.double()
    ratios = [md.epsilon_loss(exact, x0_64, schedule, t=torch.full((4000,), t), noise=noise_64).item()
              / (2 * (1 - ab[t].item()) * md.dsm_loss(score_exact, x0_64, t, schedule, noise=noise_64).item())
              for t in (1, 10, 100, 500, 1000)]
    worst = max(abs(r - 1) for r in ratios)
print(f"exact model, float64: max |ratio - 1| over the same t = {plotting.below(worst)}")

# %% [markdown]
# **What the weighting does.** Song & Ermon chose $\lambda(\sigma) = \sigma^2$ because $\|\sigma s_\theta\|$ is of order
# one at every level, so that every level's weighted loss has the same order of magnitude. The exact model shows what
# that prevents: its DSM loss (the floor no network can beat at that level) grows like $1/\sigma_t^2$ as $t \to 0$. The
# "true" weighting is the bound's: with $\sigma_t^2 = \beta_t$, DDPM eq. 12's term at $t$ is
# $\frac{\beta_t^2}{2\sigma_t^2\alpha_t(1-\bar\alpha_t)}\mathbb E\|\epsilon-\epsilon_\theta\|^2 = \frac{\beta_t}{\alpha_t}\,\ell(t)$,
# so per unit of DSM loss the bound weighs level $t$ by $\beta_t/\alpha_t$ and $L_\text{simple}$ by $2(1-\bar\alpha_t)$.

# %%
with torch.no_grad():
    print(f"{'t':>5} {'sigma_t^2':>10} {'DSM loss, exact':>16} {'sigma^2 x DSM':>14}")
    for t in (1, 10, 100, 500, 1000):
        l_dsm = md.dsm_loss(score_exact, x0, t, schedule, noise=noise).item()
        print(f"{t:>5} {1 - ab[t].item():>10.5f} {l_dsm:>16.4g} {(1 - ab[t].item()) * l_dsm:>14.4f}")
steps = torch.arange(1, T + 1)
lam_simple = (2 * (1 - ab[steps])).numpy()
lam_bound = (schedule.betas[steps] / schedule.alphas[steps]).numpy()
fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot(steps, lam_simple / lam_simple.mean(),
        label=r"$L_{simple}$ = NCSN: $\lambda = 2\sigma_t^2 = 2(1-\bar\alpha_t)$")
ax.plot(steps, lam_bound / lam_bound.mean(),
        label=r"true bound (DDPM eq. 12, $\sigma_t^2=\beta_t$): $\beta_t/\alpha_t$")
ax.set(yscale="log", xlabel="t", ylabel="weight / its mean over t", title="weight of the DSM loss at level t (all > 0)")
ax.legend(fontsize=7)
plt.show()
relative = (lam_simple[-1] / lam_bound[-1]) / (lam_simple[0] / lam_bound[0])
print(f"L_simple's weight, relative to the bound's, is {relative:.0f} times larger at t = T than at t = 1")

# %% [markdown]
# On the same draws the identity holds: ratio 1.0000 for $t \ge 10$ and 1.0002 at $t = 1$, where float32 loses digits
# (the DSM target $\epsilon/\sqrt{1-\bar\alpha_1}$ is 100 times the noise); in float64 with the exact model the ratio is
# 1 to better than $10^{-12}$. The exact model's DSM loss falls from 4972 at $t = 1$ to $4.1\times10^{-5}$ at $t = T$,
# eight orders of magnitude; times $\sigma_t^2$ it is between 0.0000 and 0.4972 (it is half the per-coordinate
# $L_\text{simple}$ floor, which cannot exceed $\mathbb E\,\epsilon_i^2 = 1$). Unweighted, the smallest noise levels
# would dominate the sum; NCSN's $\lambda = \sigma^2$ and DDPM's dropped weights are the same remedy. The bound weighs
# the levels differently: relative to it, $L_\text{simple}$ puts 49 times more weight on $t = T$ than on $t = 1$
# (notebook 03's 49, seen from the DSM side), i.e. the bound would emphasize the small-$t$ levels, where section 1
# measured the MLP's largest relative score error.
#
# ## 4. Langevin dynamics
#
# ### 4a. At one noise level
#
# Langevin dynamics samples a density from its score alone (Song & Ermon 2019, eq. 4):
# $\tilde x_k = \tilde x_{k-1} + \tfrac{\delta}{2}\nabla\log p(\tilde x_{k-1}) + \sqrt\delta\,z_k$. As $\delta \to 0$
# and the number of steps $\to\infty$ the chain's law tends to $p$; at a fixed $\delta$ it is slightly off (section 6
# has the closed form for a Gaussian). We sample $q(x_{100})$ of the mixture, still eight separate modes but close
# enough to mix, with its exact score: first inline, one step against `md.langevin_step`, then `md.langevin` from
# $N(0, I)$ at two step sizes, and from a poor start (all 1,000 points in one mode), three seeds each. The distance to
# $q(x_{100})$ is MMD$^2$ against 1,000 exact draws, beside the band of perfect samples (ten fresh draws of 1,000).

# %%
t_fix = 100
score_fix = lambda x: exact.score(x, t_fix)  # noqa: E731
x, z = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
inline = x + 0.1 / 2 * score_fix(x) + math.sqrt(0.1) * z
print(f"max |inline Langevin step - md.langevin_step| = "
      + plotting.below((inline - md.langevin_step(x, score_fix(x), 0.1, z)).abs().max()))


def draw_q(seed, n=1000):
    """n exact draws of q(x_100): data, then DDPM eq. 4."""
    return md.q_sample(exact.sample_data(n, torch.Generator().manual_seed(seed)), t_fix, schedule,
                       generator=torch.Generator().manual_seed(seed + 1))



ref_fix = draw_q(20)
band_fix = md.reference_spread(lambda s: draw_q(30 + 2 * s), ref_fix, lambda a, b: 1000 * md.mmd(a, b), repeats=10)
print(f"perfect samples of q(x_{t_fix}): MMD^2 x 1000 = {band_fix[0]:.2f} +- {band_fix[1]:.2f} "
      f"(mean +- std over 10 draws)")

checkpoints = (3, 10, 30, 100, 300)
starts = {"N(0, I)": lambda g: torch.randn(1000, 2, generator=g),
          "one mode": lambda g: exact.means[0].float() * math.sqrt(ab[t_fix]) + 0.3 * torch.randn(1000, 2, generator=g)}
runs = {("N(0, I)", 0.02), ("N(0, I)", 0.2), ("one mode", 0.2)}
chains, curves = {}, {}
for start, delta in sorted(runs):
    for seed in range(3):
        g = torch.Generator().manual_seed(40 + seed)
        chains[start, delta, seed] = md.langevin(score_fix, starts[start](g), delta, max(checkpoints), generator=g,
                                                 trajectory=True, progress=True)
    curves[start, delta] = np.array([[1000 * md.mmd(chains[start, delta, s][k], ref_fix) for k in checkpoints]
                                     for s in range(3)])
print(f"MMD^2 x 1000 to q(x_{t_fix}) after k steps, mean +- std over 3 seeds")
print(f"{'start':>9} {'delta':>6}" + "".join(f"{'k = ' + str(k):>15}" for k in checkpoints))
for (start, delta), c in sorted(curves.items()):
    print(f"{start:>9} {delta:>6}" + "".join(f"{m:>8.2f} +-{s:>5.2f}" for m, s in zip(c.mean(0), c.std(0, ddof=1))))

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.4))
ax.axhspan(band_fix[0] - band_fix[1], band_fix[0] + band_fix[1], color="0.85", label="perfect samples, mean +- std")
for (start, delta), c in sorted(curves.items()):
    ax.errorbar(checkpoints, c.mean(0), yerr=c.std(0, ddof=1), fmt="o-", ms=4, capsize=3,
                label=f"from {start}, step size {delta}")
ax.set(xscale="log", ylim=(-10, 100), xlabel="Langevin steps k", ylabel="MMD^2 x 1000 to q(x_100)",
       title=f"Langevin with the exact score at t = {t_fix} (3 seeds; clipped at 100)")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# MMD$^2$ on 1,000 points sees a too-wide mode only weakly, so we also measure the step-size bias directly: the mean
# squared distance of a point to its nearest mode centre, averaged over the last 100 steps of every chain (the three
# seeds' spread beside it), against the same statistic on 20,000 exact draws of $q(x_{100})$. Each mode of $q(x_{100})$
# is a Gaussian with variance $\lambda = \bar\alpha_{100}\,0.2^2 + 1-\bar\alpha_{100} = 0.139$ per coordinate; for one
# Gaussian, section 6's closed form widens it by the factor $1/(1-\delta/(4\lambda))$.

# %%
centres = exact.marginal(t_fix)[1]
lam_mode = exact.marginal(t_fix)[2][0, 0, 0].item()
spread = lambda x: torch.cdist(x.double(), centres).min(1).values.pow(2).mean().item()  # noqa: E731
exact_spread = spread(draw_q(60, 20_000))
print(f"20,000 exact draws of q(x_{t_fix}): {exact_spread:.4f}")
for start, delta in sorted(runs):
    per_seed = np.array([np.mean([spread(x) for x in chains[start, delta, s][-100:]]) for s in range(3)])
    factor = md.gaussian_langevin_covariance(exact.marginal(t_fix)[2][0], delta)[0, 0].item() / lam_mode
    print(f"from {start:>8}, step size {delta}: {per_seed.mean():.4f} +- {per_seed.std(ddof=1):.4f}, "
          f"{per_seed.mean() / exact_spread:.3f} times the exact draws' "
          f"(one Gaussian mode, closed form: {factor:.3f} times)")

# %% [markdown]
# **What the numbers show.** From $N(0, I)$ with $\delta = 0.02$ the MMD$^2$ falls from $185.55 \pm 6.96$ (3 steps) to
# $0.05 \pm 0.61$ (100 steps), inside the band of perfect samples ($-0.07 \pm 2.33$), and stays there ($2.50 \pm 0.90$
# after 300). With $\delta = 0.2$ it is at $4.55 \pm 2.47$ after only 3 steps and then stays between 4.55 and 5.60,
# within 2.5 band standard deviations: MMD$^2$ on 1,000 points does not resolve the bias. Started in one mode, the chain
# has to cross to the other seven: $130.88 \pm 11.72$ after 30 steps, $4.28 \pm 2.29$ after 100. At $t = 100$
# neighbouring modes are 1.45 apart, 3.9 of their standard deviations (0.37); in the data they are 1.53 apart, 7.7
# standard deviations (0.2). Noise brings the modes closer in that sense, which is Song & Ermon's argument (sec. 3.2)
# for sampling at several noise levels. The direct measure resolves the step-size bias: the chain's modes are $1.042$
# times too wide at $\delta = 0.02$ (closed form for one Gaussian mode: 1.037) and $1.451$ times at $\delta = 0.2$
# (closed form 1.563; the modes of the mixture are not exactly Gaussian in the chain's law). Both starts end at the same
# value (0.3730 and 0.3729): the chain forgets where it began, but not its step size. A larger step reaches the
# stationary law sooner, and that law is wrong by more; Algorithm 1 therefore ties the step to the noise level,
# $\alpha_i \propto \sigma_i^2$.
#
# ### 4b. Annealed Langevin dynamics: from noise to data
#
# Song & Ermon's Algorithm 1 runs Langevin at a ladder of noise levels $\sigma_1 > \dots > \sigma_L$, each level started
# where the previous one ended, with step size $\alpha_i = \varepsilon\,\sigma_i^2/\sigma_L^2$. Their ladder is
# geometric, 10 levels from $\sigma_1 = 1$ to $\sigma_L = 0.01$, with 100 steps per level and
# $\varepsilon = 2\times10^{-5}$. Our noise levels are the times $t$, with $\sigma_t = \sqrt{1-\bar\alpha_t}$ and score
# $-\epsilon_\theta(x, t)/\sqrt{1-\bar\alpha_t}$ (`md.score_model`); we take the times whose $\sigma_t$ is nearest the
# same geometric ladder (for 10 levels they are all distinct):

# %%
sig = (1 - ab).sqrt()


def ladder(L):
    """L decreasing times whose sigma_t = sqrt(1 - ab_t) follow a geometric ladder from sigma_T to 0.01
    (Song & Ermon 2019: sigma_1 = 1, sigma_L = 0.01), kept strictly decreasing."""
    targets = torch.logspace(0, -2, L, dtype=torch.float64) * sig[T]
    ts = [int((sig[1:] - s).abs().argmin()) + 1 for s in targets]
    for i in range(L - 2, -1, -1):
        ts[i] = max(ts[i], ts[i + 1] + 1)
    return ts


levels = ladder(10)
print("levels t:", levels)
print("sigma_t: ", [round(sig[t].item(), 4) for t in levels])
score_exact = md.score_model(exact, schedule)
path = md.annealed_langevin(score_exact, torch.randn(1000, 2, generator=torch.Generator().manual_seed(50)), levels,
                            sig[levels], 10, 1e-4, generator=torch.Generator().manual_seed(51), trajectory=True)
show = (0, 2, 4, 6, 8, 10)
plotting.scatter_panels([path[k] for k in show],
                        ["start, N(0, I)"] + [f"after level {k} (t = {levels[k - 1]})" for k in show[1:]],
                        reference=exact.sample_data(1000, torch.Generator().manual_seed(8)),
                        suptitle="annealed Langevin with the exact score: 10 levels x 10 steps, epsilon = 1e-4")
plt.show()

# %% [markdown]
# ### 4c. DDPM's step is a Langevin-like step
#
# DDPM's ancestral step (Algorithm 2, eq. 11) with $\epsilon_\theta = -\sqrt{1-\bar\alpha_t}\,s_\theta$ reads
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\epsilon_\theta(x_t,t)\Big) + \sigma_t z
#           = \frac{x_t + \beta_t\, s_\theta(x_t, t)}{\sqrt{\alpha_t}} + \sigma_t z :$$
#
# a step of size $\beta_t$ along the score, a slight rescaling, and fresh noise, like Langevin with
# $\delta/2 = \beta_t$. It is not a Langevin chain at one level, though: the score changes level at every step. To first
# order in $\beta_t$ it is exactly two moves: the deterministic step (DDIM's $\eta = 0$, section 5), then one Langevin
# step of size $\delta = \beta_t$ at level $t$, $+\tfrac{\beta_t}{2}s_\theta + \sqrt{\beta_t}\,z$ (the reverse-time SDE
# of Song et al., 2021, split into its probability-flow part and a Langevin part). Inline against `md.ddim_step` with
# $\eta = 1$ (float64, the exact model, every $t$ from 2 to $T$ at once), then the size of that split's remainder:

# %%
g = torch.Generator().manual_seed(60)
t = torch.arange(2, T + 1)
x_t = md.q_sample(exact.sample_data(T - 1, g, dtype=torch.float64), t, schedule, generator=g)
z = torch.randn(T - 1, 2, dtype=torch.float64, generator=g)
s = md.score_from_eps(exact(x_t, t), t, schedule)
beta, alpha = schedule.betas[t][:, None], schedule.alphas[t][:, None]
sigma_t = md.ddim_sigma(schedule, t, t - 1, 1.0)[:, None]
ddpm_step = (x_t + beta * s) / alpha.sqrt() + sigma_t * z
ddim_eta1 = md.ddim_step(x_t, exact(x_t, t), t, t - 1, schedule, eta=1.0, noise=z)[0]
print(f"max |(x_t + beta_t score) / sqrt(alpha_t) + sigma_t z - ddim_step(eta=1)| over t = 2..{T}: "
      + plotting.below((ddpm_step - ddim_eta1).abs().max()))
split = md.ddim_step(x_t, exact(x_t, t), t, t - 1, schedule, eta=0.0)[0] + beta / 2 * s + beta.sqrt() * z
remainder = (ddpm_step - split).norm(dim=1) / (ddpm_step - x_t).norm(dim=1)
for lo, hi in ((2, 10), (11, 100), (101, 1000)):
    pick = (t >= lo) & (t <= hi)
    print(f"t = {lo:>3}..{hi:>4}: |DDPM step - (DDIM step + Langevin step of size beta_t)| / |DDPM step - x_t|: "
          f"median {remainder[pick].median().item():.3f}, max {remainder[pick].max().item():.3f}")

# %% [markdown]
# The rewritten step is `ddim_step` with $\eta = 1$ to better than $10^{-12}$. The split into "deterministic step + one
# Langevin step of size $\beta_t$" leaves a remainder of median 0.001 (at most 0.014) of the step's length for
# $t > 100$, 0.017 (at most 0.071) for $11 \le t \le 100$, and 0.131 (at most 0.435) for $t \le 10$, where
# $\beta_t/(1-\bar\alpha_t)$ is no longer small ($\tilde\beta_1 = 0$, not $\beta_1$). So DDPM's sampler is, step by
# step, the deterministic sampler plus a Langevin correction at the current noise level: the sense in which Algorithm 2
# "resembles Langevin dynamics".
#
# ### 4d. Three samplers at equal numbers of score evaluations
#
# With 100 evaluations of the score: DDIM ($\eta = 0$) and DDPM's step ($\eta = 1$) on `timesteps(T, 100)`, and annealed
# Langevin on the ladder above with 10 levels $\times$ 10 steps or 20 levels $\times$ 5 steps. Algorithm 1's
# $\varepsilon$ was set for 100 steps per level; with 5 or 10 we need a larger one, so we **tuned** $\varepsilon$ a
# little, on a separate seed (9), over $\{2\times10^{-5}, 10^{-4}, 4\times10^{-4}\}$:

# %%
ref = exact.sample_data(1000, torch.Generator().manual_seed(5))
band = md.reference_spread(lambda s: exact.sample_data(1000, torch.Generator().manual_seed(100 + s)), ref,
                           lambda a, b: 1000 * md.mmd(a, b), repeats=10)
print(f"perfect samples (data): MMD^2 x 1000 = {band[0]:.2f} +- {band[1]:.2f} (mean +- std over 10 draws of 1,000)")
models = {"exact": exact, "MLP": mlp}
x_T9 = torch.randn(1000, 2, generator=torch.Generator().manual_seed(9))
for name, model in models.items():
    tried = [1000 * md.mmd(md.annealed_langevin(md.score_model(model, schedule), x_T9, levels, sig[levels], 10, eps,
                                                generator=torch.Generator().manual_seed(9)), ref)
             for eps in (2e-5, 1e-4, 4e-4)]
    print(f"{name:>5}, 10 x 10, seed 9: MMD^2 x 1000 at epsilon = 2e-5, 1e-4, 4e-4: "
          + ", ".join(f"{v:.1f}" for v in tried))

# %%
levels20 = ladder(20)
print("20 levels t:", levels20)
tau100 = md.timesteps(T, 100)
samplers = {
    "DDIM, eta = 0, 100 steps": lambda m, x, g: md.sample(m, x, schedule, tau100, eta=0.0, generator=g),
    "DDPM step, eta = 1, 100 steps": lambda m, x, g: md.sample(m, x, schedule, tau100, eta=1.0, generator=g),
    "annealed Langevin 10 x 10": lambda m, x, g: md.annealed_langevin(md.score_model(m, schedule), x, levels,
                                                                      sig[levels], 10, 1e-4, generator=g),
    "annealed Langevin 20 x 5": lambda m, x, g: md.annealed_langevin(md.score_model(m, schedule), x, levels20,
                                                                     sig[levels20], 5, 1e-4, generator=g),
}
table = {}
with torch.no_grad():
    for name, model in models.items():
        for sname, run in samplers.items():
            table[name, sname] = np.array([
                1000 * md.mmd(run(model, torch.randn(1000, 2, generator=torch.Generator().manual_seed(seed)),
                                  torch.Generator().manual_seed(1000 + seed)), ref) for seed in range(3)])
print(f"MMD^2 x 1000 at 100 score evaluations, mean +- std over 3 seeds "
      f"(perfect samples: {band[0]:.2f} +- {band[1]:.2f})")
print(f"{'sampler':>30}" + "".join(f"{name:>16}" for name in models))
for sname in samplers:
    print(f"{sname:>30}" + "".join(f"{table[name, sname].mean():>9.2f} +-{table[name, sname].std(ddof=1):>5.2f}"
                                   for name in models))

# %% [markdown]
# **What the table shows.** With the exact score all four samplers are within or near the band of perfect samples (means
# from $-2.56$ to $-0.08$ against $-1.15 \pm 1.83$): at 100 evaluations this metric cannot tell any of them from data,
# and their differences are noise. With the MLP, DDIM ($1.64 \pm 1.74$) and DDPM's step ($-0.74 \pm 1.61$) are inside
# the band, while annealed Langevin is above it, $6.43 \pm 2.04$ (10 $\times$ 10) and $7.09 \pm 2.29$ (20 $\times$ 5),
# more than two of its own standard deviations above DDIM's mean. The same samplers with the exact score are fine, so it
# is the learned score that annealed Langevin handles worse. A plausible reason, which this notebook does not isolate:
# the ladder spends 3 of its 10 levels (30 of the 100 evaluations) at $t \le 5$, where section 1 measured the MLP's
# relative score error at 0.385 to 1.92, and every Langevin step there follows that score; DDIM and DDPM on
# `timesteps(T, 100)` visit $t = 1$ once, on their last step. The tuning is part of the result: on seed 9,
# $\varepsilon = 10^{-4}$ was the MLP's best of the three values tried (8.3, against 28.0 and 17.7), and Algorithm 1's
# own $\varepsilon = 2\times10^{-5}$, meant for 100 steps per level, is far too small for 10 (16.6 with the exact
# score).
#
# ## 5. The probability-flow ODE
#
# Divide DDIM's $\eta = 0$ step by $\sqrt{\bar\alpha_{t-\Delta t}}$ and write $\bar x = x/\sqrt{\bar\alpha}$,
# $\sigma = \sqrt{(1-\bar\alpha)/\bar\alpha}$ (DDIM's $\sigma$, not the $\sigma_t$ of section 4):
#
# $$\bar x_{t-\Delta t} = \bar x_t + (\sigma_{t-\Delta t} - \sigma_t)\,\epsilon_\theta(x_t, t)\quad\text{(DDIM eq. 13)},\qquad
#   \mathrm d\bar x = \epsilon_\theta\Big(\frac{\bar x}{\sqrt{\sigma^2+1}}, \sigma\Big)\,\mathrm d\sigma\quad\text{(eq. 14)}.$$
#
# Eq. 13 is Euler's method on eq. 14. DDIM's Proposition 1: with the optimal model, eq. 14 is the probability-flow ODE
# of Song et al.'s variance-exploding SDE, the deterministic process whose marginals are those of the noisy data at
# every $\sigma$. `md.euler_step` against `md.ddim_step` ($\eta = 0$), float64, for big and small jumps:

# %%
g = torch.Generator().manual_seed(70)
x_t = torch.randn(1000, 2, dtype=torch.float64, generator=g)
for t, t_prev in ((1000, 500), (900, 400), (100, 99), (20, 0)):
    eps = exact(x_t, torch.full((1000,), t))
    euler, ddim = md.euler_step(x_t, eps, t, t_prev, schedule), md.ddim_step(x_t, eps, t, t_prev, schedule, eta=0.0)[0]
    diff = (euler - ddim).abs().max().item()
    print(f"{t:>4} -> {t_prev:>3}: max |euler_step - ddim_step(eta=0)| = {plotting.below(diff)}")

# %% [markdown]
# **The reference solution.** `md.pf_ode_solve` integrates eq. 14 with an 8th-order Runge-Kutta method (scipy's DOP853)
# at tolerances near float64 precision. It needs $\epsilon$ at *every* $\sigma$, between the schedule's integer times;
# the exact model gives $\mathbb E[\epsilon\mid x]$ at any noise level (`eps_at`), a trained network only at the
# 1,000 times it was trained on, so only exact models get a reference solution. We integrate 200 starting points
# $x_T$ from $\sigma_T$ down to $\sigma_{100}$ and down to $0$.
#
# **The order of the samplers.** Euler's method is first order: its error after a fixed stretch of the ODE falls like
# $1/S$. `md.heun` corrects each DDIM step with the slope at its end (Karras et al. 2022, Algorithm 1; the trapezoidal
# rule on eq. 14), second order, at $2S-1$ evaluations for $S$ steps. We run both on `timesteps(T, S, "trailing")` for
# $S = 10 \dots 1000$ (every grid holds $t = 100$) with the exact model, and measure the RMS distance to the
# reference at $t = 100$ (`Trajectory.xs` at `times == 100`) and at $t = 0$.

# %%
x_T = torch.randn(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(71))
sigma_T = md.ode_sigma(schedule, T).item()
reference_100 = md.pf_ode_solve(exact, x_T, sigma_T, md.ode_sigma(schedule, 100).item(), schedule)
reference_0 = md.pf_ode_solve(exact, x_T, sigma_T, 0.0, schedule)
try:
    md.pf_ode_solve(mlp, x_T.float(), sigma_T, 0.0, schedule)
except TypeError as error:
    print("the MLP:", str(error).split(";")[0])
Ss = (10, 20, 50, 100, 200, 500, 1000)
rms = lambda a, b: (a - b).pow(2).sum(1).mean().sqrt().item()  # noqa: E731
errors = {}
for S in Ss:
    tau = md.timesteps(T, S, "trailing")
    for sname, run in (("DDIM", md.sample), ("Heun", md.heun)):
        traj = run(exact, x_T, schedule, tau, trajectory=True)
        k = int((traj.times == 100).nonzero())
        errors[sname, S] = (rms(traj.xs[k], reference_100), rms(traj.x0, reference_0))
print(f"{'S':>5} {'sigma(tau_1)':>13} {'DDIM NFE':>9} {'to t=100':>10} {'to t=0':>10} {'Heun NFE':>9} {'to t=100':>10} "
      f"{'to t=0':>10} {'to t=0 / sigma(tau_1)^2':>24}")
for S in Ss:
    s1 = md.ode_sigma(schedule, int(md.timesteps(T, S, "trailing")[0])).item()
    print(f"{S:>5} {s1:>13.4f} {S:>9} {errors['DDIM', S][0]:>10.2e} {errors['DDIM', S][1]:>10.2e} "
          f"{2 * S - 1:>9} {errors['Heun', S][0]:>10.2e} {errors['Heun', S][1]:>10.2e} "
          f"{errors['Heun', S][1] / s1**2:>24.2f}")
slopes = {(sname, j): np.polyfit(np.log(Ss), np.log([errors[sname, S][j] for S in Ss]), 1)[0]
          for sname in ("DDIM", "Heun") for j in (0, 1)}
for (sname, j), slope in slopes.items():
    print(f"{sname}: log-log slope of the error against S, {('to t = 100', 'to t = 0')[j]}: {slope:.2f}")
last = np.polyfit(np.log(Ss[-3:]), np.log([errors["Heun", S][1] for S in Ss[-3:]]), 1)[0]
print(f"Heun to t = 0, slope over S = 200, 500, 1000 only: {last:.2f}")

fig, ax = plt.subplots(figsize=(5.5, 3.8))
for sname, color in (("DDIM", "C0"), ("Heun", "C3")):
    for j, style in ((0, "o-"), (1, "s--")):
        ax.loglog(Ss, [errors[sname, S][j] for S in Ss], style, color=color, ms=4,
                  label=f"{sname}, {('to t = 100', 'to t = 0')[j]} (slope {slopes[sname, j]:.2f})")
ax.set(xlabel="S (steps)", ylabel="RMS error against the reference",
       title="probability-flow ODE, exact model (200 paths)")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# DDIM's step and Euler's agree to better than $10^{-12}$ (float64): DDIM's $\eta = 0$ sampler is Euler's method on eq. 14.
# Against the reference solution, **to $t = 100$** DDIM's error falls with slope $-1.02$ and Heun's with $-2.09$: first
# and second order, as the two methods should. **To $t = 0$** DDIM keeps its order ($-0.96$), Heun does not: $-1.31$
# over all $S$, $-1.15$ over $S = 200 \dots 1000$. The last step is to blame. From $\tau_1$ to $0$ Heun takes an Euler
# step (a network has no $t = 0$ to evaluate at the end of the step), whose error is of order
# $(\Delta\sigma)^2 = \sigma(\tau_1)^2$; the last column shows Heun's error to $t = 0$ settling at about 3 times
# $\sigma(\tau_1)^2$ (3.01, 3.22, 3.32 at $S = 200, 500, 1000$). On the trailing grid $\tau_1 = T/S$, and for the linear
# schedule at small $t$,
# $\sigma(\tau_1)^2 \approx 1-\bar\alpha_{\tau_1} \approx \beta_1\tau_1 + (\beta_T-\beta_1)\tau_1^2/(2T)$: it shrinks
# like $S^{-2}$ while $\tau_1$ is large and like $S^{-1}$ (a step in $\sigma$ of size $S^{-1/2}$) once it is small, so
# the error to $t = 0$ is at best first order however accurate the other steps are. That is why Karras et al. (2022) lay
# the grid out in $\sigma$ rather than in $t$ ($\sigma_i^{1/\rho}$ uniform, $\rho = 7$, steps shrinking towards small
# $\sigma$) and start the last Euler step from $\sigma_\text{min} = 0.002$.
#
# **Quality at equal network evaluations.** With a trained network the reference does not exist, but sample quality
# does. DDIM with $S$ steps against Heun with about the same number of evaluations ($2S' - 1 \approx S$), trailing
# grids, MLP and exact model, 3 seeds, MMD$^2$ against the same data and band as in 4d:

# %%
pairs = ((10, 5), (20, 10), (50, 25))
quality = {}
with torch.no_grad():
    for name, model in models.items():
        for S_ddim, S_heun in pairs:
            for sname, S in (("DDIM", S_ddim), ("Heun", S_heun)):
                run = md.sample if sname == "DDIM" else md.heun
                quality[name, sname, S] = np.array([
                    1000 * md.mmd(run(model, torch.randn(1000, 2, generator=torch.Generator().manual_seed(seed)),
                                      schedule, md.timesteps(T, S, "trailing")), ref) for seed in range(3)])
print(f"MMD^2 x 1000, mean +- std over 3 seeds (perfect samples: {band[0]:.2f} +- {band[1]:.2f})")
s1 = lambda S: md.ode_sigma(schedule, int(md.timesteps(T, S, "trailing")[0])).item()  # noqa: E731
print(f"{'model':>6} {'DDIM S (NFE)':>13} {'sigma(tau_1)':>13} {'DDIM':>15} "
      f"{'Heun S (NFE)':>13} {'sigma(tau_1)':>13} {'Heun':>15}")
for name in models:
    for S_ddim, S_heun in pairs:
        a, b = quality[name, "DDIM", S_ddim], quality[name, "Heun", S_heun]
        print(f"{name:>6} {f'{S_ddim} ({S_ddim})':>13} {s1(S_ddim):>13.3f} {a.mean():>8.2f} +-{a.std(ddof=1):>5.2f} "
              f"{f'{S_heun} ({2 * S_heun - 1})':>13} {s1(S_heun):>13.3f} {b.mean():>8.2f} +-{b.std(ddof=1):>5.2f}")

# %% [markdown]
# **What the table shows.** At equal evaluations Heun is *worse* than DDIM at 9-10 and 19-20 evaluations, with both
# models and beyond the spreads: exact $22.65 \pm 4.76$ against $12.75 \pm 2.94$ and $19.59 \pm 1.31$ against
# $3.60 \pm 1.96$; MLP $30.59 \pm 6.67$ against $8.67 \pm 3.01$ and $9.33 \pm 0.94$ against $2.77 \pm 2.16$. At about 50
# evaluations the two are within each other's spread (exact $1.43 \pm 1.57$ and $0.40 \pm 1.83$; MLP $0.78 \pm 1.38$ and
# $1.50 \pm 1.85$) and near the band. Half as many steps put Heun's last Euler step twice as far up the grid
# ($\sigma(\tau_1) = 0.719$ against 0.339 at 9-10 evaluations), and the error table above says the same without sampling
# noise: to $t = 0$, Heun with 19 evaluations is $1.17\times10^{-1}$ from the reference, DDIM with 20 is
# $6.68\times10^{-2}$. On this grid the second order pays off only where the last step is short, which here means more
# than 50 evaluations.
#
# This is a toy-data finding, and it does not carry over as is. On MNIST, with the shipped U-Net, trailing grids and
# the same samplers, the benchmark (`python benchmarks/run.py --only few-step`, `benchmarks/README.md` section 6;
# 1,000 samples and 2 seeds per row, about 25 minutes, so not rerun here) measured the opposite ordering at about 20
# evaluations: MNIST FID 12.22 $\pm$ 1.40 for Heun at 19 evaluations against 15.30 $\pm$ 2.02 for DDIM-20 and
# 11.94 $\pm$ 1.44 for DDIM-50 (mean $\pm$ half the difference of the two seeds); paired with DDIM-50 on the same
# $x_T$, Heun-19 is $+0.28 \pm 0.04$ above it and DDIM-20 $+3.36 \pm 0.58$. Which property of the data or the metric makes the difference is not isolated by
# either measurement; what both show is that a sampler's order is a statement about small steps, and at 10-20
# evaluations the steps are not small.
#
# ## 6. Gaussian data: everything in closed form
#
# For $x_0 \sim \mathcal N(m, C)$ (`toy_mixture("gaussian")`: $m = (0.5, -0.5)$, $C$ with unit variances and correlation
# 0.8, eigenvalues 1.8 and 0.2) the score is linear and two things the sections above measured by simulation have
# closed forms.
#
# **The unadjusted chain's stationary law.** On $\mathcal N(m, C)$ the Langevin step is
# $x - m \leftarrow A(x-m) + \sqrt\delta z$ with $A = I - \tfrac\delta2 C^{-1}$; its stationary covariance solves
# $S = ASA + \delta I$: $S = C\,(I - \tfrac\delta4 C^{-1})^{-1}$, each eigenvalue $\lambda$ of $C$ widened to
# $\lambda/(1-\delta/(4\lambda))$ (`md.gaussian_langevin_covariance`). We run 5,000 chains for 300 steps from $N(0, I)$
# at two step sizes and compare the eigenvalues of the final states' covariance (standard error about
# $\lambda\sqrt{2/5000} = 2\%$ of $\lambda$).

# %%
_, means_g, covs_g = md.toy_mixture("gaussian")
gauss = md.GaussianDenoiser(means_g[0], covs_g[0], schedule)
print("eigenvalues of C:", [round(v, 4) for v in torch.linalg.eigvalsh(gauss.cov).tolist()])
for delta in (0.05, 0.4):
    g = torch.Generator().manual_seed(80)
    x = md.langevin(lambda x: gauss.score(x, 0), torch.randn(5000, 2, dtype=torch.float64, generator=g), delta, 300,
                    generator=g, progress=True)
    empirical = torch.linalg.eigvalsh(torch.cov(x.T)).tolist()
    predicted = torch.linalg.eigvalsh(md.gaussian_langevin_covariance(gauss.cov, delta)).tolist()
    print(f"step size {delta}: eigenvalues of the chain's covariance {empirical[0]:.4f}, {empirical[1]:.4f} "
          f"(standard errors {empirical[0] * math.sqrt(2 / 5000):.4f}, {empirical[1] * math.sqrt(2 / 5000):.4f}); "
          f"closed form {predicted[0]:.4f}, {predicted[1]:.4f}")

# %% [markdown]
# **The ODE's flow map.** In DDIM's variables $\bar x \sim \mathcal N(m, C + \sigma^2 I)$ and eq. 14 is linear, so along
# each eigenvector of $C$ the offset from $m$ scales by $\sqrt{(\lambda + \sigma_\text{end}^2)/(\lambda + \sigma^2)}$
# (`md.gaussian_flow_map`). Against the numerical reference, for 200 points from $\sigma_T$ to $\sigma_{100}$ and to 0:

# %%
x_T = torch.randn(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(81))
for t_end in (100, 0):
    s_end = md.ode_sigma(schedule, t_end).item()
    closed = md.gaussian_flow_map(x_T, sigma_T, s_end, gauss.mean, gauss.cov)
    solved = md.pf_ode_solve(gauss, x_T, sigma_T, s_end, schedule)
    print(f"sigma_T -> sigma_{t_end}: max |gaussian_flow_map - pf_ode_solve| = "
          + plotting.below((closed - solved).abs().max(), 1e-9))

# %% [markdown]
# At step size 0.05 the chain's small eigenvalue is $0.2145 \pm 0.0043$: the closed form says 0.2133, the data's 0.2 is
# 3.4 standard errors away. At step size 0.4 it is $0.3914 \pm 0.0078$ against the closed form's 0.4000, twice the
# data's eigenvalue. The large eigenvalue lies 1.6 and 1.7 standard errors above the closed form (1.8725 against 1.8126,
# 1.9729 against 1.9059); both chains use the same seed, so these two deviations are not independent. The flow map and
# the numerical solution agree to better than $10^{-9}$ (the solver runs at `pf_ode_solve`'s defaults, rtol $10^{-10}$ and atol $10^{-12}$): `pf_ode_solve` is accurate enough
# to serve as the reference of section 5.
#
# ## Summary
#
# - The score of $q(x_t)$ is $-\mathbb E[\epsilon\mid x_t]/\sqrt{1-\bar\alpha_t}$ (checked to $10^{-12}$), so an
#   $\epsilon$-model is a score model. The MLP's score error is largest where the score is: relative error 1.92 at
#   $t = 1$, at most 0.0011 from $t = 300$ on; $L_\text{simple}$ weighs the $\epsilon$-error, not the score error,
#   equally at every $t$.
# - Tweedie's formula is `predict_x0`: with the exact model it equals the mixture's posterior mean to
#   better than $10^{-12}$.
# - $L_\text{simple}$'s term at $t$ is $2(1-\bar\alpha_t)$ times denoising score matching (ratio 1 to
#   better than $10^{-12}$ in float64): DDPM eq. 12 is NCSN's objective with $\lambda(\sigma) = \sigma^2$.
# - Langevin dynamics with the exact score reaches $q(x_{100})$ within 100 steps at $\delta = 0.02$; at $\delta = 0.2$
#   its MMD$^2$ settles after 3 steps, but the mean squared spread of its modes is 1.45 times too large (closed form for
#   one Gaussian: 1.56). Annealed Langevin goes from noise to data; DDPM's step is DDIM's deterministic step plus one
#   Langevin step of size $\beta_t$ (remainder median 0.001 of the step for $t > 100$). At 100 evaluations DDIM, DDPM
#   and annealed Langevin are within or near the band of perfect samples with the exact score; with the MLP, annealed
#   Langevin is
#   clearly worse (6.43 and 7.09 against 1.64 and $-0.74$).
# - DDIM is Euler's method on eq. 14 (to better than $10^{-12}$): log-log slope $-1.02$ against the reference solution, Heun
#   $-2.09$, both measured to $t = 100$; to $t = 0$ Heun's last Euler step, of size $\sigma(\tau_1)$, limits it to about
#   first order. At equal evaluations Heun is worse than DDIM at 9-10 and 19-20 evaluations and level with it at about
#   50.
# - For Gaussian data the chain's step-size bias and the ODE's flow map are closed forms, and the simulations match
#   them.
#
# **Exercise:** `exercises/06_scores_and_ode.ipynb` asks you to implement the score from $\epsilon$, one Langevin step,
# the DDIM step as an Euler step of eq. 14, and Heun's second-order step.
