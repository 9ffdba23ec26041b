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
# **You will be able to:** write down DDIM's family of forward processes $q_\sigma$, check that they share DDPM's
# marginals, sample from their generative process for any $\eta$ with one trained network, and read the
# deterministic sampler ($\eta = 0$) as an ODE solver.
#
# **You need first:** notebooks 01-03 (the forward process of 01, the posterior $q(x_{t-1}\mid x_t, x_0)$ and the
# variational bound of 02, $L_\text{simple}$ and the MLP trained in 03; notebook 03 defines SW and MMD² and the
# perfect-sample band); maths: Gaussian marginals and conditionals, and a change of variables.
#
# **Time:** about 30 min to read (an estimate); runs in about 115 s on a 2-core CPU (one thread, AVX2 kernels; README, "Running the tests").
#
# DDPM's training loss $L_\text{simple}$, a weighted sum of $\epsilon$-errors, depends only on the marginals
# $q(x_t\mid x_0)$, not directly on the joint law of the chain (DDIM sec. 3). Song, Meng & Ermon (DDIM, 2021) exploit this: a whole family of forward processes
# $q_\sigma$, indexed by per-step standard deviations $\sigma$, has the same marginals, and so the same
# training objective up to weights. Each member has its own generative process. We
#
# 1. define $q_\sigma$ (DDIM eq. 7) and check Lemma 1 (the marginals are $q(x_t\mid x_0)$ for every $\sigma$), also
#    over a strided subsequence of times;
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
# together with the fresh noise $\sigma_t$ the variance is $1-\bar\alpha_{t-1}$". The forward step follows by Bayes' rule,
#
# $$q_\sigma(x_t \mid x_{t-1}, x_0) = \frac{q_\sigma(x_{t-1}\mid x_t, x_0)\,q_\sigma(x_t\mid x_0)}{q_\sigma(x_{t-1}\mid x_0)}\qquad\text{(DDIM eq. 8)},$$
#
# a Gaussian that in general depends on $x_0$ as well as on $x_{t-1}$: the process is not Markov. (The one
# exception in the family is DDPM's own choice of $\sigma$, section 3, for which eq. 8 reduces to $q(x_t\mid x_{t-1})$.)
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
print("max |inline - md.q_sigma_posterior| =", plotting.below((m1 - m2).abs().max()))

# %% [markdown]
# **Lemma 1** (DDIM, appendix B): for every choice of $\sigma$, $q_\sigma(x_t\mid x_0) = \mathcal N(\sqrt{\bar\alpha_t}x_0, (1-\bar\alpha_t)I)$.
# The proof is an induction from $T$ down: if $x_t$ has that law, the mean of $x_{t-1}$ is
# $\sqrt{\bar\alpha_{t-1}}x_0$ and its variance $(1-\bar\alpha_{t-1}-\sigma_t^2) + \sigma_t^2$. **Check:**
# run the process from 25,000 copies of one point $x_0$, for three values of the scale $\eta$ (section 3
# makes $\sigma$ a function of $\eta$), and compare the moments of $x_t$ with the DDPM marginal, in units of
# their Monte Carlo standard errors.

# %%
n, point = 25_000, torch.tensor([0.8, -1.1], dtype=torch.float64)
x0_rep = point.expand(n, 2)
checks = (999, 700, 400, 100, 10, 1)
rows, worst = {}, 0.0
for eta in (0.0, 0.5, 1.0):
    g = torch.Generator().manual_seed(1)
    x = md.q_sample(x0_rep, T, schedule, generator=g)
    for t in range(T, 1, -1):
        mean, var = md.q_sigma_posterior(x0_rep, x, t, t - 1, md.ddim_sigma(schedule, t, t - 1, eta), schedule)
        x = mean + var.sqrt() * torch.randn(n, 2, generator=g, dtype=torch.float64)
        if t - 1 in checks[::2]:
            rows[f"eta = {eta}, t = {t - 1}"] = [x[:, 0].mean(), ab[t - 1].sqrt() * 0.8, x[:, 0].var(), 1 - ab[t - 1]]
        if t - 1 in checks:
            worst = max(worst, abs(x[:, 0].mean().item() - ab[t - 1].sqrt().item() * 0.8) / math.sqrt((1 - ab[t - 1].item()) / n),
                        abs(x[:, 0].var().item() - (1 - ab[t - 1].item())) / (math.sqrt(2 / n) * (1 - ab[t - 1].item())))
print(md.table(rows, ["mean (coord 0)", "theory", "variance", "theory"], header="x_t", digits=4))
print(f"standard errors: mean up to {1 / math.sqrt(n):.4f}, variance about {math.sqrt(2 / n):.4f} x variance")
print(f"largest deviation from theory over eta and the 6 checked t, mean or variance: {worst:.1f} standard errors")

# %% [markdown]
# **Strided $\tau$.** Fast samplers (notebook 05) visit only a subsequence $\tau_1 < \dots < \tau_S$ of $1, \dots, T$. DDIM sec. 4.2:
# "we define the sequential forward process over $x_{\tau_1},\ldots,x_{\tau_S}$ such that
# $q(x_{\tau_i}|x_0)=\mathcal N(\sqrt{\alpha_{\tau_i}}x_0,(1-\alpha_{\tau_i})I)$ matches the 'marginals'" (its $\alpha$ is our $\bar\alpha$). Its step (appendix C.1) is eq. 7 with $t-1$ replaced by $\tau_{i-1}$, from $x_{\tau_S}$ with $\tau_S = T$; the times outside
# $\tau$ are drawn straight from $q(x_t\mid x_0)$, the appendix's "star graph". **Check**, as above: $S = 10$, a uniform
# $\tau$ ($100, 200, \dots, 1000$) and an irregular one, every $\tau_i$ below $\tau_S = T$ (where $x_T$ is drawn
# directly), both coordinates.

