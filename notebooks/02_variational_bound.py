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
# **You will be able to:** derive DDPM's variational bound term by term, derive the forward-process posterior
# $q(x_{t-1}\mid x_t, x_0)$ by completing the square, compute the bound exactly where the true likelihood is known,
# and say where across $t$ its bits go.
#
# **You need first:** notebook 01 (the forward process, $\bar\alpha_t$); maths: Bayes' rule, the KL divergence
# between two Gaussians, Jensen's inequality, and completing the square in a Gaussian exponent.
#
# **Time:** about 30 min to read (an estimate); runs in about 45 s on a 2-core CPU (one thread, AVX2 kernels; README, "Running the tests").
#
# A diffusion model is a latent-variable model: the reverse chain
# $p_\theta(x_{0:T}) = p(x_T)\prod_t p_\theta(x_{t-1}\mid x_t)$ generates data, and $x_{1:T}$ are latents
# whose "encoder" $q(x_{1:T}\mid x_0)$ is the fixed forward process. We
#
# 1. derive the bound $L = L_T + \sum_{t>1} L_{t-1} + L_0$ on $-\log p_\theta(x_0)$ (DDPM eq. 5);
# 2. derive the forward-process posterior $q(x_{t-1}\mid x_t, x_0)$ and check it against Bayes' rule;
# 3. compute the bound term by term on Gaussian data, where the exact model and the true likelihood are
#    known in closed form, and look at the gap;
# 4. write the decoder $L_0$ for 8-bit data (DDPM eq. 13);
# 5. see where the bits go across $t$ (DDPM sec. 4.3).

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
# Every term is tractable because $q(x_{t-1}\mid x_t, x_0)$ is a Gaussian we can write down. Bayes' rule on the
# marginals instead gives DDPM's eq. 16, each step against the *true* reverse step $q(x_{t-1}\mid x_t)$, plus the data's
# entropy; "Going further" derives it and checks it on 4-pixel images.
#
# ## 2. The posterior $q(x_{t-1}\mid x_t, x_0)$
#
# Bayes' rule with $x_0$ held fixed: $q(x_{t-1}\mid x_t, x_0) \propto q(x_t\mid x_{t-1})\,q(x_{t-1}\mid x_0)$,
# the one-step likelihood (DDPM eq. 2) times the jump from $x_0$ (eq. 4). Both are Gaussian in $x_{t-1}$;
# every coordinate is treated alike, so write one. Up to terms free of $x_{t-1}$, the log of the product is
#
# $$-\frac{(x_t-\sqrt{\alpha_t}\,x_{t-1})^2}{2\beta_t} - \frac{(x_{t-1}-\sqrt{\bar\alpha_{t-1}}\,x_0)^2}{2(1-\bar\alpha_{t-1})}
# = -\frac12\Big[\underbrace{\Big(\frac{\alpha_t}{\beta_t}+\frac{1}{1-\bar\alpha_{t-1}}\Big)}_{=:\,\lambda}x_{t-1}^2
# - 2\underbrace{\Big(\frac{\sqrt{\alpha_t}}{\beta_t}x_t+\frac{\sqrt{\bar\alpha_{t-1}}}{1-\bar\alpha_{t-1}}x_0\Big)}_{=:\,b}x_{t-1}\Big] + \text{const}.$$
#
# **Completing the square**, $\lambda x^2 - 2bx = \lambda(x - b/\lambda)^2 - b^2/\lambda$, so the posterior is
# Gaussian with precision $\lambda$ and mean $b/\lambda$. Step by step:
#
# 1. The precisions add. Over the common denominator, using $\alpha_t(1-\bar\alpha_{t-1}) + \beta_t = \alpha_t - \bar\alpha_t + 1 - \alpha_t = 1-\bar\alpha_t$:
#    $$\lambda = \frac{\alpha_t(1-\bar\alpha_{t-1}) + \beta_t}{\beta_t(1-\bar\alpha_{t-1})} = \frac{1-\bar\alpha_t}{\beta_t(1-\bar\alpha_{t-1})},
#    \qquad \tilde\beta_t = \frac1\lambda = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t \quad\text{(DDPM eq. 7)}.$$
# 2. The mean is $b/\lambda = b\,\tilde\beta_t$; multiply each term of $b$ by $\tilde\beta_t$:
#    $$\frac{\sqrt{\alpha_t}}{\beta_t}\cdot\frac{(1-\bar\alpha_{t-1})\beta_t}{1-\bar\alpha_t} = \frac{\sqrt{\alpha_t}(1-\bar\alpha_{t-1})}{1-\bar\alpha_t},
#    \qquad \frac{\sqrt{\bar\alpha_{t-1}}}{1-\bar\alpha_{t-1}}\cdot\frac{(1-\bar\alpha_{t-1})\beta_t}{1-\bar\alpha_t} = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}.$$
# 3. Together (DDPM eqs. 6-7):
#    $$q(x_{t-1}\mid x_t,x_0) = \mathcal N\big(\tilde\mu_t(x_t,x_0),\ \tilde\beta_t I\big),\qquad
#    \tilde\mu_t(x_t,x_0) = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1-\bar\alpha_t}x_0 + \frac{\sqrt{\alpha_t}(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}x_t .$$
#
# The mean is a precision-weighted average: $b/\lambda$ weighs the guess $x_t/\sqrt{\alpha_t}$ from the
# likelihood (variance $\beta_t/\alpha_t$) and the guess $\sqrt{\bar\alpha_{t-1}}x_0$ from the jump (variance
# $1-\bar\alpha_{t-1}$) by their precisions. Below, the three steps are coded literally ($\lambda$, $b$, $b/\lambda$)
# and compared with the closed form and with the package's `md.q_posterior`:

# %%
def posterior_by_completing_the_square(x0, x_t, t):
    ab_prev, alpha, beta = schedule.alpha_bars[t - 1], schedule.alphas[t], schedule.betas[t]
    precision = alpha / beta + 1 / (1 - ab_prev)                                   # lambda
    linear = alpha.sqrt() / beta * x_t + ab_prev.sqrt() / (1 - ab_prev) * x0       # b
    return linear / precision, 1 / precision


def posterior_closed_form(x0, x_t, t):                                             # DDPM eqs. 6-7
    ab, ab_prev, beta = schedule.alpha_bars[t], schedule.alpha_bars[t - 1], schedule.betas[t]
    mean = ab_prev.sqrt() * beta / (1 - ab) * x0 + (1 - beta).sqrt() * (1 - ab_prev) / (1 - ab) * x_t
    return mean, (1 - ab_prev) / (1 - ab) * beta


x0 = torch.randn(1000, 2, dtype=torch.float64)
print(f"{'t':>4} {'variance':>10} {'max rel. difference, square vs eq. 7':>37} {'closed form vs md.q_posterior':>30}")
for t in (2, 100, 1000):
    x_t = md.q_sample(x0, t, schedule)
    (m1, v1), (m2, v2), (m3, v3) = (posterior_by_completing_the_square(x0, x_t, t),
                                    posterior_closed_form(x0, x_t, t), md.q_posterior(x0, x_t, t, schedule))
    rel = lambda a, b: max(((a - b).abs() / b.abs().clamp(min=1e-3)).max().item(), abs(v1.item() - v2.item()) / v2.item())
    print(f"{t:>4} {v2.item():>10.3e} {'< 1e-12' if rel(m1, m2) < 1e-12 else 'LARGER':>37} "
          f"{'< 1e-12' if rel(m2, m3) < 1e-12 and abs(v2.item() - v3.item()) < 1e-15 else 'LARGER':>30}")

# %% [markdown]
# **Check against Bayes' rule.** Independently of the algebra: multiply the two densities on a fine grid,
# normalize numerically, and read off the mean and variance. We also print the variance of each factor as
# a function of $x_{t-1}$: $1-\bar\alpha_{t-1}$ for the jump from $x_0$ and $\beta_t/\alpha_t$ for the likelihood.

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
var_prior, var_lik = 1 - ab_prev, beta / (1 - beta)
print(f"variances at t = {t}: jump from x_0 {var_prior:.6f}, likelihood {var_lik:.6f}, posterior {var.item():.6f}")
print(f"posterior / likelihood variance = {var.item() / var_lik:.3f}; the likelihood is "
      f"{var_prior / var_lik:.0f} times as precise as the jump from x_0")

fig, ax = plt.subplots(figsize=(8.5, 2.8))
every = slice(None, None, 50)                                          # plot every 50th grid point
ax.plot(grid[every], (prior / prior.max())[every], label=r"$q(x_{t-1}\mid x_0)$")
ax.plot(grid[every], (likelihood / likelihood.max())[every], label=r"$q(x_t\mid x_{t-1})$ as a function of $x_{t-1}$")
ax.plot(grid[every], (posterior / posterior.max())[every], "k--", label=r"posterior $q(x_{t-1}\mid x_t,x_0)$")
ax.set(xlim=(0.2, 1.4), xlabel=r"$x_{t-1}$", ylabel="density / its maximum",
       title=f"the two factors and their product at t = {t}")
ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
plt.tight_layout()
plt.show()

# %% [markdown]
# The precisions add, so the posterior is narrower than either factor, but at $t = 100$ only slightly
# narrower than the likelihood: its variance is 0.002035 against 0.002076, 2% less. The likelihood
# dominates because it is 49 times as precise as the jump from $x_0$ (variance 0.101 against 0.002076),
# which adds only 2% to the total precision; in the figure the dashed posterior lies almost on the
# likelihood curve. The ratio $\tilde\beta_t/(\beta_t/\alpha_t) = 1/(1 + \beta_t/(\alpha_t(1-\bar\alpha_{t-1})))$
# tells at which $t$ the two factors are comparable:

# %%
jump_var = lambda t: 1 - schedule.alpha_bars[t - 1]                  # q(x_{t-1} | x_0)
likelihood_var = lambda t: schedule.betas[t] / schedule.alphas[t]    # q(x_t | x_{t-1}) as a function of x_{t-1}
print(md.table({f"t = {t}": [jump_var(t), likelihood_var(t), schedule.beta_tildes[t] / likelihood_var(t)]
                for t in (2, 3, 5, 10, 100, 1000)},
               ["jump variance", "likelihood variance", "posterior / likelihood"], header="step", digits=[6, 6, 3]))

