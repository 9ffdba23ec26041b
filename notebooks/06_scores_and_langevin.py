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
# **You will be able to:** turn an $\epsilon$-model into a score model and back; compute the posterior mean
# $\mathbb E[x_0\mid x_t]$ with Tweedie's formula; show that $L_\text{simple}$ is a weighted denoising score matching
# loss; run a Langevin chain; write DDPM's step as a deterministic step plus a Langevin step; and measure DDIM as
# Euler's method (first order) and Heun's method (second order) on the probability-flow ODE.
#
# **You need first:** notebooks 03 (the $\epsilon$ loss, the trained MLP, MMD$^2$ and its perfect-sample band), 04
# (DDIM's step, eq. 12) and 05 (`timesteps`, fast sampling); the gradient of a Gaussian log-density, Bayes' rule.
#
# **Time:** about 30 min to read (an estimate); runs in about 65 s on a 2-core CPU (one thread, AVX2 kernels; README, "Running the tests").
#
# Both papers rest on a third view of the same model. DDPM sec. 3.2 says that its sampler "resembles Langevin
# dynamics with $\epsilon_\theta$ as a learned gradient of the data density" and that its objective eq. 12 "resembles
# denoising score matching over multiple noise scales indexed by $t$". DDIM sec. 4.3 shows that its deterministic
# sampler is Euler's method on an ODE (eqs. 13-14), the probability-flow ODE of a score SDE (Proposition 1). We
#
# 1. draw the **score** $\nabla_x \log q(x_t)$, exact and from the MLP, and measure the MLP's error against $t$;
# 2. check **Tweedie's formula**: DDIM's "predicted $x_0$" is the posterior mean;
# 3. check that $L_\text{simple}$'s term at $t$ is **denoising score matching** weighted by $1-\bar\alpha_t$;
# 4. run **one Langevin chain** on $q(x_{100})$;
# 5. rewrite **DDPM's step** as DDIM's deterministic step plus one Langevin step;
# 6. derive the **probability-flow ODE** (DDIM's Proposition 1), solve it accurately and measure DDIM (Euler in
#    $\sigma$), DDIM's eq. 15 (Euler in the SDE's time) and Heun against it.
#
# `## Going further` holds the rest: the weights of the bound, the Langevin step-size bias, annealed Langevin dynamics,
# samplers compared at equal evaluations, and closed forms for Gaussian data. Time is DDPM's $t = 0..T$; DDIM's
# $\alpha_t$ is our $\bar\alpha_t$ (`alpha_bars`).

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
# $s_\theta(x_t, t) = -\epsilon_\theta(x_t, t)/\sqrt{1-\bar\alpha_t}$ estimates the score. For the mixture the score is
# known in closed form (`exact.score`). Inline, then the package:

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
# The vector fields, exact (top) and from the MLP (bottom), over 1,000 draws of $q(x_t)$ in grey. The score's size
# differs from one $t$ to another, so each column has its own arrow scale (its longest exact arrow is written under
# it), shared by its two panels.

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
# How good is the MLP's score? On 2,000 draws of $q(x_t)$ per $t$ we measure the $\epsilon$-error
# $e_\epsilon(t) = \mathbb E\|\epsilon_\theta(x_t,t) - \mathbb E[\epsilon\mid x_t]\|^2$ (what training reduces), the
# score error it implies, $\mathbb E\|s_\theta - \nabla\log q_t\|^2 = e_\epsilon(t)/(1-\bar\alpha_t)$, and the size
# of the exact score, $\mathbb E\|\nabla\log q_t\|^2$.

# %%
t_grid = (1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 700, 1000)
g = torch.Generator().manual_seed(4)
rows = {}
for t in t_grid:
    x_t = md.q_sample(exact.sample_data(2000, g), t, schedule, generator=g)
    t_batch = torch.full((2000,), t)
    with torch.no_grad():
        eps_err = (mlp(x_t, t_batch) - exact(x_t, t_batch)).pow(2).sum(1).mean().item()
    size = exact.score(x_t, t).double().pow(2).sum(1).mean().item()
    score_err = eps_err / (1 - ab[t]).item()
    rows[t] = [1 - ab[t].item(), eps_err, score_err, size, score_err / size]
print(md.table(rows, ["1 - ab_t", "eps error", "score error", "E|score|^2", "relative"], header="t",
               digits=[5, 4, 4, 2, 3], title="the MLP against the exact model, 2,000 draws of q(x_t) per t"))
fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot(t_grid, [r[1] for r in rows.values()], "o-", label=r"$\epsilon$ error $E\|\epsilon_\theta - E[\epsilon|x_t]\|^2$")
ax.plot(t_grid, [r[2] for r in rows.values()], "s-", label=r"score error $= \epsilon$ error $/(1-\bar\alpha_t)$")
ax.plot(t_grid, [r[3] for r in rows.values()], "k:", label=r"size of the score $E\|\nabla \log q_t\|^2$")
ax.set(xscale="log", yscale="log", xlabel="t", ylabel="mean squared norm (all > 0)",
       title="the MLP's error against t (2,000 draws of q(x_t) each)")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# **The learned score is least reliable where the score is largest, near the data.** The $\epsilon$-error is at most
# 0.0486 at every $t$, but the score error is that error divided by $1-\bar\alpha_t$: at $t = 1$ it is 97.32, larger
# than the mean squared size of the exact score itself (50.61), a relative error of 1.923, against at most 0.001 from
# $t = 300$ on. $L_\text{simple}$ charges an $\epsilon$-error the same at every $t$; as a score error it costs
# $1/(1-\bar\alpha_t)$ times more, $10^4$ times at $t = 1$. (A check: at $t = 1000$, $q(x_t)$ is nearly $N(0, I)$,
# whose score $-x$ has $\mathbb E\|x\|^2 = 2$; the table prints 2.04.)
#
# ## 2. Tweedie's formula: $\hat x_0$ is the posterior mean
#
# Tweedie's formula (Robbins 1956; Efron 2011) turns the score into the posterior mean:
# $\mathbb E[x_0\mid x_t] = \big(x_t + (1-\bar\alpha_t)\nabla\log q(x_t)\big)/\sqrt{\bar\alpha_t}$. Put in
# $\nabla\log q = -\epsilon/\sqrt{1-\bar\alpha_t}$ and it is
# $(x_t - \sqrt{1-\bar\alpha_t}\,\epsilon)/\sqrt{\bar\alpha_t}$, the "predicted $x_0$" of DDIM eq. 12 (the same expression as its eq. 9; `md.predict_x0`).
# We check it against the mixture's posterior mean computed independently by Bayes' rule: with responsibilities
# $r_k(x_t)$ from $q(x_t) = \sum_k w_k\mathcal N(\sqrt{\bar\alpha_t}m_k, \Sigma_k)$,
# $\Sigma_k = \bar\alpha_t C_k + (1-\bar\alpha_t)I$,
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
# The same for the MLP (float32) at $t = 300$, beside the exact posterior mean:

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
                        reference=exact.sample_data(1000, torch.Generator().manual_seed(8)), size=4.2, s=2.0,
                        suptitle="Tweedie's formula: the posterior mean of 2,000 draws of x_300 (data in grey)")