# %%
taus = {"uniform": md.timesteps(T, 10, "trailing"), "irregular": torch.tensor([1, 3, 17, 60, 150, 333, 520, 777, 900, 1000])}
rows, worst, checked = {}, 0.0, 0
for name, tau in taus.items():
    for eta in (0.0, 0.5, 1.0):
        g = torch.Generator().manual_seed(9)
        x = md.q_sample(x0_rep, T, schedule, generator=g)                       # x_{tau_S}, tau_S = T
        for t, tp in zip(tau.flip(0)[:-1].tolist(), tau.flip(0)[1:].tolist()):  # tau_i -> tau_{i-1}
            mean, var = md.q_sigma_posterior(x0_rep, x, t, tp, md.ddim_sigma(schedule, t, tp, eta), schedule)
            x = mean + var.sqrt() * torch.randn(n, 2, generator=g, dtype=torch.float64)
            se_mean, se_var = ((1 - ab[tp]) / n).sqrt(), math.sqrt(2 / n) * (1 - ab[tp])
            worst = max(worst, ((x.mean(0) - ab[tp].sqrt() * point).abs() / se_mean).max().item(),
                        ((x.var(0) - (1 - ab[tp])).abs() / se_var).max().item())
            checked += 4
        rows[f"{name} tau, eta = {eta}: x at tau_1 = {tp}"] = [x[:, 0].mean(), ab[tp].sqrt() * 0.8, x[:, 0].var(), 1 - ab[tp]]
print(md.table(rows, ["mean (coord 0)", "theory", "variance", "theory"], digits=[4, 4, 6, 6]))
print(f"largest deviation over all {checked} moments (every tau_i below T, both coordinates): {worst:.1f} standard errors; "
      f"tolerance 4 (by chance in any of the {checked} with probability < {checked * 6.4e-5:.1%})")

# %% [markdown]
# ## 2. Same marginals, different joints
#
# **Lemma 1 holds in the simulation:** every checked moment (three $\eta$, six $t$, mean and variance) lies within
# 1.9 standard errors of the DDPM marginal (the three $\eta$ share their random numbers, so their rows are not
# independent). **So do the strided processes:** all 216 moments lie within 2.1 standard errors, inside the tolerance of 4.
#
# What $\eta$ changes is how $x_t$ and $x_{t-1}$, or $x_T$ and $x_t$, relate. With $\eta = 0$ every
# $x_t$ is a deterministic function of $(x_0, x_T)$; with $\eta = 1$ (DDPM's own forward process, see
# section 3) fresh noise enters at each step. Below, for one fixed $x_0$: the correlation between the noise
# $\epsilon_T$ in $x_T$ and the noise $\epsilon_{500}$ in $x_{500}$ (both read off with $x_0$ known). Eq. 7 gives it in closed form: the noise in
# $x_{t-1}$ is $(\sqrt{1-\bar\alpha_{t-1}-\sigma_t^2}\,\epsilon_t + \sigma_t z)/\sqrt{1-\bar\alpha_{t-1}}$, so each step multiplies the
# correlation with $\epsilon_T$ by $\sqrt{1-\bar\alpha_{t-1}-\sigma_t^2}/\sqrt{1-\bar\alpha_{t-1}}$, and
# $\rho_{500} = \prod_{t=501}^{T}\sqrt{1-\sigma_t^2/(1-\bar\alpha_{t-1})}$.

# %%
n, rows = 20_000, {}
x0_rep = point.expand(n, 2)
fig, axes = plt.subplots(1, 3, figsize=(9, 3.2), sharex=True, sharey=True)
for ax, eta in zip(axes, (0.0, 0.5, 1.0)):
    steps = torch.arange(501, T + 1)
    rho = (1 - md.ddim_sigma(schedule, steps, steps - 1, eta) ** 2 / (1 - ab[steps - 1])).sqrt().prod().item()
    g = torch.Generator().manual_seed(2)
    x = x_T = md.q_sample(x0_rep, T, schedule, generator=g)
    for t in range(T, 500, -1):
        mean, var = md.q_sigma_posterior(x0_rep, x, t, t - 1, md.ddim_sigma(schedule, t, t - 1, eta), schedule)
        x = mean + var.sqrt() * torch.randn(n, 2, generator=g, dtype=torch.float64)
    e_T, e_t = md.predict_eps(x_T, x0_rep, T, schedule), md.predict_eps(x, x0_rep, 500, schedule)
    corr = np.corrcoef(e_T[:, 0].numpy(), e_t[:, 0].numpy())[0, 1]
    ax.scatter(e_T[:2000, 0], e_t[:2000, 0], s=1, rasterized=True)
    ax.set(title=f"eta = {eta}: corr = {corr:.2f}", xlabel=r"noise in $x_T$ (coord. 0)", aspect="equal")
    rows[f"eta = {eta}"] = [corr, rho, x[:, 0].var(), 1 - ab[500]]
axes[0].set_ylabel(r"noise in $x_{500}$ (coord. 0)")
print(md.table(rows, ["corr(eps_T, eps_500)", "closed form", "var x_500 (coord 0)", "1 - alpha_bar_500"], digits=3))
print(f"standard errors at n = {n}: correlation at most {1 / math.sqrt(n):.3f}, "
      f"variance {math.sqrt(2 / n) * (1 - ab[500].item()):.3f}")