# %% [markdown]
# Only in the first steps, where $x_0$ is still close to $x_{t-1}$, does knowing $x_0$ narrow the
# posterior much: to 0.45 of the likelihood's variance at $t = 2$, 0.74 at $t = 5$, 0.85 at $t = 10$. At
# $t = 100$ and $t = 1000$ the ratio is 0.98: $x_t$ alone pins $x_{t-1}$ down nearly as well. Section 3 meets this again.
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
#
# **DDPM eq. 8.** With both variances fixed, the KL between $q(x_{t-1}\mid x_t,x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I)$
# and $p_\theta(x_{t-1}\mid x_t)$ in $d$ dimensions is
#
# $$L_{t-1} = \mathbb E_q\Big[\frac{1}{2\sigma_t^2}\big\|\tilde\mu_t(x_t,x_0) - \mu_\theta(x_t,t)\big\|^2\Big] + C,
# \qquad C = \frac d2\Big(\log\frac{\sigma_t^2}{\tilde\beta_t} + \frac{\tilde\beta_t}{\sigma_t^2} - 1\Big),$$
#
# where $C$ does not depend on $\theta$: training $\mu_\theta$ is regression onto the posterior mean.
#
# **The exact bound.** For the exact model, $\mu_\theta(x_t, t) = \tilde\mu_t(x_t, \mathbb E[x_0\mid x_t])$, and
# $\tilde\mu_t$ is linear in $x_0$, so the squared error in eq. 8 is the posterior spread of $x_0$:
# $\mathbb E\|\tilde\mu_t - \mu_\theta\|^2 = c_t^2\,\mathrm{tr}\,\mathrm{Cov}(x_0\mid x_t)$ with
# $c_t = \sqrt{\bar\alpha_{t-1}}\beta_t/(1-\bar\alpha_t)$, and for Gaussian data
# $\mathrm{Cov}(x_0\mid x_t) = C - \bar\alpha_t C\,(\bar\alpha_t C + (1-\bar\alpha_t)I)^{-1}C$ is the same for every $x_t$.
# Likewise $L_0 = \tfrac d2\log(2\pi\sigma_1^2) + \mathrm{tr}\,\mathrm{Cov}(x_0\mid x_1)/(2\sigma_1^2)$ and $L_T$ is a KL
# between Gaussians. So every term of the bound has an exact value, a few lines below. The package's
# `md.vlb_terms` estimates the same terms by Monte Carlo (one draw of $x_t$ per sample and $t$), which
# we print beside them as a check.

# %%
_, means, covs = md.toy_mixture("gaussian")
m_data, C_data = means[0], covs[0]
exact = md.GaussianDenoiser(m_data, C_data, schedule)
true_nll = exact.entropy()
d, T = 2, schedule.T
ab_all, betas, beta_tildes = schedule.alpha_bars, schedule.betas, schedule.beta_tildes


def exact_bound_terms(variance):
    """E[L_k] for k = 0..T in nats for the exact model of N(m, C) (array of length T + 1)."""
    sigma2 = betas.clone() if variance == "beta" else beta_tildes.clone()
    if variance == "beta_tilde":
        sigma2[1] = beta_tildes[2]                       # as md.vlb_terms: tilde-beta_1 = 0 is replaced
    trace_cov = []                                       # tr Cov(x_0 | x_t), t = 0..T
    for t in range(T + 1):
        Sigma = ab_all[t] * C_data + (1 - ab_all[t]) * torch.eye(d, dtype=torch.float64)
        trace_cov.append(torch.trace(C_data - ab_all[t] * C_data @ torch.linalg.solve(Sigma, C_data)).item())
    L = np.zeros(T + 1)
    L[0] = 0.5 * (d * math.log(2 * math.pi * sigma2[1]) + trace_cov[1] / sigma2[1])
    for t in range(2, T + 1):
        c_t = ab_all[t - 1].sqrt() * betas[t] / (1 - ab_all[t])
        const = 0.5 * d * (math.log(sigma2[t] / beta_tildes[t]) + beta_tildes[t] / sigma2[t] - 1)
        L[t - 1] = const + c_t ** 2 * trace_cov[t] / (2 * sigma2[t])                # eq. 8
    a = ab_all[T]
    L[T] = 0.5 * (a * (torch.trace(C_data) + m_data @ m_data) - d * a - d * math.log(1 - a)).item()
    return L


exact_terms = {v: exact_bound_terms(v) for v in ("beta", "beta_tilde")}
g = torch.Generator().manual_seed(0)
x0 = exact.sample_data(4000, g, dtype=torch.float64)
terms = {v: md.vlb_terms(exact, x0, schedule, decoder="gaussian", variance=v, generator=g) for v in ("beta", "beta_tilde")}

print(f"data covariance eigenvalues: {torch.linalg.eigvalsh(C_data).numpy().round(2)}")
noise_to_signal = (1 - ab_all[1:]) / ab_all[1:]                         # (1 - ab_t) / ab_t, t = 1..T
print(f"(1 - ab_t) / ab_t < 0.02 for t = 1..{int((noise_to_signal < 0.02).nonzero().max()) + 1}")
print(f"true NLL (entropy): {true_nll:.4f} nats")
mc = {v: (terms[v].sum(1).mean(), terms[v].sum(1).std() / math.sqrt(len(x0))) for v in terms}
print(md.table({v: [L.sum(), L.sum() - true_nll, mc[v][0], mc[v][1], (mc[v][0] - L.sum()) / mc[v][1],
                    L[-1], L[1:-1].sum(), L[0]] for v, L in exact_terms.items()},
               ["bound, exact", "gap to NLL", "Monte Carlo (4000)", "s.e.", "z", "L_T", "sum L_t-1", "L_0"],
               header="sigma_t^2", digits=[4, 4, 3, 3, 1, 5, 3, 3],
               title="the bound in nats, exact and by Monte Carlo (z: the difference in standard errors)"))

# %% [markdown]
# Both bounds sit above the true NLL, as they must, and the Monte Carlo estimates agree with the exact
# values within two standard errors (the column z: 1.5 and 0.3). With $\sigma_t^2 = \beta_t$ the bound is almost
# tight: 0.0017 nats above the NLL. With $\tilde\beta_t$ it is 1.15 nats above, 0.92 of them in the sum of
# the $L_{t-1}$ and 0.23 in $L_0$.
#
# The DDPM paper explains the choice (sec. 3.2): $\sigma_t^2 = \beta_t$ is optimal for $x_0\sim\mathcal N(0, I)$,
# $\tilde\beta_t$ for $x_0$ a single point. Here is why $\beta_t$ fits our data. The true reverse variance
# is $\mathrm{Var}(x_{t-1}\mid x_t) = \tilde\beta_t + c_t^2\,\mathrm{Var}(x_0\mid x_t)$: the posterior's own
# variance plus what $x_t$ leaves unknown about $x_0$. When the data are spread far more widely than the
# noise (our covariance eigenvalues are 0.2 and 1.8, while $(1-\bar\alpha_t)/\bar\alpha_t$ stays below 0.02, a
# tenth of the smaller one, up to $t = 40$, as printed above), $\mathrm{Var}(x_0\mid x_t)\approx(1-\bar\alpha_t)/\bar\alpha_t$ and the sum simplifies to
# $\beta_t/\alpha_t \approx \beta_t$. Choosing $\tilde\beta_t$ drops the second part, which matters only
# where $\tilde\beta_t$ is much smaller than $\beta_t$. Where does the gap come from? Plot the per-step
# terms (exact values) and print the share of the gap by step $t$:

# %%
ts = np.arange(2, T + 1)                                 # L_{t-1} for t = 2..T
gap = exact_terms["beta_tilde"][1:-1] - exact_terms["beta"][1:-1]
print(f"gap in the sum of L_t-1: {gap.sum():.3f} nats")
print(md.table({f"t = 2..{t_end}": [gap[: t_end - 1].sum(), 100 * gap[: t_end - 1].sum() / gap.sum(),
                                    beta_tildes[t_end] / schedule.betas[t_end]] for t_end in (2, 5, 10, 50, 100, 1000)},
               ["gap (nats)", "% of the gap", "beta_tilde_t / beta_t at the last t"], header="steps", digits=[3, 0, 3]))

fig, ax = plt.subplots(1, 3, figsize=(13, 3.2))
for (v, L), c in zip(exact_terms.items(), ("C0", "C1")):
    label = r"$\sigma_t^2=\beta_t$" if v == "beta" else r"$\sigma_t^2=\tilde\beta_t$"
    ax[0].plot(ts, L[1:-1], color=c, lw=1.2, label=label)
    ax[1].plot(ts, np.cumsum(L[1:-1]), color=c, label=label)
ax[2].plot(ts, np.cumsum(gap) / gap.sum(), color="C3", label="share of the gap")
ax[2].plot(ts, (beta_tildes[2:] / betas[2:]).numpy(), color="0.5", ls="--", label=r"$\tilde\beta_t/\beta_t$")
ax[0].set(xscale="log", yscale="log", xlabel="t (log scale)", ylabel=r"$L_{t-1}$ (nats, all $> 0$)",
          title=r"per-step terms $L_{t-1}$ (exact)")
ax[1].set(xscale="log", xlabel="t (log scale)", ylabel="nats", title=r"cumulative $\sum_{s=2}^{t} L_{s-1}$ (exact)")
ax[2].set(xscale="log", xlabel="t (log scale)", ylabel="fraction", ylim=(0, 1.05),
          title=r"$\tilde\beta_t$ minus $\beta_t$: share of the gap by step t")
for a in ax:
    a.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The extra cost of $\tilde\beta_t$ is not spread over the large $t$: it sits at the smallest $t$. The
# step $t = 2$ alone carries 0.41 of the 0.92 nats (45%), the steps $t = 2..10$ ($L_1$ to $L_9$) 86%, and by $t = 50$ 0.90
# nats (98%) are spent. The reason is the ratio $\tilde\beta_t/\beta_t = (1-\bar\alpha_{t-1})/(1-\bar\alpha_t)$:
# it is 0.45 at $t = 2$ and tends to 1 as $t$ grows, so at large $t$ the two choices are nearly the same
# distribution. In the first steps $\tilde\beta_t$ is too confident: it leaves out the uncertainty about
# $x_0$, which is of the same size as $\tilde\beta_t$ there (section 2: the posterior is 0.45 of the
# likelihood's variance at $t = 2$). On the log time axes the orange curves separate from the blue ones
# at the very first steps (the per-step terms merge again within a few dozen steps: 98% of the gap is spent by
# $t = 50$; the cumulative ones then run parallel), and the right panel shows the share of the gap
# rising while $\tilde\beta_t/\beta_t$ is still well below 1.
#
# ## 4. The decoder for 8-bit data (DDPM eq. 13)
#
# Images are discrete: each pixel takes one of 256 values, scaled to $\{-1, -1+\tfrac2{255}, \dots, 1\}$. A
# Gaussian density at $x_0$ is then not a probability, and a likelihood in nats per pixel would be
# meaningless. DDPM's last reverse step therefore integrates the Gaussian $\mathcal N(\mu_\theta(x_1, 1), \sigma_1^2)$
# over each pixel's bin, one gray level wide, and extends the two outermost bins to $\pm\infty$ so that the
# 256 probabilities sum to one (DDPM eq. 13):
#
# $$p_\theta(x_0\mid x_1) = \prod_{i=1}^{D}\int_{\delta_-(x_0^i)}^{\delta_+(x_0^i)}\mathcal N\big(x;\ \mu_\theta^i(x_1,1),\ \sigma_1^2\big)\,dx,
# \qquad \delta_+(x) = \begin{cases}\infty & x = 1\\ x + \tfrac1{255} & x < 1\end{cases},\quad
# \delta_-(x) = \begin{cases}-\infty & x = -1\\ x - \tfrac1{255} & x > -1.\end{cases}$$
#
# So $L_0 = -\log p_\theta(x_0\mid x_1)$ is a sum over pixels of $-\log$ of a difference of two normal CDFs. Inline
# with `scipy`, then compared with the package's `md.discretized_gaussian_log_likelihood`, for one pixel whose
# predicted mean lies inside the range and one whose mean lies near the top edge. DDPM sets its variances only for
# $1 < t \le T$ (sec. 3.2); we take $\sigma_t^2 = \beta_t$ at $t = 1$ too, so $\sigma_1 = \sqrt{\beta_1} = 0.01$, 1.3 gray
# levels (one gray level is $2/255 = 0.0078$). DDPM's official code (`fixedlarge`, which its CIFAR-10 script uses)
# puts $\sigma_1^2 = \tilde\beta_2$ instead, 0.94 gray levels (printed below).