plt.show()

# %% [markdown]
# **With the exact model, DDIM's "predicted $x_0$" is $\mathbb E[x_0\mid x_t]$**: Tweedie's formula, `predict_x0` and
# the posterior mean from Bayes' rule agree to better than $10^{-12}$ (float64) at all four $t$. For the MLP the two
# formulas agree to float32 rounding, and its posterior mean lies an RMS 0.038 from the exact one at $t = 300$, where
# $x_t$ itself lies 0.430 from it. The figure shows what a posterior mean is: where $x_t$ could have come from two
# modes, $\hat x_0$ falls between them, on no mode at all. One step to $\hat x_0$ is an average, not a sample.
#
# ## 3. $L_\text{simple}$ is denoising score matching, weighted by $1-\bar\alpha_t$
#
# Denoising score matching (Vincent 2011; Song & Ermon 2019, eq. 2) at one noise level fits a score model to the score
# of the blur kernel. Per coordinate (as `md.dsm_loss` and `md.epsilon_loss` average over the $d$ coordinates),
# $\ell(t) = \tfrac1{2d}\,\mathbb E\,\|s_\theta(x_t, t) - \nabla_{x_t}\log q(x_t\mid x_0)\|^2$ with
# $\nabla_{x_t}\log q(x_t\mid x_0) = -\epsilon/\sqrt{1-\bar\alpha_t}$. With
# $s_\theta = -\epsilon_\theta/\sqrt{1-\bar\alpha_t}$,
#
# $$\ell(t) = \frac{1}{2d(1-\bar\alpha_t)}\,\mathbb E\|\epsilon_\theta - \epsilon\|^2,\qquad\text{so}\qquad
#   L_\text{simple}\text{'s term at } t \text{ (per coordinate)} = 2\,(1-\bar\alpha_t)\,\ell(t).$$
#
# Song & Ermon's objective (their eq. 6) is $\frac1L\sum_i \lambda(\sigma_i)\,\ell(\sigma_i)$, and they chose
# $\lambda(\sigma) = \sigma^2$ (their sec. 4.2). With $\sigma_t^2 = 1-\bar\alpha_t$, $L_\text{simple}$ is that
# objective over DDPM's levels, up to the constant 2. This is what DDPM sec. 3.4 says of its eq. 14: its $t > 1$ terms
# "correspond to an unweighted version of Eq. (12), analogous to the loss weighting used by the NCSN denoising score
# matching model". Eq. 12 itself, the bound's term, is weighted differently:
# $\frac{\beta_t^2}{2\sigma_t^2\alpha_t(1-\bar\alpha_t)}\mathbb E\|\epsilon-\epsilon_\theta\|^2$, which with $\sigma_t^2 = \beta_t$
# (one of DDPM's two choices, sec. 3.2) is, per coordinate, $\frac{\beta_t}{\alpha_t}\,\ell(t)$. On the same draws, with the MLP:

# %%
g = torch.Generator().manual_seed(9)
x0 = exact.sample_data(4000, g)
noise = torch.randn(4000, 2, generator=g)
score_mlp = md.score_model(mlp, schedule)
rows = {}
with torch.no_grad():
    for t in (1, 10, 100, 500, 1000):
        l_eps = md.epsilon_loss(mlp, x0, schedule, t=torch.full((4000,), t), noise=noise).item()
        l_dsm = md.dsm_loss(score_mlp, x0, t, schedule, noise=noise).item()
        rows[t] = [l_eps, 2 * (1 - ab[t].item()) * l_dsm, l_eps / (2 * (1 - ab[t].item()) * l_dsm)]
    score_exact = md.score_model(exact, schedule)
    x0_64, noise_64 = x0.double(), noise.double()
    ratios = [md.epsilon_loss(exact, x0_64, schedule, t=torch.full((4000,), t), noise=noise_64).item()
              / (2 * (1 - ab[t].item()) * md.dsm_loss(score_exact, x0_64, t, schedule, noise=noise_64).item())
              for t in (1, 10, 100, 500, 1000)]
    worst = max(abs(r - 1) for r in ratios)
print(md.table(rows, ["L_simple term", "2 (1 - ab) DSM", "ratio"], header="t", digits=4,
               title="the MLP, float32, 4,000 draws"))
print(f"exact model, float64: max |ratio - 1| over the same t = {plotting.below(worst)}")
print(f"1 - ab_1 computed in float32, over the same in float64: {((1 - ab[1].float()).double() / (1 - ab[1])).item():.6f}")

# %% [markdown]
# **$L_\text{simple}$'s term at $t$ is $2(1-\bar\alpha_t)$ times the DSM loss**: the ratio prints as 1.0000 for
# $t \ge 10$ and 1.0002 at $t = 1$, where float32 loses digits: $1 - \bar\alpha_1 = 10^{-4}$ computed in float32 is
# 1.000166 times its float64 value (printed), the size of the ratio's excess; in float64 with the exact model it is 1 to better than $10^{-12}$. So training an $\epsilon$-model
# with $L_\text{simple}$ is training a score model with NCSN's weighting; the bound (eq. 12) would weigh the levels by
# $\beta_t/\alpha_t$ instead (`## Going further` plots both).
#
# ## 4. Langevin dynamics
#
# Langevin dynamics samples a density from its score alone (Song & Ermon 2019, eq. 4):
# $\tilde x_k = \tilde x_{k-1} + \tfrac{\delta}{2}\nabla\log p(\tilde x_{k-1}) + \sqrt\delta\,z_k$. As $\delta \to 0$
# and the number of steps $\to\infty$ the chain's law tends to $p$; at a fixed $\delta$ it is slightly off. We sample
# $q(x_{100})$ of the mixture, still eight separate modes but close enough to mix, with its exact score: one step
# inline against `md.langevin_step`, then `md.langevin` from $N(0, I)$ with $\delta = 0.02$, three seeds. The distance to
# $q(x_{100})$ is MMD$^2$ (notebook 03) against 1,000 exact draws, beside the band of perfect samples (ten fresh draws
# of 1,000).

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
checkpoints = (3, 10, 30, 100, 300)
starts = {"N(0, I)": lambda g: torch.randn(1000, 2, generator=g),
          "one mode": lambda g: exact.means[0].float() * math.sqrt(ab[t_fix]) + 0.3 * torch.randn(1000, 2, generator=g)}