fig.suptitle("Same marginal law of $x_{500}$, different joint law with $x_T$ (one fixed $x_0$, 2,000 of 20,000 draws)", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# **One marginal, three joints:** the correlation of $\epsilon_T$ with $\epsilon_{500}$ runs from 1.000 ($\eta = 0$, a deterministic
# map) through 0.380 to 0.021 ($\eta = 1$, nearly independent noise), each within 0.01 of its closed form (standard
# error at most 0.007), while every variance of $x_{500}$ lies within 0.02 of $1-\bar\alpha_{500}$ (standard error 0.009).

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
# DDPM's ancestral step. At $\eta = 0$ the step is deterministic. The last step, to $t = 0$, returns the predicted
# $x_0 = f_\theta(x_1)$ for every $\eta$: DDIM sets $\alpha_0 := 1$, so eq. 16 gives $\sigma_1(\eta) = 0$ ("Going further"
# checks this against eq. 10 and DDPM's Algorithm 2). Both checks of $\eta = 1$, numerically:

# %%
t = torch.arange(2, T + 1)
print("max |sigma(eta=1)^2 - beta_tilde| over t =",
      plotting.below((md.ddim_sigma(schedule, t, t - 1, 1.0) ** 2 - schedule.beta_tildes[2:]).abs().max()))
x, e, z = (torch.randn(T - 1, 2, dtype=torch.float64) for _ in range(3))
ddpm_step = md.p_mean(x, e, t, schedule) + schedule.beta_tildes[t].sqrt()[:, None] * z     # DDPM Algorithm 2
print("max |ddim_step(eta=1) - DDPM ancestral step| =", plotting.below((md.ddim_step(x, e, t, t - 1, schedule, 1.0, z)[0] - ddpm_step).abs().max()))


# %% [markdown]
# ## 4. Theorem 1: one model for all $\eta$
#
# Each $\sigma$ defines its own variational objective (DDIM eq. 11),
# $J_\sigma(\epsilon_\theta) = \mathbb E_{q_\sigma}\big[\log q_\sigma(x_{1:T}\mid x_0) - \log p_\theta(x_{0:T})\big]$, which up to a constant is
# $\sum_{t=2}^T \mathbb E\,\mathrm{KL}\big(q_\sigma(x_{t-1}\mid x_t,x_0)\,\|\,p_\theta^{(t)}(x_{t-1}\mid x_t)\big) - \mathbb E\log p_\theta^{(1)}(x_0\mid x_1)$.
# Write $L_\gamma(\epsilon_\theta) = \sum_{t=1}^T \gamma_t\,\mathbb E\|\epsilon_\theta^{(t)}(\sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon) - \epsilon\|^2$ (DDIM eq. 5; $L_\mathbf{1}$, all $\gamma_t = 1$,
# is DDPM's $L_\text{simple}$ up to a constant factor).
#
# > **Theorem 1** (DDIM, sec. 3.2). *For all $\sigma > 0$, there exists $\gamma \in \mathbb R^T_{>0}$ and $C \in \mathbb R$, such that $J_\sigma = L_\gamma + C$.*
#
# The condition is $\sigma_t > 0$ for *every* $t$, $\sigma_1$ of eq. 10 included. So $\eta = 0$ is not covered (the
# paper: "we can always approximate it by making $\sigma_t$ very small"), and since $\sigma_1(\eta) = 0$ for the
# $\eta$-family (section 3), applying the theorem to it means choosing some $\sigma_1 > 0$ for the $t = 1$ factor: that
# choice only sets the weight $\gamma_1$ below, and the sampler never uses it (section 3).
#
# **Where the weights come from.** For $t \ge 2$, $p_\theta$ and $q_\sigma$ have the same variance and means that differ
# only through $x_0$ vs $\hat x_0$; both means are $c_t x_0 + (\text{terms in } x_t)$ with
# $c_t = \sqrt{\bar\alpha_{t-1}} - \sqrt{1-\bar\alpha_{t-1}-\sigma_t^2}\sqrt{\bar\alpha_t/(1-\bar\alpha_t)}$, and
# $x_0 - \hat x_0 = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}\,(\epsilon_\theta - \epsilon)$. So
#
# $$\mathrm{KL}\big(q_\sigma(x_{t-1}\mid x_t,x_0)\,\|\,p_\theta(x_{t-1}\mid x_t)\big)
# = \underbrace{\frac{c_t^2\,(1-\bar\alpha_t)}{2\sigma_t^2\,\bar\alpha_t}}_{\gamma_t}\ \|\epsilon - \epsilon_\theta\|^2 ,\qquad
# -\log p_\theta^{(1)}(x_0\mid x_1) = \underbrace{\frac{1-\bar\alpha_1}{2\sigma_1^2\,\bar\alpha_1}}_{\gamma_1}\|\epsilon - \epsilon_\theta\|^2 + \text{const.}$$
#
# $c_t > 0$ whenever $\sigma_t > 0$ (because $\bar\alpha_t < \bar\alpha_{t-1}$), so every $\gamma_t > 0$: that is the theorem. (At $\eta = 1$,
# $\gamma_t$ is DDPM's weight $\beta_t^2/(2\sigma_t^2\alpha_t(1-\bar\alpha_t))$ of its eq. 12.) The paper's own proof (appendix B) arrives at
# $\gamma_t = 1/(2d\,\sigma_t^2\alpha_t)$, $d$ the dimension of $x_0$ and $\alpha_t$ its name for $\bar\alpha_t$; that is not the exact weight
# (it leaves out $c_t^2(1-\bar\alpha_t)$ and divides by $d$), but the statement only needs *some* positive $\gamma$. **Check** the
# per-step identity with an imperfect model (the exact model scaled by 0.9), for two values of $\eta$, beside the
# appendix's weight:

# %%
exact = md.GaussianMixtureDenoiser(*md.toy_mixture("eight_gaussians"), schedule)
imperfect = lambda x, t: 0.9 * exact(x, t)  # noqa: E731


def gamma_t(t, eta):
    """The exact weight of KL_t = gamma_t ||eps - eps_theta||^2 for t >= 2 (derived above)."""
    sig2 = md.ddim_sigma(schedule, t, t - 1, eta) ** 2
    a, ap = ab[t], ab[t - 1]
    c = ap.sqrt() - (1 - ap - sig2).sqrt() * (a / (1 - a)).sqrt()
    return c**2 * (1 - a) / (2 * sig2 * a)


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
    err = (eps - eps_hat).pow(2).sum(1).mean().item()
    paper = 1 / (2 * 2 * sigma.item() ** 2 * ab[t].item())
    print(f"eta = {eta}: mean KL {kl.mean().item():.6f}, gamma_t * mean ||eps - eps_hat||^2 = "
          f"{gamma_t(t, eta).item() * err:.6f}; with the appendix's 1/(2 d sigma^2 alpha_t): {paper * err:.3f}")
print("DDPM's weight at eta = 1, t = 300:", f"{(schedule.betas[t] ** 2 / (2 * schedule.beta_tildes[t] * (1 - schedule.betas[t]) * (1 - ab[t]))).item():.6f};",
      f"gamma_t = {gamma_t(t, 1.0).item():.6f}")

# %% [markdown]
# **Strided steps.** The derivation never used $\tau_{i-1} = \tau_i - 1$: for a step $\tau_i \to \tau_{i-1}$, replace $t-1$ by $\tau_{i-1}$,
# so $\gamma_{\tau_i} = c_i^2(1-\bar\alpha_{\tau_i})/(2\sigma_{\tau_i}^2\bar\alpha_{\tau_i})$ with
# $c_i = \sqrt{\bar\alpha_{\tau_{i-1}}} - \sqrt{1-\bar\alpha_{\tau_{i-1}}-\sigma_{\tau_i}^2}\sqrt{\bar\alpha_{\tau_i}/(1-\bar\alpha_{\tau_i})} > 0$ (`md.ddim_gamma`);
# at $\tau_{i-1} = \tau_i - 1$ it is $\gamma_t$. Appendix C.1 only says "A similar argument to the proof used in Theorem 1 can
# show that the variational objective $J$ can also be converted to an objective of the form $L_{\gamma}$"; "Going
# further" checks $J_{\sigma,\tau} = L_\gamma + C$ by simulation. The package function against `gamma_t`, and the weights on $\tau = 100, \dots, 1000$:

# %%
t = torch.arange(2, T + 1)
for eta in (0.3, 1.0):
    sig = md.ddim_sigma(schedule, t, t - 1, eta)
    print(f"eta = {eta}: max relative |md.ddim_gamma - gamma_t| over t = 2..T:",
          plotting.below(((md.ddim_gamma(schedule, t, t - 1, sig) - gamma_t(t, eta)) / gamma_t(t, eta)).abs().max()))
tau = md.timesteps(T, 10, "trailing")
gs = md.ddim_gamma(schedule, tau[1:], tau[:-1], md.ddim_sigma(schedule, tau[1:], tau[:-1], 0.5))
gu = gamma_t(tau[1:], 0.5)
rows = {f"tau_i = {k}": [a, b, a / b] for k, a, b in zip(tau[1:].tolist(), gs, gu)}
print(md.table(rows, ["gamma, step tau_i -> tau_{i-1}", "gamma_t, step tau_i -> tau_i - 1", "ratio"], header="eta = 0.5",
               digits=[4, 4, 0]))

# %% [markdown]
# **The strided weights are positive too, and 212 to 435 times the unit-stride ones at the same time** (table above).
#
# **What the theorem buys, and its condition.** In the paper's words, $L_\gamma$ "is special in the sense that if
# parameters $\theta$ of the models $\epsilon_\theta^{(t)}$ are not shared across different $t$, then the optimal solution for
# $\epsilon_\theta$ will not depend on the weights $\gamma$": each term is then minimized on its own, by the Bayes-optimal
# $\epsilon^{(t)}(x_t) = \mathbb E[\epsilon\mid x_t]$. Hence $J_\sigma$, being some $L_\gamma$ plus a constant, has the same optimum as $L_\mathbf 1$, and
# **the minimizer of $L_\text{simple}$ is the minimizer of every $J_\sigma$, for every $\sigma > 0$** — one model
# for all $\eta$.
#
# **With shared parameters** (one network for all $t$, as in DDPM, in DDIM's own experiments, and in our MLP, which
# gets $t$ through an embedding) the identity $J_\sigma = L_\gamma + C$ still holds, but the terms now compete for the same
# parameters, and the minimizer of $L_\gamma$ over the network class in general depends on $\gamma$, unless the class contains
# $\mathbb E[\epsilon\mid x_t]$ at every $t$ at once (then every positive $\gamma$ has that minimizer). So training with $L_\mathbf 1$ and
# sampling with some $\eta$ is exact only in that realizable limit; otherwise it is a surrogate, and what decides how
# good a surrogate is how close the shared network gets to $\mathbb E[\epsilon\mid x_t]$ at each $t$, weighed by $\gamma_t$. The
# weights differ a lot across $t$, so the question is not empty. We measure both for the MLP
# trained with $L_\text{simple}$ (notebook 03's recipe and training run, shipped as `md.pretrained("eight_gaussians_mlp")`;
# README says how it was made): its excess $\epsilon$-loss over the exact model's Bayes floor
# at several $t$, on the same 20,000 draws (so the standard error of the difference is small).

# %%
mlp = md.pretrained("eight_gaussians_mlp")   # notebook 03: md.train_toy("eight_gaussians", steps=3000, seed=0).ema
n = 20_000
gen = torch.Generator().manual_seed(4)
x0 = exact.sample_data(n, gen)
rows = {}
for t in (2, 10, 50, 200, 500, 900):
    eps = torch.randn(n, 2, generator=gen)
    x_t = md.q_sample(x0, t, schedule, eps)
    tt = torch.full((n,), t)
    with torch.no_grad():
        l_exact = (eps - exact(x_t, tt)).pow(2).sum(1)
        l_mlp = (eps - mlp(x_t, tt)).pow(2).sum(1)
    d = l_mlp - l_exact
    rows[f"t = {t}"] = [gamma_t(t, 0.3), gamma_t(t, 1.0), l_exact.mean(), d.mean(), d.std() / math.sqrt(n),
                        100 * d.mean() / l_exact.mean()]
print(md.table(rows, ["gamma_t(eta=0.3)", "gamma_t(eta=1)", "Bayes floor", "MLP excess", "+- s.e.", "excess, % of floor"],
               digits=[4, 5, 3, 4, 4, 1]))

# %% [markdown]
# **$J_\sigma$ weighs the steps very differently from $L_\mathbf 1$, but the MLP leaves little for any weighting to gain.**
# From $t = 2$ to $t = 200$, $\gamma_t$ falls 100- to 130-fold (2.6277 to 0.0200 at $\eta = 0.3$, 0.59967 to 0.00603 at
# $\eta = 1$), is lowest of the printed $t$ at 500 and rises again towards $t = 900$. Between the two $\eta$ the
# weights differ mainly by a constant factor (3.3 from $t = 50$ on, 4.4 at $t = 2$), which alone would not move a
# minimizer. No network can go below the Bayes
# floor, so the MLP's excess over it bounds what training with any other $\gamma$ could have gained at each $t$. The
# largest excess is at $t = 50$: $0.0551 \pm 0.0032$, 4.7% of the floor; it is 0.8% of the floor or less at $t = 2$, 10,
# 200 and 500. At $t = 900$ the excess is tiny in absolute terms ($0.0002$) but 15.4% of a floor that is itself
# almost zero ($0.001$). (Notebook 03, section 5 compares short runs of an MLP trained on the bound and on $L_\text{simple}$, by their samples.)
#
# So we sample with the one MLP at three $\eta$ over all 1000 steps, without retraining, and score the samples with
# MMD$^2$ (notebook 03 defines SW and MMD² and the perfect-sample band): 800 samples against 2,000 fresh data points,
# three independent replicates (each its own 800 starting points $x_T$ and its own noise), beside the band of 800
# *perfect* samples (fresh data, ten draws).

# %%
n, reps = 800, 3
reference = exact.sample_data(2000, torch.Generator().manual_seed(5))
floor = md.reference_spread(lambda seed: exact.sample_data(n, torch.Generator().manual_seed(100 + seed)), reference,
                            lambda x, ref: 1000 * md.mmd(x, ref), repeats=10)
x_T = torch.randn(reps * n, 2, generator=torch.Generator().manual_seed(7))
means = md.toy_mixture("eight_gaussians")[1].float()
off_mode = lambda x: 100 * (torch.cdist(x, means).min(1).values > 0.6).float().mean().item()  # noqa: E731
p_off = math.exp(-4.5)  # P(|x - centre| > 3 std) for an isotropic 2-D Gaussian
rows = {}
runs, titles = {}, {}
for eta in (0.0, 0.5, 1.0):
    runs[eta] = md.sample(mlp, x_T, schedule, md.timesteps(T, T), eta=eta, trajectory=True,
                          generator=torch.Generator().manual_seed(8))
    scores = torch.tensor([1000 * md.mmd(part, reference) for part in runs[eta].x0.split(n)])
    off = torch.tensor([off_mode(part) for part in runs[eta].x0.split(n)])
    titles[eta] = f"eta = {eta}: MMD$^2$ x 1000 = {scores.mean().item():.1f} $\\pm$ {scores.std().item():.1f}"
    rows[f"MLP, eta = {eta}"] = [scores, off]
print(md.table(rows, ["MMD^2 x 1000", "% off the modes"], header="800 points", digits=[2, 1],
               title="mean +- std over 3 replicates (notebook 03 defines SW and MMD² and the perfect-sample band)"))
print(f"perfect-sample band, MMD^2 x 1000: {floor[0]:.2f} +- {floor[1]:.2f} (10 draws): from {floor[0] - floor[1]:.2f} "
      f"to {floor[0] + floor[1]:.2f}")
print(f"perfect samples off the modes (farther than 3 std = 0.6 from every centre): {100 * p_off:.1f}% "
      f"(binomial std at n = 800: {100 * math.sqrt(p_off * (1 - p_off) / n):.1f}%)")
fig, axes = plt.subplots(1, 3, figsize=(9, 3.6), sharex=True, sharey=True, layout="constrained")
for ax, eta in zip(axes, runs):
    ax.scatter(reference[:, 0], reference[:, 1], s=1, color="0.8", label="data", rasterized=True)
    ax.scatter(runs[eta].x0[:n, 0], runs[eta].x0[:n, 1], s=1, color="C0", label="samples (replicate 1)", rasterized=True)
    ax.set(title=titles[eta], xlabel="$x^{(1)}$", xlim=(-3, 3), ylim=(-3, 3), aspect="equal")
    ax.title.set_fontsize(9)
axes[0].set_ylabel("$x^{(2)}$")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8, markerscale=5)
fig.suptitle("One MLP trained with $L_{simple}$, sampled over 1000 steps at three $\\eta$ (800 of 2,400 samples each)",
             fontsize=10)