# %%
x_levels = torch.arange(256, dtype=torch.float64) / 127.5 - 1       # the 256 values of a pixel in [-1, 1]


def bin_probabilities(mu, sigma):                                   # eq. 13 for one pixel, all 256 values
    x = x_levels.numpy()
    upper = np.where(x > 1 - 1e-9, np.inf, x + 1 / 255)
    lower = np.where(x < -1 + 1e-9, -np.inf, x - 1 / 255)
    return stats.norm.cdf(upper, mu, sigma) - stats.norm.cdf(lower, mu, sigma)


sigmas = (0.004, math.sqrt(schedule.betas[1].item()), 0.03)
mus = {"mean 0.3 (gray level 165.75)": 0.3, "mean 0.99 (gray level 253.7)": 0.99}
probs, rows, worst = {}, {}, 0.0
for name, mu in mus.items():
    for sigma in sigmas:
        p = bin_probabilities(mu, sigma)
        p_pkg = md.discretized_gaussian_log_likelihood(x_levels, torch.tensor(mu, dtype=torch.float64), sigma ** 2).exp()
        probs[name, sigma], worst = p, max(worst, np.abs(p - p_pkg.numpy()).max())
        true_level = 166 if mu < 0.9 else 254
        rows[f"mean {mu}, sigma_1 {sigma:.3f}"] = [sigma * 127.5, p.sum(), p.max(), p.argmax(), p[-1],
                                                    -np.log2(p[true_level])]
print(md.table(rows, ["sigma_1 (levels)", "sum of 256", "largest", "at level", "top bin (255)", "-log2 P (bits)"],
               header="pixel", digits=[2, 6, 3, 0, 3, 2],
               title="bin probabilities; -log2 P of the true level: 166 for mean 0.3, 254 for mean 0.99"))
print("max |inline - package| over all bins:", md.plotting.below(worst, 1e-10))
print(f"sigma_1 = sqrt(beta_1): {math.sqrt(schedule.betas[1].item()) * 127.5:.2f} gray levels; "
      f"the official code's sqrt(beta_tilde_2): {math.sqrt(schedule.beta_tildes[2].item()) * 127.5:.2f}")

fig, ax = plt.subplots(1, 2, figsize=(10, 3), sharey=True)
edges = np.arange(257) - 0.5                                         # bin k covers gray levels k +- 0.5
for a, (name, mu) in zip(ax, mus.items()):
    for sigma, c in zip(sigmas, ("C0", "C1", "C2")):
        a.stairs(probs[name, sigma], edges, color=c, label=rf"$\sigma_1$ = {sigma:.3f} ({sigma * 127.5:.1f} gray levels)")
    a.axvline((mu + 1) * 127.5, color="k", lw=0.8, ls=":", label=r"$\mu_\theta$")
    a.set(xlim=(235, 256) if mu > 0.9 else (150, 182), xlabel="pixel value (gray level 0..255)",
          title=f"bin probabilities, {name}")
    a.xaxis.get_major_locator().set_params(integer=True)
ax[0].set_ylabel("probability of the bin")
ax[0].legend(fontsize=7), ax[1].legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# $L_0$ is cheap only where $\mu_\theta$ is accurate to a gray level. Suppose the true pixel value is 166 and
# $\mu_\theta$ lies at 165.75, a quarter level from the bin's lower edge. With $\sigma_1$ = half a gray level the bin gets probability 0.62, so coding
# the pixel costs 0.70 bits; with our $\sigma_1 = \sqrt{\beta_1}$ (1.3 levels) the mass spreads over a
# few bins, 0.30 and 1.74 bits; with 3.8 levels, 0.10 and 3.27 bits. A narrower decoder is cheaper only if
# $\mu_\theta$ is that accurate: $L_0$ pays for the error of $\mu_\theta$ at gray-level resolution. Near the edge (right
# panel) the top bin, value 255, collects all the mass above 254.5, so no probability is lost outside $[-1, 1]$ and
# the 256 probabilities sum to one (printed above): 0.27 with $\sigma_1 = 0.01$, second only to the bin of 254
# (0.30), and 0.42 with $\sigma_1 = 0.03$, the largest of all.
#
# ## 5. Where the bits go
#
# DDPM (sec. 4.3) observes that most of the lossless codelength is spent on details nobody can see. We
# reproduce the effect on 8-bit data: a Gaussian in $[-1, 1]^2$ quantized to 256 levels per
# coordinate, with the decoder of section 4 and $\sigma_t^2 = \beta_t$. Reading the reverse chain as a progressive code,
# by time $t$ the receiver has been sent $L_T + \sum_{s > t} L_{s-1}$ bits (the *rate*) and can form the
# estimate $\hat x_0 = \mathbb E[x_0 \mid x_t]$, whose error is the *distortion* (in gray levels out of 255).
# The bound terms are Monte Carlo estimates here (the exact model is for the continuous Gaussian, not for
# the quantized data), so we repeat with three seeds of 2,000 points and print the standard deviation over seeds.