chains, curves = {}, {}


def run_chains(start, delta):
    """Three seeds of md.langevin from `start` with step size delta; MMD^2 x 1000 to q(x_100) at the checkpoints."""
    for seed in range(3):
        g = torch.Generator().manual_seed(40 + seed)
        chains[start, delta, seed] = md.langevin(score_fix, starts[start](g), delta, max(checkpoints), generator=g,
                                                 trajectory=True)
    curves[start, delta] = np.array([[1000 * md.mmd(chains[start, delta, s][k], ref_fix) for k in checkpoints]
                                     for s in range(3)])


run_chains("N(0, I)", 0.02)
print(md.table({"from N(0, I), delta = 0.02": list(curves["N(0, I)", 0.02].T)},
               [f"k = {k}" for k in checkpoints], header="MMD^2 x 1000 to q(x_100) after k steps", digits=2,
               title=f"3 seeds; perfect samples: {band_fix[0]:.2f} +- {band_fix[1]:.2f} "
                     f"(band {band_fix[0] - band_fix[1]:.2f} to {band_fix[0] + band_fix[1]:.2f})"))
fig, ax = plt.subplots(figsize=(5.5, 3.4))
ax.axhspan(band_fix[0] - band_fix[1], band_fix[0] + band_fix[1], color="0.85", label="perfect samples, mean +- std")
c = curves["N(0, I)", 0.02]
ax.errorbar(checkpoints, c.mean(0), yerr=c.std(0, ddof=1), fmt="o-", ms=4, capsize=3,
            label="from N(0, I), step size 0.02 (mean +- std, 3 seeds)")
ax.set(xscale="log", yscale="symlog", xlabel="Langevin steps k", ylabel="MMD^2 x 1000 to q(x_100) (symlog)",
       title=f"one Langevin chain with the exact score at t = {t_fix}")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# **The chain reaches $q(x_{100})$ within about 100 steps and stays near the band.** Its MMD$^2$ falls from
# $185.55 \pm 6.96$ after 3 steps to $0.05 \pm 0.61$ after 100, inside the band of perfect samples (from $-2.40$ to
# $2.26$); after 300 steps it is $2.50 \pm 0.90$, just above the band's upper edge, by less than the seeds' spread.
# A fixed step size leaves a small bias in the chain's law that MMD$^2$ on 1,000 points hardly sees; `## Going further`
# measures it directly, and recalls why Song & Ermon anneal over noise levels.
#
# ## 5. DDPM's step is a Langevin-like step
#
# DDPM's ancestral step (Algorithm 2, eq. 11) with $\epsilon_\theta = -\sqrt{1-\bar\alpha_t}\,s_\theta$ reads
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\epsilon_\theta(x_t,t)\Big) + \sigma_t z
#           = \frac{x_t + \beta_t\, s_\theta(x_t, t)}{\sqrt{\alpha_t}} + \sigma_t z :$$
#
# a step of size $\beta_t$ along the score, a slight rescaling, and fresh noise, like Langevin with
# $\delta/2 = \beta_t$. It is not a Langevin chain at one level, though: the score changes level at every step. Up to a
# remainder that shrinks with $\beta_t/(1-\bar\alpha_t)$ it is two moves: the deterministic step (DDIM's $\eta = 0$, section 6), then one Langevin step of
# size $\delta = \beta_t$ at level $t$, $+\tfrac{\beta_t}{2}s_\theta + \sqrt{\beta_t}\,z$ (the reverse-time SDE of Song
# et al. 2021 written, as Karras et al. 2022 do in sec. 4, eq. 6, as the probability-flow ODE plus a Langevin
# diffusion). Inline against `md.ddim_step` with
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
rows = {}
for lo, hi in ((2, 10), (11, 100), (101, 1000)):
    pick = (t >= lo) & (t <= hi)
    rows[f"t = {lo}..{hi}"] = [remainder[pick].median().item(), remainder[pick].max().item(),
                               (beta[:, 0] / (1 - schedule.alpha_bars[t]))[pick].median().item()]
print(md.table(rows, ["median", "max", "median beta_t / (1 - ab_t)"], header="remainder / step length", digits=3,
               title="|DDPM step - (DDIM step + Langevin step of size beta_t)| / |DDPM step - x_t|"))