plt.show()

# %% [markdown]
# **One network serves all three $\eta$, and its imperfection shows in each.** On MMD$^2$ the means of all three lie
# inside the perfect-sample band ($-2.49$ to $2.42$; $\eta = 1$ at $2.40 \pm 0.77$ is just inside; single replicates, with
# spreads up to 1.79, can lie above it, as single draws of data do), so at $n = 800$ MMD$^2$ cannot tell these samples
# from data; its differences between $\eta$ are smaller than the band's own spread (2.45), though
# $\eta = 1$ lies above $\eta = 0.5$ by more than their replicate spreads. The share of samples **off the modes**
# (farther than 3 std from every centre; 1.1% for data, binomial std 0.4%) is the sharper test here: $7.9 \pm 0.9\%$,
# $7.2 \pm 0.8\%$ and $5.8 \pm 0.6\%$ for $\eta = 0$, 0.5, 1, five to seven times the data's rate, the stray points between
# the modes in the panels. $\eta = 1$ puts 2.1 points fewer off the modes than $\eta = 0$, more than twice the larger
# replicate spread; this notebook does not isolate why. $\eta = 0.5$ against $\eta = 0$ (0.7 points) is noise.

# %% [markdown]
# ## 5. Deterministic against stochastic trajectories, and the ODE view
#
# The same runs kept their whole paths. Six of them, from the same six starting points $x_T$ at $\eta = 0$ and
# $\eta = 1$, on shared axes (drawn through every 20th step, so that the $\eta = 1$ paths stay readable; the numbers
# below use every step):