# %%
cov8 = torch.tensor([[0.09, 0.03], [0.03, 0.04]], dtype=torch.float64)
model8 = md.GaussianDenoiser(torch.zeros(2), cov8, schedule)
check_ts = np.array([1, 2, 5, 10, 20, 50, 100, 200, 400, 700, 1000])
runs = []
for seed in (1, 2, 3):
    g = torch.Generator().manual_seed(seed)
    x8 = ((model8.sample_data(2000, g, dtype=torch.float64).clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1
    L8 = md.vlb_terms(model8, x8, schedule, decoder="discretized", variance="beta", generator=g)
    bits = (L8.mean(0) / (2 * math.log(2))).numpy()       # bits per dimension, index k = L_k
    rate = np.array([bits[t:].sum() for t in check_ts])    # L_T and the L_{s-1} for s > t
    distortion = []
    for t in check_ts:
        x_t = md.q_sample(x8, int(t), schedule, generator=g)
        x0_hat = md.predict_x0(x_t, model8(x_t, int(t)), int(t), schedule)
        distortion.append(((x0_hat - x8) * 127.5).pow(2).mean().sqrt().item())
    runs.append((bits.sum(), bits[0], rate, np.array(distortion)))
total_bits, l0_bits = np.array([r[0] for r in runs]), np.array([r[1] for r in runs])
share = np.array([r[2] / r[0] for r in runs])             # (seed, t): share of the bits sent by time t
distortion = np.array([r[3] for r in runs])
print(f"total: {md.mean_spread(total_bits, 2)} bits per dimension")
print(md.table({f"t = {t}": [100 * share[:, i], distortion[:, i]] for i, t in enumerate(check_ts)},
               ["% of bits sent", "RMSE (gray levels)"], header="step", digits=[1, 2],
               title="mean +- std over 3 seeds of 2,000 points"))
k = max(i for i in range(len(check_ts)) if distortion[:, i].mean() < 2)
print(f"once the error is below 2 gray levels (t = {check_ts[k]}), {1 - share[:, k].mean():.0%} of the bits are still to be sent; "
      f"the last 10 steps (L_0 .. L_9) carry {1 - share[:, 3].mean():.0%}")
rmse1 = distortion[:, 0].mean()
print()
print(md.table({"DDPM, CIFAR-10 (sec. 4.3)": [1.78, 1.97, 100 * 1.97 / 3.75, 0.95],
                "here, exact model, 2-D toy": [total_bits - l0_bits, l0_bits, 100 * l0_bits / total_bits, distortion[:, 0]]},
               ["rate L_1..L_T", "distortion L_0", "L_0 share (%)", "RMSE at t=1"], header="bits per dimension",
               digits=[2, 2, 0, 2]))
print(f"log2(RMSE * sqrt(2 pi e)): DDPM {math.log2(0.95 * math.sqrt(2 * math.pi * math.e)):.2f}, "
      f"here {math.log2(rmse1 * math.sqrt(2 * math.pi * math.e)):.2f} bits")

fig, ax = plt.subplots(1, 2, figsize=(9, 3))
for s in range(3):
    ax[0].plot(check_ts, share[s], "o-", ms=3, lw=0.8, label=f"seed {s + 1}")
    ax[1].plot(share[s], distortion[s], "o-", ms=3, lw=0.8, label=f"seed {s + 1}")
ax[0].set(xscale="log", xlabel="t (log scale)", ylabel="share of bits sent", title="rate: bits sent by time t")
ax[1].set(xlabel="share of bits sent", ylabel="RMSE in gray levels (log scale)", yscale="log",
          title="rate-distortion")
ax[1].set_yticks([1, 2, 5, 10, 20, 30], labels=["1", "2", "5", "10", "20", "30"])
ax[1].minorticks_off()
ax[0].legend(fontsize=7), ax[1].legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# Most of the codelength (65%) is spent once the estimate is within about five gray levels: read the table from the bottom up, in the
# order the reverse chain runs. By $t = 2$ the estimate is within two gray levels, yet 43% of the codelength is
# still to come, and the last ten steps ($L_0, \dots, L_9$) carry 65% of it. Those last bits describe detail
# finer than about five gray levels (the error at $t = 10$), and $L_0$ alone (35%) picks the exact level of each
# coordinate; the three seeds agree to
# within a percentage point. This is the paper's reading (sec. 4.3) of why DDPM's samples are excellent
# while its log-likelihood is not competitive with other likelihood-based models: much of the codelength
# pays for detail that does not show.
#
# Beside DDPM's own numbers: their distortion $L_0$ is 53% of the codelength against our 35%, and their
# reconstruction error at $t = 1$ is 0.95 gray levels against our 1.29. Both distortions follow the same
# rule of thumb: a Gaussian error of RMSE $r$ gray levels costs about $\log_2(r\sqrt{2\pi e})$ bits per
# dimension to correct, 1.97 bits for $r = 0.95$ (exactly DDPM's $L_0$) and 2.41 for our 1.29 (our $L_0$ is
# 2.40). Our exact model's error at $t = 1$ is essentially the noise, $\sqrt{1-\bar\alpha_1}$ = 1.3 gray
# levels: it is the best estimate for the continuous Gaussian, and it does not use the fact that our data
# lie on the 8-bit grid. DDPM's trained network does better than the noise level; we do not test why (an image pixel is
# partly predictable from its neighbours, which a continuous Gaussian cannot use, is one possibility). The shares
# differ mainly through the rate: our toy Gaussian sends 4.5 bits per dimension before $L_0$, CIFAR-10 images 1.78.
#
# ## Summary
#
# - The bound is $L_T + \sum_{t>1} L_{t-1} + L_0$; each $L_{t-1}$ compares the reverse step with the
#   Gaussian posterior $q(x_{t-1}\mid x_t, x_0)$, whose mean and variance we derived by completing the square
#   and checked against Bayes' rule on a grid. With fixed variances, $L_{t-1}$ is a squared error between
#   means (DDPM eq. 8).
# - With the exact model of Gaussian data, computed exactly, the bound is 0.0017 nats above the true NLL
#   with $\sigma_t^2 = \beta_t$ and 1.15 nats above with $\tilde\beta_t$; that extra cost sits in the first
#   steps, 45% of the $L_{t-1}$ part at $t = 2$ alone, where $\tilde\beta_t/\beta_t$ is furthest below 1.
# - For 8-bit data the decoder integrates a Gaussian over each pixel's bin (DDPM eq. 13).
# - On quantized toy data, 65% of the codelength goes to the last ten of 1000 steps, where the estimate
#   is already within 5.5 gray levels (43% after $t = 2$, within 2 levels).

# %% [markdown]
# ## Going further: the bound against the true reverse step (DDPM eq. 16)
#
# Section 1 applied Bayes' rule to each forward step *conditioned on $x_0$*. Applied to the marginals instead
# (DDPM appendix A, eqs. 23-26), $q(x_t\mid x_{t-1}) = q(x_{t-1}\mid x_t)\,q(x_t)/q(x_{t-1})$, and the ratios
# $q(x_{t-1})/q(x_t)$ telescope over $t = 1..T$ to $q(x_0)/q(x_T)$. With $L$ averaged over the data as well (DDPM
# eq. 3 takes the expectation over $x_0$ too):
#
# $$L = D_\mathrm{KL}\big(q(x_T)\,\|\,p(x_T)\big) + \mathbb E_q\Big[\sum_{t\ge1} D_\mathrm{KL}\big(q(x_{t-1}\mid x_t)\,\|\,p_\theta(x_{t-1}\mid x_t)\big)\Big] + H(x_0)
# \qquad\text{(DDPM eq. 16)}.$$
#
# - $H(x_0) = -\mathbb E\log q(x_0)$ is what the telescoped $q(x_0)$ leaves: the data's entropy. The KLs are
#   $\ge 0$, so no model's bound goes below it; it is reached only when $p(x_T)$ and every reverse step are the true ones.
# - The true reverse step is section 2's posterior averaged over what $x_t$ says about $x_0$,
#   $q(x_{t-1}\mid x_t) = \sum_{x_0} q(x_0\mid x_t)\,q(x_{t-1}\mid x_t, x_0)$ for data on finitely many points. It needs
#   the data law itself: DDPM calls this form "not tractable to estimate" (appendix A) and uses it for the argument of
#   sec. 4.3 (notebook 08 takes it to a diffusion that masks one pixel per step: an autoregressive model).
# - Term by term, eq. 5 minus eq. 16 is $\mathbb E\log[q(x_{t-1}\mid x_t,x_0)/q(x_{t-1}\mid x_t)] = I(x_0; x_{t-1}\mid x_t)$,
#   which does not involve $\theta$; by the Markov property it is $H(x_0\mid x_t) - H(x_0\mid x_{t-1})$. With
#   $H(x_0) - H(x_0\mid x_T)$ at the prior and $H(x_0\mid x_1)$ at $t = 1$ the differences telescope to $H(x_0)$, and
#   over a band of steps $t = a..b$ they sum to $H(x_0\mid x_b) - H(x_0\mid x_{a-1})$, computable from $q(x_0\mid x_t)$
#   alone (our derivation; the paper gives only the telescoping of eqs. 23-26).
#
# **A world where every term is computable:** five 2x2 images (4 pixels) on the 8-bit grid with probabilities
# 0.35 to 0.08. Then $H(x_0)$ is a sum of five terms (`md.data_entropy`), $q(x_{t-1}\mid x_t)$ is a mixture of five
# Gaussians (`md.reverse_log_prob`), and the decoder of eq. 13 makes $p_\theta(x_0\mid x_1)$ a probability on the same
# grid, so the $t = 1$ term is a KL between two discrete laws, exact given $x_1$. The KL of a mixture to a Gaussian has
# no closed form: `md.marginal_vlb_terms` estimates each step from one forward draw as
# $\log q(x_{t-1}\mid x_t) - \log p_\theta(x_{t-1}\mid x_t)$, a code path apart from `md.vlb_terms`. Its cost per step
# grows with points times pixels, which is why the world is this small. Two
# imperfect models, both with $\sigma_t^2 = \beta_t$: the **exact mean** $\mathbb E[\epsilon\mid x_t]$ for these five
# images (its step is still one Gaussian where the true step is a mixture), and a **Gaussian fit**,
# `md.GaussianDenoiser` with the images' mean and covariance. Eq. 5 is `md.vlb_terms` on 4,000 draws of the data,
# eq. 16 the new terms on 4,000 independent draws; the column "model-free" is the band's $H(x_0\mid x_b) -
# H(x_0\mid x_{a-1})$, and the spreads are standard errors.

# %%
levels = torch.tensor([[64, 64, 64, 64], [192, 192, 192, 192], [64, 192, 64, 192], [64, 64, 192, 192],
                       [192, 64, 64, 192]], dtype=torch.float64)       # five 2x2 images, pixels 1 2 / 3 4 in a row
points = levels / 127.5 - 1
probs = torch.tensor([0.35, 0.25, 0.2, 0.12, 0.08], dtype=torch.float64)
H0 = md.data_entropy(probs)


def exact_mean(x_t, t):                                   # E[eps | x_t] for data on the five images
    t = int(t[0])
    ab = schedule.alpha_bars[t]
    x0_hat = md.data_posterior(x_t, t, points, probs, schedule).exp() @ points
    return (x_t - ab.sqrt() * x0_hat) / (1 - ab).sqrt()


m_pts = probs @ points
models = {"exact mean": exact_mean,
          "Gaussian fit": md.GaussianDenoiser(m_pts, ((points - m_pts).T * probs) @ (points - m_pts), schedule)}
bands = {"t = 1": [0], "t = 2..10": list(range(1, 10)), "t = 11..100": list(range(10, 100)),
         "t = 101..T, x_T": list(range(100, T + 1))}                 # columns of L_{t-1}; column T is the prior
clean = lambda v: round(float(v), 6) + 0.0                             # no "-0.0000" from rounding noise
g = torch.Generator().manual_seed(0)
H_given = {}                                   # H(x_0 | x_t) = E[-sum_k w_k log w_k], w = q(x_0 | x_t), 20,000 draws
for t in (1, 10, 100):
    x_t = md.q_sample(points[torch.multinomial(probs, 20_000, replacement=True, generator=g)], t, schedule, generator=g)
    w = md.data_posterior(x_t, t, points, probs, schedule)
    h = -(w.exp() * w).sum(1)
    H_given[t] = (h.mean().item(), h.std().item() / math.sqrt(len(h)))
predicted = {"t = 1": (H_given[1][0], H_given[1][1]),               # the model-free difference of each band
             "t = 2..10": (H_given[10][0] - H_given[1][0], math.hypot(H_given[1][1], H_given[10][1])),
             "t = 11..100": (H_given[100][0] - H_given[10][0], math.hypot(H_given[10][1], H_given[100][1])),
             "t = 101..T, x_T": (H0 - H_given[100][0], H_given[100][1]), "total": (H0, 0.0)}
print(f"H(x_0) = {H0:.4f} nats; H(x_0 | x_t) at t = 1, 10, 100: "
      + ", ".join(f"{m:.4f} +- {e:.4f}" for m, e in H_given.values()))
n = 4000
for name, model in models.items():
    g = torch.Generator().manual_seed(0)
    x0 = points[torch.multinomial(probs, n, replacement=True, generator=g)]
    L5 = md.vlb_terms(model, x0, schedule, decoder="discretized", variance="beta", generator=g)
    L16 = md.marginal_vlb_terms(model, points, probs, n, schedule, variance="beta", generator=g)
    rows = {}
    for band, cols in list(bands.items()) + [("total", list(range(T + 1)))]:
        a, b = L16[:, cols].sum(1), L5[:, cols].sum(1)
        sa, sb = a.std().item() / math.sqrt(n), b.std().item() / math.sqrt(n)
        diff, (pred, se_pred) = (b.mean() - a.mean()).item(), predicted[band]
        se = math.sqrt(sa ** 2 + sb ** 2 + se_pred ** 2)
        rows[band] = [clean(a.mean()), clean(sa), clean(b.mean()), clean(sb), clean(diff), clean(pred),
                      clean((diff - pred) / se) if se > 1e-6 else None]
    print(md.table(rows, ["eq. 16 KLs", "s.e.", "eq. 5", "s.e.", "eq. 5 - eq. 16", "model-free", "z"], header=name,
                   digits=[3, 3, 3, 3, 3, 3, 1],
                   title=f"{name}: nats, {n} draws each; z = (difference - model-free value) / its s.e."))
    kl, se_t = L16.mean(0)[1:T], L16.std(0)[1:T] / math.sqrt(n)          # the steps t = 2..T one by one
    print(f"  t = 1: smallest KL over the {n} draws of x_1: {L16[:, 0].min():.3f}; t = 2..T: "
          f"{int((kl > 3 * se_t).sum())} of {T - 1} steps above 3 s.e., {int((kl < -3 * se_t).sum())} below -3 s.e., "
          f"the lowest at {(kl / se_t).min():.1f} s.e.")

# %% [markdown]
# **Eq. 16's KLs plus $H(x_0)$ give the bound of eq. 5 for both imperfect models, within Monte Carlo error.** For the
# exact mean, eq. 5 gives 7.596 ± 0.008 nats and eq. 16's KLs add up to 6.082 ± 0.023: a difference of 1.513 against
# $H(x_0)$ = 1.492 ($z$ = 0.9). For the Gaussian fit, 21.494 ± 0.038 and 20.053 ± 0.081: 1.440 ($z$ = -0.6).
#
# **Band by band, the difference follows the model-free value, for both models.** It matches the model-free value
# $H(x_0\mid x_b) - H(x_0\mid x_{a-1})$ within 1.3 standard errors in six of the seven bands with a spread; the
# seventh, the Gaussian fit's $t = 11..100$, is at $z$ = -2.6. Most of $H(x_0)$, 1.362 of the 1.492 nats, sits in
# $t = 101..T$ and the prior: $q(x_0\mid x_{100})$ leaves 0.131 nats of doubt about which image $x_0$ is, and
# $q(x_0\mid x_{10})$ none to four decimals. Eq. 5's terms compare each step with a posterior that knows $x_0$, so they
# pay for that choice step by step (the exact mean's eq. 5 terms there: 1.381 nats); eq. 16's compare each step with
# the true one (0.013) and pay $H(x_0)$ once.
#
# **Each KL is nonnegative where it can be told from zero.** At $t = 1$ every draw's KL, exact given $x_1$, is at
# least 4.749 (exact mean) and 4.777 nats (fit); every band is positive by at least 4 standard errors (the smallest,
# 0.013 ± 0.003); no single step $t \ge 2$ lies below -3 standard errors (the lowest, -2.9). Only 40 (exact mean) and
# 151 (fit) of the 999 steps lie above 3 standard errors: the rest are too small for one step's Monte Carlo error to
# tell them from zero.
#
# DDPM prints no number for eq. 16 (it uses the form for the argument of sec. 4.3), so there is none to set beside ours.

# %% [markdown]
# **Next:** notebook 03 · predicting the noise: how the bound's terms become DDPM's $L_\text{simple}$, a network
# trained with it, and DDPM's ancestral sampler.
#
# **Exercise:** `exercises/02_posterior_and_bound.ipynb` asks you to implement the posterior, the Gaussian
# KL and three bound terms (the prior $L_T$, a middle term $L_{t-1}$ and the decoder's $L_0$), then to derive
# for which data variance $\sigma_t^2=\beta_t$ and $\tilde\beta_t$ give the same middle terms of the bound.