# %% [markdown]
# **DDPM's sampler is, step by step, the deterministic sampler plus a Langevin correction at the current noise
# level**: the rewritten step is `ddim_step` with $\eta = 1$ to better than $10^{-12}$, and the split leaves a
# remainder of median 0.001 of the step's length for $t > 100$ (at most 0.014). It grows towards $t = 0$ (median
# 0.131 for $t \le 10$), together with $\beta_t/(1-\bar\alpha_t)$ (last column): the remainder is of the order of that
# ratio itself (about half of it for $t \le 100$: 0.131 against 0.222, 0.017 against 0.034), so the split holds only
# where the ratio is small (its noise $\sqrt{\beta_t}\,z$, for one, stands where the DDPM step has
# $\sigma_t z = \sqrt{\tilde\beta_t}\,z$, and $\tilde\beta_t/\beta_t = 1 - \bar\alpha_{t-1}\beta_t/(1-\bar\alpha_t)$); no run
# separates the remainder's parts. This is the sense in which Algorithm 2
# "resembles Langevin dynamics".
#
# ## 6. The probability-flow ODE: DDIM is Euler's method, Heun is second order
#
# Divide DDIM's $\eta = 0$ step by $\sqrt{\bar\alpha_{t-\Delta t}}$ and write $\bar x = x/\sqrt{\bar\alpha}$,
# $\sigma = \sqrt{(1-\bar\alpha)/\bar\alpha}$ (DDIM's $\sigma$, not the $\sigma_t$ of section 5):
#
# $$\bar x_{t-\Delta t} = \bar x_t + (\sigma_{t-\Delta t} - \sigma_t)\,\epsilon_\theta(x_t, t)\quad\text{(DDIM eq. 13)},\qquad
#   \mathrm d\bar x = \epsilon_\theta\Big(\frac{\bar x}{\sqrt{\sigma^2+1}}, \sigma\Big)\,\mathrm d\sigma\quad\text{(eq. 14)}.$$
#
# Eq. 13 is Euler's method on eq. 14. DDIM's Proposition 1: with the optimal model, eq. 14 is the probability-flow ODE
# of Song et al.'s variance-exploding (VE) SDE, the deterministic process whose marginals are those of the noisy data at
# every $\sigma$. The proof (DDIM app. B) is short. Divide DDPM eq. 4 by $\sqrt{\bar\alpha_t}$:
# $\bar x_t = x_0 + \sigma_t\epsilon$ (DDIM eq. 42), the data blurred by $\mathcal N(0, \sigma^2 I)$, which is the VE
# process $\mathrm d\bar x = \sqrt{\mathrm d[\sigma^2]/\mathrm dt}\,\mathrm dw$ (Song et al. 2021, eq. 9). Its
# probability-flow ODE (their eq. 13, with no drift) is
#
# $$\mathrm d\bar x = -\frac12\,\frac{\mathrm d[\sigma^2]}{\mathrm dt}\,\nabla_{\bar x}\log p_\sigma(\bar x)\,\mathrm dt .$$
#
# With the optimal model $\nabla_x\log q(x_t) = -\epsilon/\sqrt{1-\bar\alpha_t}$ (section 1), and the change of
# variables $\bar x = x/\sqrt{\bar\alpha}$ multiplies the score by $\sqrt{\bar\alpha}$, so
# $\nabla_{\bar x}\log p_\sigma = -\epsilon/\sigma$ (DDIM eq. 49) and
# $\mathrm d\bar x = \tfrac12\cdot 2\sigma\frac{\mathrm d\sigma}{\mathrm dt}\cdot\frac{\epsilon}{\sigma}\,\mathrm dt
# = \epsilon\,\mathrm d\sigma$: eq. 14. The clock $t$ cancels. Every time variable gives the same ODE; only a
# discretisation depends on the variable its steps are taken in. `md.euler_step` against `md.ddim_step` ($\eta = 0$),
# float64, for big and small jumps:

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
# at tight tolerances (its defaults: relative $10^{-10}$, absolute $10^{-12}$). It needs $\epsilon$ at *every* $\sigma$, between the schedule's integer times:
# the exact model gives $\mathbb E[\epsilon\mid x]$ at any noise level (`eps_at`), a trained network only at the
# 1,000 times it was trained on, so only exact models get a reference solution.
#
# **The order of the samplers.** Euler's method is first order: its error over a fixed stretch of the ODE falls like
# $1/S$. `md.heun` corrects each DDIM step with the slope at its end (Karras et al. 2022, Algorithm 1; the trapezoidal
# rule on eq. 14), second order, at $2S-1$ network evaluations for $S$ steps: its last step, from $\tau_1$ to $0$, is an
# Euler step, since a network has no $t = 0$ to evaluate. We run both on `timesteps(T, S, "trailing")` for
# $S = 10 \dots 1000$ with the exact model from 200 starting points, and measure the RMS distance to the reference at
# $t = 100$ (every grid holds it), at $\tau_1$ (Heun, before its last step) and at $t = 0$.

# %%
x_T = torch.randn(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(71))
sigma_T = md.ode_sigma(schedule, T).item()
reference_100 = md.pf_ode_solve(exact, x_T, sigma_T, md.ode_sigma(schedule, 100).item(), schedule)
reference_0 = md.pf_ode_solve(exact, x_T, sigma_T, 0.0, schedule)
tighter = md.pf_ode_solve(exact, x_T, sigma_T, 0.0, schedule, rtol=1e-12, atol=1e-14)
print("the reference to t = 0 with tolerances 100x tighter moves by (RMS)",
      plotting.below((tighter - reference_0).pow(2).sum(1).mean().sqrt(), 1e-9))
try:
    md.pf_ode_solve(mlp, x_T.float(), sigma_T, 0.0, schedule)
except TypeError as error:
    print("the MLP:", str(error).split(";")[0])
Ss = (10, 20, 50, 100, 200, 500, 1000)
nfe = {"DDIM": np.array(Ss), "Heun": 2 * np.array(Ss) - 1}
rms = lambda a, b: (a - b).pow(2).sum(1).mean().sqrt().item()  # noqa: E731
errors, heun_tau1, sigma_1 = {}, {}, {}
for S in Ss:
    tau = md.timesteps(T, S, "trailing")
    sigma_1[S] = md.ode_sigma(schedule, int(tau[0])).item()
    for sname, run in (("DDIM", md.sample), ("Heun", md.heun)):
        traj = run(exact, x_T, schedule, tau, trajectory=True)
        k = int((traj.times == 100).nonzero())
        errors[sname, S] = (rms(traj.xs[k], reference_100), rms(traj.x0, reference_0))
    k1 = int((traj.times == int(tau[0])).nonzero())                       # Heun's state at tau_1
    heun_tau1[S] = rms(traj.xs[k1], md.pf_ode_solve(exact, x_T, sigma_T, sigma_1[S], schedule))
print(md.table({S: [sigma_1[S], 1000 * errors["DDIM", S][0], 1000 * errors["DDIM", S][1],
                    1000 * errors["Heun", S][0], 1000 * heun_tau1[S], 1000 * errors["Heun", S][1],
                    errors["Heun", S][1] / sigma_1[S] ** 2] for S in Ss},
               ["sigma(tau_1)", "DDIM to 100", "DDIM to 0", "Heun to 100", "Heun to tau_1", "Heun to 0",
                "Heun to 0 / sigma(tau_1)^2"], header="S", digits=[4, 4, 4, 4, 4, 4, 2],
               title="RMS error x 1000 against the reference (200 paths); DDIM costs S evaluations, Heun 2S - 1"))
slopes = {(sname, j): np.polyfit(np.log(nfe[sname]), np.log([errors[sname, S][j] for S in Ss]), 1)[0]
          for sname in ("DDIM", "Heun") for j in (0, 1)}
print(md.table({sname: [slopes[sname, 0], slopes[sname, 1]] for sname in ("DDIM", "Heun")},
               ["to t = 100", "to t = 0"], header="log-log slope against evaluations", digits=2))
last = np.polyfit(np.log(nfe["Heun"][-3:]), np.log([errors["Heun", S][1] for S in Ss[-3:]]), 1)[0]
print(f"Heun to t = 0, slope over S = 200, 500, 1000 only: {last:.2f}")

fig, ax = plt.subplots(figsize=(6, 4))
for sname, color in (("DDIM", "C0"), ("Heun", "C3")):
    for j, style in ((0, "o-"), (1, "s--")):
        ax.loglog(nfe[sname], [errors[sname, S][j] for S in Ss], style, color=color, ms=4,
                  label=f"{sname}, {('to t = 100', 'to t = 0')[j]} (slope {slopes[sname, j]:.2f})")
ax.set(xlabel="network evaluations (DDIM: S; Heun: 2S - 1)", ylabel="RMS error against the reference",
       title="probability-flow ODE, exact model (200 paths)")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# **DDIM is first order and Heun second order, up to Heun's last step.** DDIM's step and Euler's agree to better than