# %%
show = list(range(6))
fig, axes = plt.subplots(1, 2, figsize=(8, 4.8), sharex=True, sharey=True, layout="constrained")
for ax, eta, name in zip(axes, (0.0, 1.0), ("deterministic", "DDPM's ancestral sampler")):
    xs = torch.cat([runs[eta].xs[::20], runs[eta].xs[-1:]])  # every 20th step, and the end
    ax.scatter(reference[:, 0], reference[:, 1], s=1, color="0.85", label="data", rasterized=True)
    for k, i in enumerate(show):
        ax.plot(xs[:, i, 0], xs[:, i, 1], lw=1.0, color=f"C{k}", alpha=0.9, label="path" if k == 0 else None)
    ax.scatter(xs[0, show, 0], xs[0, show, 1], s=30, facecolors="none", edgecolors="k", label="start $x_T$", zorder=3)
    ax.scatter(xs[-1, show, 0], xs[-1, show, 1], s=40, marker="*", color="k", label="end $x_0$", zorder=3)
    ax.set(title=f"eta = {eta} ({name})", xlabel="$x^{(1)}$", xlim=(-3.2, 3.2), ylim=(-3.2, 3.2), aspect="equal")
axes[0].set_ylabel("$x^{(2)}$")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=8)
fig.suptitle("The same 6 starting points, one colour per path", fontsize=10)
plt.show()