# $10^{-12}$. To $t = 100$ the error falls with slope $-1.02$ against evaluations for DDIM and $-2.07$ for Heun: first
# and second order (Heun's $2S-1$ evaluations grow like $S$, so its order shows in this slope too). To $t = 0$ DDIM
# keeps its order ($-0.96$) and Heun does not: $-1.30$ over all $S$, $-1.15$ over $S = 200 \dots 1000$. The column
# "Heun to tau_1" points to the cause: before its last (Euler) step Heun is 0.0156 from the reference at $S = 1000$,
# after it 0.3325 (both $\times 10^{-3}$). Heun's error to $t = 0$, which at $S = 1000$ is almost all the last step's, is of the
# order of $\sigma(\tau_1)^2$: the ratio (last column)
# lies between 2.00 and 3.32 from $S = 20$ on and is still rising (3.01, 3.22, 3.32 at $S = 200, 500, 1000$), so it
# has not settled to a constant. On the trailing grid $\tau_1 = T/S$, and $\sigma(\tau_1)^2 \approx 1-\bar\alpha_{\tau_1}$
# approaches $\beta_1\tau_1$, which shrinks only like $1/S$, once $\tau_1$ is a step or two ($S = 1000$: $\sigma(\tau_1)
# = 0.0100 = \sqrt{\beta_1}$): the error to $t = 0$ tends to first order however accurate the other steps are, though
# over the printed $S$ it still falls a little faster (slope $-1.15$). Per evaluation Heun is ahead to $t = 100$ at every
# budget in the table, but to $t = 0$ it only matches DDIM at about 100 evaluations (15.0199 at 99 against 14.9973 at
# 100) and is ahead from about 200 on. Karras et al. (2022) lay their grid out in $\sigma$ instead, with steps
# shrinking towards small $\sigma$ ($\rho = 7$), ending at $\sigma_\text{min} = 0.002$ before the final step to 0.
#
# **Euler in the SDE's time (DDIM eq. 15).** DDIM sec. 4.3 contrasts its step with "the Euler method for the
# probability flow ODE" of Song et al.: the drift $-\tfrac12 g^2\nabla_{\bar x}\log p_\sigma = \tfrac12 g^2\epsilon/\sigma$
# held at its value at $t$ over the step, with $g^2\Delta t$ taken as the increase of $\sigma^2$ over the step, as
# Song et al. do on a discrete schedule (their app. D.3, eq. 43):
#
# $$\bar x_{t-\Delta t} = \bar x_t + \tfrac12\big(\sigma_{t-\Delta t}^2 - \sigma_t^2\big)\,\frac{\epsilon_\theta(x_t, t)}{\sigma_t}
#   \quad\text{(DDIM eq. 15)}.$$
#
# We implement it as printed (`md.pf_euler_step`), so it needs no continuous $\sigma(t)$: it is Euler's method in
# $\sigma^2$, where eq. 13 is Euler's method in $\sigma$. The two steps differ by
# $(\sigma_t-\sigma_{t-\Delta t})^2\,\epsilon/(2\sigma_t)$, second order in the step, and a step to $\sigma = 0$ goes
# half as far. DDIM calls eq. 15 "equivalent to ours if $\alpha_t$ and $\alpha_{t-\Delta t}$ are close enough. In fewer
# sampling steps, however, these choices will make a difference", and prints no measurement of it. Both samplers, on
# the same trailing grids, from the 200 starting points above (seed 71) and two more sets (seeds 72, 73):

# %%
def walk(step, x, tau):
    """`step` (md.euler_step: DDIM eq. 13; md.pf_euler_step: eq. 15) with the exact eps on tau_S -> ... -> tau_1 -> 0;
    returns {t: x_t} for every t visited."""
    ts = tau.tolist()[::-1] + [0]
    xs = {ts[0]: x}
    for t, t_prev in zip(ts, ts[1:]):
        x = step(x, exact(x, torch.full((len(x),), t)), t, t_prev, schedule)
        xs[t_prev] = x
    return xs


eps = exact(x_T, torch.full((200,), T))
a, a_prev = ab[T], ab[800]
inline = (x_T / a.sqrt() + 0.5 * ((1 - a_prev) / a_prev - (1 - a) / a) * (a / (1 - a)).sqrt() * eps) * a_prev.sqrt()
print("one step T -> 800: max |eq. 15 inline - md.pf_euler_step| =",
      plotting.below((inline - md.pf_euler_step(x_T, eps, T, 800, schedule)).abs().max()))
tau10 = md.timesteps(T, 10, "trailing")
print("S = 10: max |walk(md.euler_step) - md.sample| =",
      plotting.below((walk(md.euler_step, x_T, tau10)[0] - md.sample(exact, x_T, schedule, tau10)).abs().max()))
paths15 = [(x_T, reference_100, reference_0)]
for seed in (72, 73):
    x = torch.randn(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    paths15.append((x, md.pf_ode_solve(exact, x, sigma_T, md.ode_sigma(schedule, 100).item(), schedule),
                   md.pf_ode_solve(exact, x, sigma_T, 0.0, schedule)))
eq15, first = {}, {}
for S in (5, 10, 20, 50, 1000):
    tau = md.timesteps(T, S, "trailing")
    e = {}
    for sname, step in (("DDIM", md.euler_step), ("eq. 15", md.pf_euler_step)):
        runs = [walk(step, x, tau) for x, _, _ in paths15]
        e[sname, 100] = np.array([rms(r[100], r100) for r, (_, r100, _) in zip(runs, paths15)]) if 100 in runs[0] else None
        e[sname, 0] = np.array([rms(r[0], r0) for r, (_, _, r0) in zip(runs, paths15)])
    eq15[S] = [None if e["DDIM", 100] is None else 1000 * e["DDIM", 100],
               None if e["eq. 15", 100] is None else 1000 * e["eq. 15", 100],
               1000 * e["DDIM", 0], 1000 * e["eq. 15", 0], e["eq. 15", 0] / e["DDIM", 0]]
    t1 = int(tau[-2])                                   # the first step alone, T -> t1, seed 71
    r1 = md.pf_ode_solve(exact, x_T, sigma_T, md.ode_sigma(schedule, t1).item(), schedule)
    first[S] = (t1, rms(md.euler_step(x_T, eps, T, t1, schedule), r1), rms(md.pf_euler_step(x_T, eps, T, t1, schedule), r1))
print(md.table(eq15, ["DDIM to 100", "eq. 15 to 100", "DDIM to 0", "eq. 15 to 0", "eq. 15 / DDIM, to 0"], header="S",
               digits=[2, 2, 2, 2, 2],
               title="RMS error x 1000 against the reference, 3 seeds of 200 paths (S = 5: its grid has no t = 100)"))
for sname, j in (("DDIM", 2), ("eq. 15", 3)):
    print(f"{sname} to t = 0, log-log slope from S = 50 to 1000: "
          f"{math.log(eq15[1000][j].mean() / eq15[50][j].mean()) / math.log(1000 / 50):.2f}")
print(f"the first step alone, from sigma_T = {sigma_T:.1f} (seed 71): RMS error against the reference at its end")
for S, (t1, e13, e15) in first.items():
    print(f"  S = {S:>4}, {T} -> {t1:>3}: DDIM {plotting.below(e13, 1e-8) if e13 < 1e-8 else f'{e13:.3g}'}, "
          f"eq. 15 {e15:.3g}" + (f", ratio {float(f'{e15 / e13:.2g}'):,.0f}" if e13 >= 1e-8 else ""))

# %% [markdown]
# **With few steps DDIM's step is far more accurate than Euler in the SDE's time; with many both converge to the
# same solution, eq. 15 still 4.09 times less accurately at $S = 1000$.** To $t = 0$, eq. 15's error is $26.56 \pm 0.39$
# times DDIM's at $S = 5$ (9713.49 against 365.69, $\times 10^{-3}$; the data's modes have standard deviation 0.2,
# `md.toy_mixture`),
# $5.74 \pm 0.06$ times at $S = 50$ and $4.09 \pm 0.04$ at $S = 1000$. Both fall at first order from $S = 50$ to 1000
# (slopes $-0.96$ and $-1.07$), so the distance between their results, at most the sum of their errors, vanishes with
# the step, as DDIM says; the ratio of their errors falls but is not near 1. The first step alone separates them: from
# $\sigma_T = 157.4$ at $S = 5$, DDIM's step lands 0.0015 from the reference and eq. 15's 2.96, about 2,000 times
# farther. Where $\epsilon$ is constant along a path, eq. 14's solution is a straight line in $\sigma$, which Euler in
# $\sigma$ follows exactly and Euler in $\sigma^2$ does not; the first step's ratio is consistent with paths nearly
# straight in $\sigma$ at large $\sigma$, which this run does not measure directly. DDIM's own reason is that $\sigma$
# "depends less directly on the scaling of 'time' $t$".

# %% [markdown]
# ## Going further
#
# ### A. The weights of the noise levels
#
# Song & Ermon chose $\lambda(\sigma) = \sigma^2$ so that every level's weighted loss has the same order of magnitude
# (their sec. 4.2). The exact model shows what that weighting prevents: its DSM loss, the floor no network can beat at
# that level, grows like $1/\sigma_t^2$ as $t \to 0$. Per unit of DSM loss, the bound (DDPM eq. 12 with
# $\sigma_t^2 = \beta_t$) weighs level $t$ by $\beta_t/\alpha_t$ and $L_\text{simple}$ by $2(1-\bar\alpha_t)$:

# %%
with torch.no_grad():
    rows = {t: [1 - ab[t].item(), md.dsm_loss(score_exact, x0, t, schedule, noise=noise).item()]
            for t in (1, 10, 100, 500, 1000)}
print(md.table({t: [s2, l, s2 * l] for t, (s2, l) in rows.items()}, ["sigma_t^2", "DSM loss (per coordinate), exact", "sigma^2 x DSM"],
               header="t", digits=[5, 5, 4]))
steps = torch.arange(1, T + 1)
lam_simple = (2 * (1 - ab[steps])).numpy()
lam_bound = (schedule.betas[steps] / schedule.alphas[steps]).numpy()
fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot(steps, lam_simple / lam_simple.mean(), label=r"$L_{simple}$: $2(1-\bar\alpha_t)$, NCSN's $\lambda = \sigma^2$")
ax.plot(steps, lam_bound / lam_bound.mean(), label=r"the bound (DDPM eq. 12, $\sigma_t^2=\beta_t$): $\beta_t/\alpha_t$")
ax.set(yscale="log", xlabel="t", ylabel="weight / its mean over t", title="weight of the DSM loss at level t (all > 0)")
ax.legend(fontsize=7)
plt.show()
relative = (lam_simple[-1] / lam_bound[-1]) / (lam_simple[0] / lam_bound[0])
print(f"L_simple's weight, relative to the bound's, is {relative:.0f} times larger at t = T than at t = 1")

# %% [markdown]
# The exact model's DSM loss falls by eight orders of magnitude from $t = 1$ to $t = T$; times $\sigma_t^2$ it stays
# between 0.23 and 0.50 up to $t = 100$, then falls (0.0734 at $t = 500$, 0.0000 to four decimals at $t = T$). It
# never exceeds 0.4972, half the per-coordinate $L_\text{simple}$ floor, which cannot exceed $\mathbb E\,\epsilon_i^2 = 1$. Relative to the bound, $L_\text{simple}$ puts 49 times more weight on $t = T$ than on
# $t = 1$: the bound would emphasize the small-$t$ levels.
#
# ### B. The step-size bias of a Langevin chain
#
# The same chains as in section 4 with a ten times larger step, $\delta = 0.2$, from $N(0, I)$ and from a poor start
# (all 1,000 points in one mode):

# %%
run_chains("N(0, I)", 0.2)
run_chains("one mode", 0.2)
print(md.table({f"from {start}, delta = {delta}": list(c.T) for (start, delta), c in sorted(curves.items())},
               [f"k = {k}" for k in checkpoints], header="MMD^2 x 1000 after k steps", digits=2,
               title=f"3 seeds; perfect samples: {band_fix[0]:.2f} +- {band_fix[1]:.2f}"))

# %% [markdown]
# MMD$^2$ on 1,000 points sees a too-wide mode only weakly, so we also measure the bias directly: the mean squared
# distance of a point to its nearest mode centre, averaged over the last 100 steps of every chain, against the same
# statistic on 20,000 exact draws of $q(x_{100})$. Each mode of $q(x_{100})$ is a Gaussian with variance
# $\lambda = \bar\alpha_{100}\,0.2^2 + 1-\bar\alpha_{100}$ per coordinate (the data's modes have std 0.2, `md.toy_mixture`), and for one Gaussian the chain's stationary
# variance is $\lambda/(1-\delta/(4\lambda))$ (section E).

# %%
centres = exact.marginal(t_fix)[1]
lam_mode = exact.marginal(t_fix)[2][0, 0, 0].item()
spread = lambda x: torch.cdist(x.double(), centres).min(1).values.pow(2).mean().item()  # noqa: E731
exact_spread = spread(draw_q(60, 20_000))
rows = {}
for start, delta in sorted(curves):
    per_seed = np.array([np.mean([spread(x) for x in chains[start, delta, s][-100:]]) for s in range(3)])
    factor = md.gaussian_langevin_covariance(exact.marginal(t_fix)[2][0], delta)[0, 0].item() / lam_mode
    rows[f"from {start}, delta = {delta}"] = [per_seed, per_seed / exact_spread, factor]
gap_t = (centres[0] - centres[1]).norm().item() / math.sqrt(lam_mode)
gap_0 = (exact.means[0] - exact.means[1]).norm().item() / exact.covs[0, 0, 0].sqrt().item()
print(f"neighbouring modes are {gap_t:.1f} of their standard deviations apart at t = {t_fix}, {gap_0:.1f} in the data")
print(md.table(rows, ["spread", "/ exact draws'", "closed form, one mode"], header="chain", digits=[4, 3, 3],
               title=f"mean squared distance to the nearest mode centre; 20,000 exact draws: {exact_spread:.4f}"))

# %% [markdown]
# **A larger step reaches the stationary law sooner, and that law is wrong by more.** With $\delta = 0.2$ the MMD$^2$ is
# $4.55 \pm 2.47$ after only 3 steps and between 4.55 and 5.60 afterwards, above the band's upper edge (2.26) at every
# checkpoint but within 2.5 of its standard deviations. The direct measure resolves the bias: the chain's mean squared
# distance to the nearest mode's centre is $1.042$ times that of exact draws at $\delta = 0.02$ and $1.451$ times at
# $\delta = 0.2$. (For one Gaussian mode the variance would widen by 1.037 and 1.563; for the mixture this statistic
# is not that variance, so neither pair is a like-for-like comparison.) Started in one
# mode, the chain has to cross to the other seven ($130.88 \pm 11.72$ after 30 steps, $4.28 \pm 2.29$ after 100) and ends
# level with the chain started from $N(0, I)$ ($5.35 \pm 3.61$ against $5.60 \pm 3.64$): it forgets where it began,
# not its step size, whose bias the spread shows (0.3729 and 0.3730, the same from either start; this statistic does
# not see which mode a point is in, so it measures the step size's widening, not the crossing). At
# $t = 100$ neighbouring modes are 3.9 of their standard deviations apart, in the data 7.7; noise brings the modes
# closer, which is part of Song & Ermon's argument (sec. 4) for sampling at several noise levels, and their Algorithm 1
# ties the step to the level, $\alpha_i \propto \sigma_i^2$.
#
# ### C. Annealed Langevin dynamics, and three samplers at 100 evaluations
#
# Song & Ermon's Algorithm 1 runs Langevin at a ladder of noise levels $\sigma_1 > \dots > \sigma_L$, each level started
# where the previous one ended, with step size $\alpha_i = \varepsilon\,\sigma_i^2/\sigma_L^2$. Their ladder (sec. 5)
# is geometric, 10 levels from $\sigma_1 = 1$ to $\sigma_{10} = 0.01$, with 100 steps per level and
# $\varepsilon = 2\times10^{-5}$. Our levels are the times $t$ whose $\sigma_t = \sqrt{1-\bar\alpha_t}$ is nearest the
# same ladder, with score $-\epsilon_\theta(x, t)/\sqrt{1-\bar\alpha_t}$ (`md.score_model`):

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
# With 100 evaluations of the score: DDIM ($\eta = 0$) and DDPM's step ($\eta = 1$) on `timesteps(T, 100)`, and annealed
# Langevin with 10 levels $\times$ 10 steps or 20 levels $\times$ 5 steps. Song & Ermon's $\varepsilon$ was set for 100
# steps per level; we tried $\{2\times10^{-5}, 10^{-4}, 4\times10^{-4}\}$ on the 10 $\times$ 10 ladder on a separate
# seed (9) and use the MLP's best, $10^{-4}$, for both models and for 20 $\times$ 5 (the exact score scored lower with
# $4\times10^{-4}$ on that one seed; the tuning table shows both).
# MMD$^2$ is measured against 1,000 data points, beside the band of perfect samples:

# %%
ref = exact.sample_data(1000, torch.Generator().manual_seed(5))
band = md.reference_spread(lambda s: exact.sample_data(1000, torch.Generator().manual_seed(100 + s)), ref,
                           lambda a, b: 1000 * md.mmd(a, b), repeats=10)
models = {"exact": exact, "MLP": mlp}
x_T9 = torch.randn(1000, 2, generator=torch.Generator().manual_seed(9))
tried = {name: [1000 * md.mmd(md.annealed_langevin(md.score_model(model, schedule), x_T9, levels, sig[levels], 10, e,
                                                    generator=torch.Generator().manual_seed(9)), ref)
                for e in (2e-5, 1e-4, 4e-4)] for name, model in models.items()}
print(md.table(tried, ["eps = 2e-5", "eps = 1e-4", "eps = 4e-4"], header="10 x 10, seed 9", digits=1,
               title="tuning: MMD^2 x 1000"))
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
quality100 = {}
with torch.no_grad():
    for sname, run in samplers.items():
        quality100[sname] = [np.array([
            1000 * md.mmd(run(model, torch.randn(1000, 2, generator=torch.Generator().manual_seed(seed)),
                              torch.Generator().manual_seed(1000 + seed)), ref) for seed in range(3)])
            for model in models.values()]
print(md.table(quality100, list(models), header="sampler", digits=2,
               title=f"MMD^2 x 1000 at 100 score evaluations, 3 seeds; perfect samples: {band[0]:.2f} +- {band[1]:.2f} "
                     f"(band {band[0] - band[1]:.2f} to {band[0] + band[1]:.2f})"))

# %% [markdown]
# **With the exact score the four samplers cannot be told from data; with the MLP, annealed Langevin is the worst.**
# Exact score: all four means ($-2.56$ to $-0.08$) lie inside the band ($-2.98$ to $0.68$). MLP: DDPM's step
# ($-0.74 \pm 1.61$) is inside the band, DDIM ($1.64 \pm 1.74$) above its upper edge by less than one band standard
# deviation; annealed Langevin is higher, $6.43 \pm 2.04$
# (10 $\times$ 10) and $7.09 \pm 2.29$ (20 $\times$ 5), more than two of its own standard deviations above DDIM's mean.
# Since the same samplers are fine with the exact score, it is the learned score that annealed Langevin handles worse.
# A plausible reason, which this notebook does not isolate: the ladder spends 3 of its 10 levels (30 of the 100
# evaluations) at $t \le 5$, where section 1 measured the MLP's relative score error at 0.385 to 1.923, while DDIM and
# DDPM visit $t = 1$ once. The tuning matters: Song & Ermon's $\varepsilon = 2\times10^{-5}$ (their sec. 5, with 100 steps per
# level), gives 16.6 with the exact score on seed 9.
#
# ### D. DDIM against Heun at equal evaluations, by sample quality
#
# With a trained network there is no reference solution, but there is sample quality. DDIM with $S$ steps against
# Heun with about as many evaluations ($2S' - 1 \approx S$), trailing grids, 3 seeds, the data and band of C:

# %%
pairs = ((10, 5), (20, 10), (50, 25))
quality = {}
with torch.no_grad():
    for name, model in models.items():
        for S_ddim, S_heun in pairs:
            cells = []
            for run, S in ((md.sample, S_ddim), (md.heun, S_heun)):
                cells += [md.ode_sigma(schedule, int(md.timesteps(T, S, "trailing")[0])).item(), np.array([
                    1000 * md.mmd(run(model, torch.randn(1000, 2, generator=torch.Generator().manual_seed(seed)),
                                      schedule, md.timesteps(T, S, "trailing")), ref) for seed in range(3)])]
            quality[f"{name}, DDIM {S_ddim} / Heun {S_heun} ({2 * S_heun - 1} evals)"] = cells
print(md.table(quality, ["DDIM sigma(tau_1)", "DDIM", "Heun sigma(tau_1)", "Heun"], header="model, steps",
               digits=[3, 2, 3, 2], title=f"MMD^2 x 1000, 3 seeds; perfect samples: {band[0]:.2f} +- {band[1]:.2f}"))

# %% [markdown]
# **At 9-10 and 19-20 evaluations Heun is worse than DDIM, with both models and beyond the spreads; at about 50
# MMD$^2$ cannot separate them.** At 19-20 evaluations: exact $19.59 \pm 1.31$ against $3.60 \pm 1.96$, MLP
# $9.33 \pm 0.94$ against $2.77 \pm 2.16$; at 49-50 the differences are smaller than the spreads. Section 6's
# noise-free error table agrees at 19-20 evaluations (to $t = 0$, Heun 117.04 at 19 against DDIM 66.82 at 20,
# $\times 10^{-3}$) and its Heun run nearest 50, at 39 evaluations, is still behind DDIM-50 (59.71 against 28.70); Heun catches up with DDIM only at about 100 evaluations.
#
# This is a toy-data finding. On MNIST, with the shipped U-Net and the same samplers on trailing grids (there with the
# predicted $x_0$ clipped to $[-1, 1]$), the benchmark
# (`benchmarks/README.md` section 6; 2 seeds of 1,000 samples, not rerun here) measured the opposite ordering at about
# 20 evaluations: MNIST FID (the Fréchet distance between Gaussians fitted to a digit classifier's features of the samples and of
# test digits; notebook 07 defines it; lower is better) $12.22 \pm 1.40$ for Heun at 19 evaluations against $15.30 \pm 2.02$ for DDIM-20 (mean $\pm$ half
# the difference of the two seeds). What makes the difference (the data, the metric or the clipping), neither
# measurement isolates; both show that a sampler's order is a statement about small steps.
#
# ### E. Gaussian data: the chain's bias and the ODE's flow map in closed form
#
# For $x_0 \sim \mathcal N(m, C)$ (`toy_mixture("gaussian")`: unit variances, correlation 0.8, eigenvalues 1.8 and
# 0.2) the score is linear. The Langevin step is $x - m \leftarrow A(x-m) + \sqrt\delta z$ with
# $A = I - \tfrac\delta2 C^{-1}$; its stationary covariance solves $S = ASA + \delta I$, so each eigenvalue $\lambda$ of
# $C$ is widened to $\lambda/(1-\delta/(4\lambda))$ (`md.gaussian_langevin_covariance`). We run 5,000 chains for 300
# steps at two step sizes (standard error of an eigenvalue about $\lambda\sqrt{2/5000}$). And in DDIM's variables
# $\bar x \sim \mathcal N(m, C + \sigma^2 I)$, so eq. 14 is linear: along each eigenvector of $C$ the offset from $m$
# scales by $\sqrt{(\lambda + \sigma_\text{end}^2)/(\lambda + \sigma^2)}$ (`md.gaussian_flow_map`).

# %%
_, means_g, covs_g = md.toy_mixture("gaussian")
gauss = md.GaussianDenoiser(means_g[0], covs_g[0], schedule)
rows = {}
for delta in (0.05, 0.4):
    g = torch.Generator().manual_seed(80)
    x = md.langevin(lambda x: gauss.score(x, 0), torch.randn(5000, 2, dtype=torch.float64, generator=g), delta, 300,
                    generator=g)
    empirical = torch.linalg.eigvalsh(torch.cov(x.T)).tolist()
    predicted = torch.linalg.eigvalsh(md.gaussian_langevin_covariance(gauss.cov, delta)).tolist()
    for i in (0, 1):
        rows[f"delta = {delta}, eigenvalue {i + 1}"] = [empirical[i], empirical[i] * math.sqrt(2 / 5000), predicted[i]]
print(md.table(rows, ["chain", "standard error", "closed form"], header="C's eigenvalues 0.2, 1.8", digits=4))
x_T = torch.randn(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(81))
for t_end in (100, 0):
    s_end = md.ode_sigma(schedule, t_end).item()
    closed = md.gaussian_flow_map(x_T, sigma_T, s_end, gauss.mean, gauss.cov)
    solved = md.pf_ode_solve(gauss, x_T, sigma_T, s_end, schedule)
    print(f"sigma_T -> sigma_{t_end}: max |gaussian_flow_map - pf_ode_solve| = "
          + plotting.below((closed - solved).abs().max(), 1e-9))

# %% [markdown]
# **The simulations match the closed forms.** At $\delta = 0.05$ the small eigenvalue is $0.2145 \pm 0.0043$ (standard
# error) against the closed form's 0.2133, while the data's 0.2 is 3.4 standard errors away; at $\delta = 0.4$ it is
# $0.3914 \pm 0.0078$ against 0.4000, twice the data's. The large eigenvalue lies 1.6 and 1.7 standard errors above
# the closed form (both chains share a seed, so these two deviations are not independent). The flow map and
# `pf_ode_solve` agree to better than $10^{-9}$; on section 6's mixture, where no closed form exists, tightening the
# solver's tolerances 100-fold moves its reference by less than $10^{-9}$ (printed there), far below the smallest
# error in that table.

# %% [markdown]
# **Next:** notebook 07 (MNIST) trains and samples the same model on images, with a U-Net in place of the MLP and the
# samplers of notebooks 04-05 unchanged (Heun on MNIST is in `benchmarks/README.md`, section 6). The exercise `exercises/06_scores_and_ode.ipynb` asks you to implement the
# score from $\epsilon$, one Langevin step, the DDIM step as an Euler step of eq. 14, and Heun's second-order step, to
# derive a Langevin chain's variance after $k$ steps, and to measure the order of the Euler and Heun steps.