# %% [markdown]
# The numbers behind the figure, over all $3 \times 800$ paths: the length of a path, $\sum_t \|x_{t-1} - x_t\|$ over the 1000 steps, beside the straight-line distance $\|x_0 - x_T\|$ and
# beside what the injected noise alone adds up to, $\sum_t \sigma_t\,\mathbb E\|z\| = \sqrt{\pi/2}\,\sum_t\sigma_t$ in 2-D; and how often a
# path that starts at the same $x_T$ ends on a different one of the eight modes (nearest centre) than the $\eta = 0$ path does.

# %%
mode = {eta: torch.cdist(run.x0, means).argmin(1) for eta, run in runs.items()}
rows = {}
for eta, run in runs.items():
    length = (run.xs[1:] - run.xs[:-1]).norm(dim=-1).sum(0)
    per_rep = torch.stack([part.mean() for part in length.split(n)])
    straight = (run.xs[-1] - run.xs[0]).norm(dim=-1).mean().item()
    steps = torch.arange(1, T + 1)
    noise_only = math.sqrt(math.pi / 2) * md.ddim_sigma(schedule, steps, steps - 1, eta).sum().item()
    switch = torch.stack([(m != m0).float().mean() for m, m0 in zip(mode[eta].split(n), mode[0.0].split(n))])
    rows[f"eta = {eta}"] = [per_rep, straight, noise_only, 100 * switch]
print(md.table(rows, ["path length", "straight line", "noise alone", "% ending on another mode than eta = 0"],
               digits=[2, 2, 2, 1], title="mean +- std over the 3 replicates of 800 paths"))
pooled = (mode[1.0] != mode[0.0]).float().mean().item()
print(f"eta = 1, all {len(mode[1.0])} paths: {100 * pooled:.1f}% end on another mode than eta = 0 "
      f"(binomial standard error {100 * math.sqrt(pooled * (1 - pooled) / len(mode[1.0])):.1f}%)")

# %% [markdown]
# **At $\eta = 0$ the sampler is a smooth map $x_T \mapsto x_0$; at $\eta = 1$, over 1000 steps, $x_T$ barely decides where a
# sample lands.** A deterministic path is 0.99 long for a straight-line distance of 0.82 between its ends. At $\eta = 0.5$
# and 1 the length (59.36 and 118.80) is almost exactly what the injected noise alone adds up to (59.25 and 118.49):
# nearly all the motion is the jitter of the $\sigma_t z$ terms. At $\eta = 1$, 88.3% of the 2,400 paths (binomial
# standard error 0.7%) end on another mode than the $\eta = 0$ path from the same $x_T$, less than 2 standard errors from the
# $7/8 = 87.5\%$ expected if the end mode did not depend on
# $x_T$ at all and the eight modes were equally likely. DDIM builds its interpolation and encoding on the deterministic
# map (sec. 5.3-5.4; notebook 05).
#
# With $\eta = 0$, divide eq. 12 by $\sqrt{\bar\alpha_{t-1}}$ and write $\bar x = x/\sqrt{\bar\alpha}$,
# $s = \sqrt{(1-\bar\alpha)/\bar\alpha}$ (a noise-to-signal ratio). The step becomes
#
# $$\bar x_{t-1} = \bar x_t + (s_{t-1} - s_t)\,\epsilon_\theta(x_t, t)\qquad\text{(DDIM eq. 13)},$$
#
# one Euler step of the ODE $\mathrm d\bar x = \epsilon_\theta\big(\bar x/\sqrt{s^2+1}\big)\,\mathrm ds$ (eq. 14). Fewer, larger Euler steps
# are the idea behind notebook 05's fast sampling, which measures what they cost. **Check:** the Euler step in
# $(\bar x, s)$ coordinates is the package's `ddim_step` with $\eta = 0$, for a big jump from $t = 900$ to $t = 400$.

# %%
t, t_prev = 900, 400
x_t = torch.randn(5, 2, dtype=torch.float64)
with torch.no_grad():
    e = mlp(x_t, torch.full((5,), t)).double()
s = lambda k: math.sqrt((1 - ab[k].item()) / ab[k].item())  # noqa: E731
euler = (x_t / ab[t].sqrt() + (s(t_prev) - s(t)) * e) * ab[t_prev].sqrt()
print("max |Euler step - ddim_step(eta=0)| =", plotting.below((euler - md.ddim_step(x_t, e, t, t_prev, schedule, 0.0)[0]).abs().max()))

# %% [markdown]
# ## Summary
#
# - DDIM's $q_\sigma$ is a family of non-Markovian forward processes with DDPM's marginals (Lemma 1,
#   checked by simulation for $\eta = 0, 0.5, 1$, also over strided $\tau$); their joints differ, as the closed-form correlations predict.
# - Its generative process is eq. 10, sampled by eq. 12; $\eta = 1$ is exactly DDPM's ancestral step, $\eta = 0$ is
#   deterministic, and the last step to $t = 0$ returns the predicted $x_0$ for every $\eta$ ($\sigma_1 = 0$).
# - Theorem 1: for every $\sigma > 0$, $J_\sigma = L_\gamma + C$ with positive weights; with parameters not shared across $t$
#   the optimum does not depend on $\gamma$, so one network trained with $L_\text{simple}$ serves all $\eta$. With a shared
#   network that holds only as far as it reaches $\mathbb E[\epsilon\mid x_t]$; our MLP's excess $\epsilon$-loss is at most 4.7% of
#   that floor at the printed $t \le 500$ (0.0002 on a floor of 0.001 at $t = 900$). Its samples at $\eta = 0, 0.5, 1$ lie, on average over
#   replicates, inside the MMD$^2$ band of perfect samples at $n = 800$, but all put five to seven times too many points between the modes;
#   $\eta = 1$ the fewest, more than twice the replicate spread below $\eta = 0$ (5.8% against 7.9% $\pm$ 0.9%).
# - With $\eta = 0$ the sampler is the Euler method for an ODE; notebook 05 takes fewer, larger steps and measures
#   what that costs.

# %% [markdown]
# ## Going further
#
# ### The last step, to $t = 0$
#
# DDIM's generative process (eq. 10) treats $t = 1$ apart:
#
# $$p_\theta^{(t)}(x_{t-1}\mid x_t) = \begin{cases}\mathcal N\big(f_\theta^{(1)}(x_1),\ \sigma_1^2 I\big) & t = 1,\\[2pt] q_\sigma\big(x_{t-1}\mid x_t, f_\theta^{(t)}(x_t)\big) & \text{otherwise.}\end{cases}$$
#
# There is no $x_0$ left to condition on, so the last factor is a Gaussian around the predicted $x_0$; the paper
# adds the noise $\sigma_1^2 I$ "to ensure that the generative process is supported everywhere", i.e. so that
# $\log p_\theta(x_0\mid x_1)$, a term of the objective $J_\sigma$ (section 4), is finite. For *sampling*, eq. 12 is
# written with $\bar\alpha_0 := 1$ (DDIM defines $\alpha_0 := 1$), and then eq. 16 gives
# $\sigma_1(\eta) = \eta\sqrt{(1-\bar\alpha_0)/(1-\bar\alpha_1)}\cdots = 0$ for every $\eta$: the last step returns
# $x_0 = f_\theta^{(1)}(x_1)$, the mean of eq. 10's $t = 1$ factor, and never draws its $\sigma_1$ noise. The package
# does exactly this: `Schedule.alpha_bars[0]` is 1, `sample` walks $\tau_S \to \dots \to \tau_1 \to 0$, and
# `ddim_sigma(schedule, t, 0, eta)` is 0 for every $\eta$ and every last step $\tau_1 \to 0$ (also for
# `eta="sigma_hat"`, which sets it to 0 explicitly). DDPM's Algorithm 2 agrees: it sets $z = 0$ at $t = 1$,
# and its mean at $t = 1$ is $f_\theta^{(1)}(x_1)$. Checked:

# %%
x1, e1, z1 = (torch.randn(5, 2, dtype=torch.float64) for _ in range(3))
print("sigma for the step 1 -> 0 at eta = 0, 0.5, 1, 'sigma_hat':",
      [md.ddim_sigma(schedule, 1, 0, eta).item() for eta in (0.0, 0.5, 1.0, "sigma_hat")])
print("max |ddim_step(x_1 -> x_0, eta=1) - f_theta(x_1)| =",
      plotting.below((md.ddim_step(x1, e1, 1, 0, schedule, 1.0, z1)[0] - md.predict_x0(x1, e1, 1, schedule)).abs().max()))
print("max |DDPM mean at t=1 - f_theta(x_1)| =",
      plotting.below((md.p_mean(x1, e1, 1, schedule) - md.predict_x0(x1, e1, 1, schedule)).abs().max()))

# %% [markdown]
# ### Theorem 1 over a strided $\tau$ (DDIM appendix C.1)
#
# DDIM sec. 4.2 justifies fast sampling with one trained network: "Using a similar argument as in Section 3, we can
# justify using the model trained with the $L_{\bm{1}}$ objective, so no changes are needed in training." Appendix C.1
# writes the objective of the strided process (eq. 58), $J_{\sigma,\tau} = \mathbb E_{q_{\sigma,\tau}}[\log q_{\sigma,\tau}(x_{1:T}\mid x_0) - \log p_\theta(x_{0:T})]$,
# with $q_{\sigma,\tau}$ the chain over $\tau$ (section 1) times, for each $t \notin \tau$, $q(x_t\mid x_0)$ alone (eqs. 52-53, the
# star graph), and $p_\theta$ the strided steps $p_\theta^{(\tau_i)}$ for $i \ge 2$ (eq. 56, whose argument of $f_\theta^{(\tau_i)}$ is printed as
# $x_{\tau_{i-1}}$; eq. 12's step and our package use $x_{\tau_i}$) times a Gaussian decoder $p_\theta^{(t)}(x_0\mid x_t) = \mathcal N(f_\theta^{(t)}(x_t), \sigma_t^2 I)$
# at $t = \tau_1$ and at every $t \notin \tau$ (eq. 57). So $J_{\sigma,\tau}$ has three kinds of terms:
#
# - the $S - 1$ strided KLs, each $\gamma_{\tau_i}\,\mathbb E\|\epsilon - \epsilon_\theta\|^2$ (section 4);
# - $T - S + 1$ decoder terms $\mathbb E[-\log p_\theta^{(t)}(x_0\mid x_t)] = \gamma_t\,\mathbb E\|\epsilon - \epsilon_\theta\|^2 + \tfrac d2\log(2\pi\sigma_t^2)$ with
#   $\gamma_t = (1-\bar\alpha_t)/(2\sigma_t^2\bar\alpha_t)$ (`md.ddim_gamma(schedule, t, 0, sigma_t)`), the star ones with
#   $\mathbb E\log q(x_t\mid x_0) = -\tfrac d2(1 + \log 2\pi(1-\bar\alpha_t))$ beside them;
# - the prior term at $x_T$, which does not depend on $\theta$.
#
# Every $t$ in $1..T$ gets a positive weight, so $J_{\sigma,\tau} = L_\gamma + C$ with $\gamma \in \mathbb R^T_{>0}$, and section 4's argument
# (one minimizer for every positive $\gamma$ when parameters are not shared across $t$) carries over. The decoders' $\sigma_t$
# are free (the sampler never uses them); we take $\sigma_t^2 = (1-\bar\alpha_t)/\bar\alpha_t$, which makes those weights $1/2$.
# **Check:** $\tau = 100, \dots, 1000$, $\eta = 0.5$, for the exact model and the exact model scaled by 0.9. $J_{\sigma,\tau}$ is
# estimated term by term on one run of $q_{\sigma,\tau}$ (2,000 draws of $x_0$; the strided KLs with `normal_kl`, the other
# terms as log-densities of the drawn samples); $L_\gamma + C$ on independent draws from DDPM's marginals $q(x_t\mid x_0)$ at
# each $t$, with $C$ in closed form. The paper prints no value of either.

# %%
tau, eta, n, d = md.timesteps(T, 10, "trailing"), 0.5, 2000, 2
sig = md.ddim_sigma(schedule, tau[1:], tau[:-1], eta)                       # sigma_{tau_i}, i = 2..S
star = torch.tensor(sorted(set(range(1, T + 1)) - set(tau.tolist())))       # the T - S times outside tau
dec = torch.cat([tau[:1], star])                                             # decoders p(x_0 | x_t): tau_1 and the star
sig_dec = ((1 - ab[dec]) / ab[dec]).sqrt()
gamma = torch.zeros(T + 1, dtype=torch.float64)
gamma[tau[1:]] = md.ddim_gamma(schedule, tau[1:], tau[:-1], sig)
gamma[dec] = md.ddim_gamma(schedule, dec, 0, sig_dec)
scales, chain_t = (1.0, 0.9), set(tau[1:].tolist())


def log_normal(x, mean, var):
    return (-0.5 * (x - mean) ** 2 / var - 0.5 * torch.log(2 * math.pi * torch.as_tensor(var))).sum(1)


g = torch.Generator().manual_seed(10)                                        # J_{sigma,tau}: one run of q_{sigma,tau}
x0 = exact.sample_data(n, g, dtype=torch.float64)
x = md.q_sample(x0, T, schedule, generator=g)
prior = log_normal(x, ab[T].sqrt() * x0, 1 - ab[T]) - log_normal(x, 0 * x, 1.0)
J = {s: {"chain": 0.0, "rest": prior} for s in scales}
for t, tp, sg in zip(tau.flip(0)[:-1].tolist(), tau.flip(0)[1:].tolist(), sig.flip(0)):
    q_mean, var = md.q_sigma_posterior(x0, x, t, tp, sg, schedule)
    e = exact(x, t)
    for s in scales:
        p_mean, _ = md.q_sigma_posterior(md.predict_x0(x, s * e, t, schedule), x, t, tp, sg, schedule)
        J[s]["chain"] = J[s]["chain"] + md.normal_kl(q_mean, var, p_mean, var).sum(1)
    x = q_mean + var.sqrt() * torch.randn(x.shape, generator=g, dtype=torch.float64)
for t, sd in zip(dec.tolist(), sig_dec.tolist()):
    x_t = x if t == tau[0] else md.q_sample(x0, t, schedule, generator=g)    # x_{tau_1} from the chain; star: q(x_t | x_0)
    e = exact(x_t, t)
    for s in scales:
        J[s]["rest"] = J[s]["rest"] - log_normal(x0, md.predict_x0(x_t, s * e, t, schedule), sd**2)
        if t != tau[0]:
            J[s]["rest"] = J[s]["rest"] + log_normal(x_t, ab[t].sqrt() * x0, 1 - ab[t])

g = torch.Generator().manual_seed(11)                                        # L_gamma + C: DDPM's marginals
x0 = exact.sample_data(n, g, dtype=torch.float64)
C = (d / 2 * torch.log(2 * math.pi * sig_dec**2)).sum() - (d / 2 * (1 + torch.log(2 * math.pi * (1 - ab[star])))).sum()
L = {s: {"chain": 0.0, "rest": md.prior_term(x0, schedule) + C} for s in scales}
for t in range(1, T + 1):
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    e = exact(md.q_sample(x0, t, schedule, eps), t)
    for s in scales:
        L[s]["chain" if t in chain_t else "rest"] = L[s]["chain" if t in chain_t else "rest"] + gamma[t] * (eps - s * e).pow(2).sum(1)


def compare(a, b):
    se_a, se_b = a.std().item() / math.sqrt(n), b.std().item() / math.sqrt(n)
    return [a.mean(), se_a, b.mean(), se_b, (a.mean() - b.mean()).item() / math.hypot(se_a, se_b)]


rows = {}
for s, name in zip(scales, ("exact", "0.9 x exact")):
    rows[f"{name}: the 9 strided KLs"] = compare(J[s]["chain"], L[s]["chain"])
    rows[f"{name}: whole J"] = compare(J[s]["chain"] + J[s]["rest"], L[s]["chain"] + L[s]["rest"])
rows["J(0.9 x exact) - J(exact)"] = compare(*(sum(v[0.9].values()) - sum(v[1.0].values()) for v in (J, L)))
print(md.table(rows, ["J, run of q_sigma,tau", "+- s.e.", "L_gamma + C", "+- s.e.", "difference / s.e."],
               digits=[2, 2, 2, 2, 1], title=f"nats per x_0 (d = 2), {n} draws each; tau = 100, ..., 1000, eta = {eta}"))
print(f"gamma over t = 1..T: {(gamma[1:] > 0).sum().item()} of {T} positive, from {gamma[1:].min().item():.2f} to {gamma[1:].max().item():.2f}")

# %% [markdown]
# **$J_{\sigma,\tau} = L_\gamma + C$ holds in the simulation:** every row agrees within 1.6 standard errors, for the exact and the
# perturbed model, and so does the change from one to the other, which is what training sees ($C$ cancels). All 1000 weights
# are positive.

# %% [markdown]
# **Next:** notebook 05 · fast sampling: DDIM's step over a short subsequence of times, what it costs in sample
# quality (a toy version of DDIM's Table 1), and $x_T$ as a latent code.
#
# **Exercise:** `exercises/04_ddim_step.ipynb` asks you to implement $\sigma(\eta)$, the DDIM step and the sampler loop,
# compare $\sigma^2$ at $\eta = 1$ with DDPM's $\tilde\beta_t$, write down Theorem 1's weight $\gamma_t$, find where
# the bound weighs the eps error least, and derive the variance of DDIM's samples on Gaussian data.
