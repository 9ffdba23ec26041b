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
# # 06 · DDPM and DDIM on MNIST
#
# **What this notebook shows.** Everything from notebooks 01-05, now on images: the same `q_sample`,
# L_simple, `ddim_step` and `sample`, with a U-Net in place of the MLP. We
#
# 1. look at the data and at the U-Net $\epsilon_\theta(x_t, t)$ and its time embedding;
# 2. train one for a few seconds to watch the loss fall, then load the shipped model, trained by the
#    package's own command;
# 3. measure DDIM's central claim on this CPU: DDPM with $T = 1000$ steps against DDIM with
#    $S \in \{10, 20, 50, 100\}$, with MNIST FID, wall-clock and speed-up side by side (DDIM sec. 5.1);
# 4. sweep $\eta$ at fixed $S$; show progressive generation (DDPM fig. 6), sample consistency across $S$,
#    interpolation by slerp, and encoding test digits into $x_T$ and back (DDIM Table 2);
# 5. evaluate the variational bound in bits per dimension on a few test digits.
#
# The "MNIST FID" is the Frechet distance on the penultimate features of a small MNIST classifier shipped
# with the package (99.06% test accuracy, `md.pretrained("mnist_classifier")`); it ranks samples like the
# Inception FID does, but its numbers are not comparable with published CIFAR-10 FIDs.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import minddim as md
from minddim import plotting
from minddim.data import load_mnist, to_model_range
from minddim.metrics import classifier_features, sample_quality
from minddim.weights import provenance

torch.manual_seed(0)
schedule = md.Schedule.linear()
T = schedule.T


def show(images, title, nrow=None, ax=None):
    """A grid of images in [-1, 1]."""
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    ax.imshow(plotting.image_grid(images, nrow)[..., 0], cmap="gray", vmin=0, vmax=255)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return ax


# %% [markdown]
# ## 1. The data
#
# `load_mnist(split)` returns the original files' uint8 images (checked against their published MD5s);
# `to_model_range` maps pixels $\{0..255\}$ to $[-1, 1]$, the range the DDPM paper's data is scaled to, so
# that $x_T \sim \mathcal N(0, I)$ and the data have comparable scales.

# %%
train_u8, train_labels = load_mnist("train")
test_u8, test_labels = load_mnist("test")
x_train, x_test = to_model_range(train_u8), to_model_range(test_u8)
print("train", tuple(x_train.shape), x_train.dtype, "test", tuple(x_test.shape))
print("range", float(x_train.min()), float(x_train.max()), "mean", round(float(x_train.mean()), 4))
show(x_train[:64], "64 training digits")
plt.show()

# %% [markdown]
# ## 2. The U-Net and its time embedding
#
# $\epsilon_\theta(x_t, t)$ must map an image and a time to an image of the same shape. The DDPM paper uses a
# U-Net (appendix B): residual blocks with GroupNorm at several resolutions, joined by skip connections,
# self-attention at the lowest resolution, and the time $t$ entering every residual block through a
# sinusoidal embedding (as in the Transformer) passed through a small MLP. `md.UNet` is that design scaled
# for a CPU: the shipped model has widths 16, 32, 64 at 28x28, 14x14 and 7x7.

# %%
meta = provenance("mnist_unet")
unet = md.UNet(**meta["model"])
print("config:", unet.config)
print(f"parameters: {sum(p.numel() for p in unet.parameters()):,}")
for name, part in (("time MLP", unet.time), ("down path", unet.down), ("middle (with attention)", unet.mid),
                   ("up path", unet.up), ("output", unet.out)):
    print(f"  {name:<24} {sum(p.numel() for p in part.parameters()):>8,}")

# %% [markdown]
# The embedding of time $t$ is $[\sin(t\,\omega_k), \cos(t\,\omega_k)]_k$ with frequencies
# $\omega_k = 10000^{-k/(d/2)}$: fast components tell neighbouring times apart, slow ones give a smooth
# sense of "how noisy". Each row below is one $t$.

# %%
ts = torch.arange(1, T + 1)
emb = md.timestep_embedding(ts, 16)
fig, ax = plt.subplots(figsize=(7, 2.6))
ax.imshow(emb.T, aspect="auto", cmap="RdBu", extent=(1, T, 15.5, -0.5))
ax.set(xlabel="t", ylabel="embedding dimension", title="sinusoidal time embedding (d = 16)")
plt.show()
print("cosine similarity of embeddings: t=10 vs 11:",
      round(float(torch.cosine_similarity(emb[9], emb[10], 0)), 3),
      "| t=10 vs 500:", round(float(torch.cosine_similarity(emb[9], emb[499], 0)), 3))

# %% [markdown]
# ## 3. Training: a few seconds here, the full model by command
#
# Training is L_simple (DDPM eq. 14, notebook 03) on minibatches of digits, exactly as on the toy data:
# `md.train` draws $x_0$, $t \sim U\{1..T\}$ and $\epsilon$, and regresses $\epsilon_\theta(x_t, t)$ on
# $\epsilon$. We run 120 steps from scratch to see the loss fall; the digits it would draw are still blobs.

# %%
torch.manual_seed(0)
start = time.perf_counter()
short = md.train(md.UNet(**meta["model"]), x_train, schedule, steps=120, batch_size=64, lr=5e-4,
                 ema_decay=0.99, seed=0)
print(f"120 steps in {time.perf_counter() - start:.1f} s")
losses = np.array(short.losses)
print("mean loss, steps 1-20:", round(float(losses[:20].mean()), 3), "| steps 101-120:",
      round(float(losses[-20:].mean()), 3))
fig, ax = plt.subplots(figsize=(5, 2.6))
ax.plot(np.arange(1, 121), losses, lw=0.8)
ax.set(xlabel="step", ylabel="L_simple", yscale="log", title="a U-Net's first 120 steps")
plt.show()

# %% [markdown]
# The shipped model was trained by the package's command below (its JSON records the exact command, the
# machine and the wall-clock); `python -m minddim evaluate` then measured its quality on 1,000 samples per
# sampler: the MNIST FID, the classifier's mean confidence, and "sure", the share of samples whose top class
# probability exceeds 0.9 (the digits the classifier reads as one class; 97% of the real test digits pass).
# Section 4 looks at the samples the classifier is not sure of, and at when they settle on a digit.

# %%
print("command:   ", meta["command"])
print(f"steps:      {meta['steps']:,} at batch 64, final loss {meta['final_loss_mean_100']}")
print(f"wall-clock: {meta['wall_clock_seconds'] / 60:.0f} min on {meta['machine']['cpu_count']} CPU cores")
q = meta["quality"]
print(f"quality ({q['n']} samples each, against the {q['reference']}):")
for name in ("real_train_images", "DDIM-50", "DDPM-1000"):
    print(f"  {name:<18} FID {q[name]['fid']:>6.1f}   confidence {q[name]['confidence']:.3f}"
          f"   sure {q[name]['sure']:.1%}")
loss_csv = np.loadtxt(md.weights.HERE / "mnist_unet_loss.csv", delimiter=",", skiprows=1)
fig, ax = plt.subplots(figsize=(5, 2.6))
steps_, smooth = loss_csv[:, 0], np.convolve(loss_csv[:, 1], np.ones(200) / 200, mode="valid")
ax.plot(steps_[199:], smooth)
ax.set(xlabel="step", ylabel="L_simple (mean of 200 steps)", title="the shipped model's training loss")
plt.show()

# %% [markdown]
# ## 4. DDPM against DDIM
#
# Load the shipped EMA weights (a `state_dict` loaded with `weights_only=True`) and sample. DDPM is the DDIM
# step with $\eta = 1$ on all $T$ steps; DDIM takes $S$ steps of the uniform subsequence with $\eta = 0$.
# Every sampler starts from the same $x_T$ (the seed), so the grids can be compared cell by cell.

# %%
model = md.pretrained("mnist_unet")
classifier = md.pretrained("mnist_classifier")
reference = classifier_features(classifier, x_test)      # the 10,000 test digits' features, computed once

settings = [("DDPM", T, 1.0)] + [("DDIM", S, 0.0) for S in (10, 20, 50, 100)]
N, seeds = 100, (0, 1)
results = {}
for name, S, eta in settings:
    results[name, S] = [sample_quality(model, schedule, S, eta, n=N, reference=reference, seed=seed, batch=N,
                                       classifier=classifier) for seed in seeds]
fig, axes = plt.subplots(1, len(settings), figsize=(2.4 * len(settings), 2.6))
for ax, (name, S, eta) in zip(axes, settings):
    show(results[name, S][0]["images"][:16], f"{name}, S = {S}", 4, ax)
plt.show()

# %% [markdown]
# The table: MNIST FID of $N = 100$ samples against the test set for two seeds, their mean and half their
# difference (the spread between seeds), and the classifier's mean confidence. FID is biased upwards at small
# $N$, so compare rows with each other and with the first row, which scores 100 *real* training digits the
# same way: that is the best any sampler can reach at this $N$. The wall-clock is the mean of the two runs.

# %%
floor = [md.frechet_distance(classifier_features(classifier, x_train[torch.randperm(len(x_train),
         generator=torch.Generator().manual_seed(seed))[:N]]), reference) for seed in seeds]
print(f"{'sampler':<14}{'FID seed 0':>11}{'seed 1':>8}{'mean':>8}{'+-':>6}{'confidence':>12}   wall-clock, speed-up")
print(f"{'real digits':<14}{floor[0]:>11.1f}{floor[1]:>8.1f}{np.mean(floor):>8.1f}{abs(floor[0] - floor[1]) / 2:>6.1f}")
ddpm_seconds = np.mean([r["seconds"] for r in results["DDPM", T]])
for name, S, eta in settings:
    rs = results[name, S]
    fids, secs = [r["fid"] for r in rs], np.mean([r["seconds"] for r in rs])
    print(f"{name + '-' + str(S):<14}{fids[0]:>11.1f}{fids[1]:>8.1f}{np.mean(fids):>8.1f}{abs(fids[0] - fids[1]) / 2:>6.1f}"
          f"{np.mean([r['confidence'] for r in rs]):>12.3f}   {secs:.1f} s, {ddpm_seconds / secs:.1f}x")

# %% [markdown]
# Read the table with its spread: at $N = 100$ two seeds of the *same* sampler, or two sets of real digits,
# differ by as much as most of the rows do, so differences smaller than a few times the "+-" column are not
# evidence. What the table does establish is the cost: wall-clock scales with the number of network
# evaluations, so DDIM-S is close to $T/S$ times faster than DDPM-1000. For quality, look at the shipped
# model's 1,000-sample figures printed in section 3, drawn from ten times as many samples: there DDIM-50's FID
# is about equal to DDPM-1000's - the near parity at $S = 50$-$100$ that DDIM's paper finds with a 35.7
# M-parameter CIFAR-10 model - while the classifier is a little more confident on DDPM-1000's samples and sure
# of more of them; both are far from noise and well above the real-digit floor. `benchmarks/` repeats this
# measurement at batch 256.
#
# ### All 100 samples of one DDIM-50 draw
#
# The DDIM-50 row's first seed, all $N = 100$ samples (nothing new is drawn). A red frame marks each sample
# whose top class probability is at most 0.9, the ones the classifier does not read as one digit. Look at
# them and judge for yourself: some are legible but unusual digits, some are strokes between two classes. The
# classifier is not a perfect judge either: it is sure of a few shapes a person would hesitate over.

# %%
r50 = results["DDIM", 50][0]
sure = md.metrics.top_probability(r50["images"], classifier) > md.metrics.SURE     # the threshold, 0.9
print(f"the classifier is sure of {int(sure.sum())} of these {N} samples")
cols, cell = 10, 28 + 2                                   # image_grid puts 2 pixels between 28x28 digits
ax = show(r50["images"], f"DDIM-50, seed 0: all {N} samples, framed where top probability <= 0.9", cols)
ax.figure.set_size_inches(6, 6)
for k in (~sure).nonzero().flatten().tolist():
    row, col = divmod(k, cols)
    ax.add_patch(plt.Rectangle((1 + cell * col, 1 + cell * row), cell - 1, cell - 1, fill=False, edgecolor="red",
                               linewidth=1.5))
plt.show()

# %% [markdown]
# ### When does a sample decide which digit it is?
#
# Every DDIM step predicts $\hat x_0$ (the "predicted $x_0$" of DDIM eq. 12). Read each prediction of the
# walk with the classifier: a sample's *commitment time* (`md.commitment_times`) is the earliest time from
# which on the classifier reads every prediction as the digit it reads at the end. We re-run the same 100
# walks with `trajectory=True`; with $\eta = 0$ they are deterministic, so these are the same samples as above.

# %%
x_T = torch.randn(N, 1, 28, 28, generator=torch.Generator().manual_seed(0))     # sample_quality's x_T for seed 0
walk50 = md.sample(model, x_T, schedule, md.timesteps(T, 50), eta=0.0, clip_x0=1.0, trajectory=True)
print("the same 100 samples as the grid:", torch.equal(walk50.x0.clamp(-1, 1), r50["images"]))
commit = md.commitment_times(walk50, classifier)
print(f"median commitment time: the {int(sure.sum())} sure samples t = {int(commit[sure].median())}, "
      f"the {int((~sure).sum())} unsure ones t = {int(commit[~sure].median())}")
late = commit <= 300
print(f"{int(late.sum())} samples settle at t <= 300; the classifier is unsure of {int((late & ~sure).sum())} of them")
fig, ax = plt.subplots(figsize=(5, 2.6))
ax.hist([commit[sure].numpy(), commit[~sure].numpy()], bins=np.arange(0, T + 1, 100), color=["0.6", "red"],
        stacked=True, label=["sure", "unsure"])
ax.set(xlabel="commitment time t", ylabel="samples", title="when the 100 samples settle on their digit")
ax.legend()
plt.show()
show_t, walk_t = (901, 701, 501, 401, 301, 201, 101, 1), walk50.times.tolist()
examples = (int(((commit >= 601) & sure).nonzero()[0]), int((~sure).nonzero()[0]))   # one of each kind
cells = torch.stack([walk50.x0_preds[walk_t.index(t)][k] for k in examples for t in show_t])
with torch.no_grad():
    read = classifier(cells.clamp(-1, 1)).argmax(1).reshape(2, -1)
ax = show(cells, "predicted x_0 at t = " + ", ".join(map(str, show_t)), len(show_t))
ax.figure.set_size_inches(7, 2.2)
plt.show()
for row, k in enumerate(examples):
    print(f"sample {k:>2} ({'sure' if sure[k] else 'unsure'}), read as:", " ".join(map(str, read[row].tolist())))

# %% [markdown]
# The samples the classifier is sure of settle their digit early, while the coarse shape is being laid down;
# the unsure ones are still switching between digits late in the walk, when the remaining steps only refine
# strokes, and they end between two of them. Aithal et al. (2024, "Understanding hallucinations in
# diffusion models through mode interpolation") describe this failure: a network's learned $\epsilon_\theta$
# is a smooth function, so between two nearby modes of the data (here two digit classes) it has no sharp
# boundary, and a sample that reaches the boundary is carried to a point between the modes that the data
# never visits. The stochastic DDPM sampler, whose noise can move a sample off such a boundary, is sure of
# more of its samples than DDIM-50 (section 3's record).

# %% [markdown]
# ## 5. The $\eta$ sweep at $S = 20$
#
# $\eta$ interpolates between deterministic DDIM ($\eta = 0$) and DDPM-like stochastic steps ($\eta = 1$);
# $\hat\sigma$ is DDPM's larger variance $\sigma^2 = \beta$ carried over to the short chain (DDIM Table 1).
# Same $N = 100$ and seed 0 as above; the spread between seeds for DDIM-20 is in the table above.

# %%
print(f"{'eta':>10}{'FID':>8}{'confidence':>12}")
eta_grids = {}
for eta in (0.0, 0.5, 1.0, "sigma_hat"):
    r = results["DDIM", 20][0] if eta == 0.0 else sample_quality(model, schedule, 20, eta, n=N, reference=reference,
                                                                 seed=0, batch=N, classifier=classifier)
    eta_grids[eta] = r["images"][:16]
    print(f"{str(eta):>10}{r['fid']:>8.1f}{r['confidence']:>12.3f}")
fig, axes = plt.subplots(1, 4, figsize=(9.6, 2.6))
for ax, (eta, imgs) in zip(axes, eta_grids.items()):
    show(imgs, f"S = 20, eta = {eta}", 4, ax)
plt.show()

# %% [markdown]
# As in DDIM's Table 1, at few steps the deterministic sampler is best and quality falls as $\eta$ grows;
# $\hat\sigma$, which adds the most noise, is worst: with 20 large steps it cannot remove what it adds.
#
# ## 6. Progressive generation
#
# Along a DDPM chain, the model's running prediction $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta)/\sqrt{\bar\alpha_t}$
# (eq. 15) shows what the sample is becoming (DDPM fig. 6): coarse shape first, details last.

# %%
x_T = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(3))
traj = md.sample(model, x_T, schedule, md.timesteps(T, T), eta=1.0, generator=torch.Generator().manual_seed(4),
                 trajectory=True, clip_x0=1.0)
show_t = (1000, 800, 600, 400, 300, 200, 100, 50, 1)
walk = traj.times.tolist()                # tau_S .. tau_1, 0: x0_preds[k] is predicted at time walk[k]
rows = torch.stack([traj.x0_preds[walk.index(t)] for t in show_t], 1).reshape(-1, 1, 28, 28)
ax = show(rows, "predicted x_0 at t = " + ", ".join(map(str, show_t)), len(show_t))
ax.figure.set_size_inches(7, 5)
plt.show()

# %% [markdown]
# ## 7. Sample consistency: one $x_T$, different $S$
#
# With $\eta = 0$ the sample is a deterministic function of $x_T$, and the function barely depends on $S$
# (DDIM sec. 5.2, fig. 5): the high-level features are fixed by $x_T$.

# %%
x_T = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(5))
Ss = (10, 20, 50, 100, 1000)
decoded = {S: md.ddim(model, x_T, schedule, S, eta=0.0, clip_x0=1.0) for S in Ss}
ax = show(torch.stack([decoded[S] for S in Ss]).reshape(-1, 1, 28, 28), "rows: S = " + ", ".join(map(str, Ss)), 8)
ax.figure.set_size_inches(6, 4)
plt.show()
for S in Ss[:-1]:
    print(f"S = {S:>3}: RMSE to the S = 1000 sample {float((decoded[S] - decoded[1000]).pow(2).mean().sqrt()):.3f}"
          f" (pixels in [-1, 1])")

# %% [markdown]
# ## 8. Interpolation in $x_T$
#
# Because the map $x_T \mapsto x_0$ is deterministic and smooth, interpolating latents interpolates images
# (DDIM fig. 6). Latents are Gaussian, so we interpolate by slerp, which keeps the norm near $\sqrt{d}$
# where $\mathcal N(0, I)$ puts its mass; a straight line would pass through unlikely, low-norm latents.

# %%
g = torch.Generator().manual_seed(6)
z0, z1 = torch.randn(3, 1, 28, 28, generator=g), torch.randn(3, 1, 28, 28, generator=g)
w = torch.linspace(0, 1, 9)
z = md.slerp(z0, z1, w)                                       # (9, 3, 1, 28, 28)
imgs = md.ddim(model, z.reshape(-1, 1, 28, 28), schedule, 50, eta=0.0, clip_x0=1.0)
ax = show(imgs.reshape(9, 3, 1, 28, 28).transpose(0, 1).reshape(-1, 1, 28, 28), "slerp between two x_T (rows)", 9)
ax.figure.set_size_inches(7, 2.8)
plt.show()
print("latent norms along the first path:", [round(float(v), 1) for v in z[:, 0].flatten(1).norm(dim=1)],
      "| sqrt(784) =", 28.0)

# %% [markdown]
# ## 9. Encoding test digits and decoding them back (DDIM Table 2)
#
# Running the deterministic step forwards (`md.encode`) maps a test digit to a latent $x_T$; decoding that
# latent with the same $S$ should give the digit back. The error shrinks as $S$ grows (the ODE is solved
# more finely) - a property only the deterministic sampler has. We use 32 test digits the model never saw.

# %%
digits = x_test[:32]
print(f"{'S':>5}{'RMSE':>8}{'(gray levels)':>15}")
recon = {}
for S in (10, 20, 50, 100):
    tau = md.timesteps(T, S)
    recon[S] = md.sample(model, md.encode(model, digits, schedule, tau), schedule, tau, eta=0.0)
    rmse = float((recon[S] - digits).pow(2).mean().sqrt())
    print(f"{S:>5}{rmse:>8.3f}{rmse * 127.5:>15.1f}")
ax = show(torch.cat([digits[:8], recon[10][:8], recon[100][:8]]), "rows: test digits, decoded with S = 10, S = 100", 8)
ax.figure.set_size_inches(6, 2.6)
plt.show()

# %% [markdown]
# ## 10. The variational bound in bits per dimension
#
# `md.vlb` evaluates DDPM eq. 5 term by term: the prior term $L_T$, the $T - 1$ KL terms between Gaussians
# and the discretized decoder $L_0$ for 8-bit pixels (notebook 02), one draw of $x_t$ per term. With
# $\sigma_t^2 = \tilde\beta_t$ and the predicted $x_0$ clipped to $[-1, 1]$, on 8 test digits:

# %%
terms = md.bound.vlb_terms(model, x_test[:8], schedule, variance="beta_tilde", clip_x0=1.0,
                           generator=torch.Generator().manual_seed(7))
bpd = md.bits_per_dim(terms.sum(1), x_test[:8])
print(f"bound: {float(bpd.mean()):.2f} +- {float(bpd.std() / 8 ** 0.5):.2f} bits/dim (mean +- standard error, 8 digits)")
share = terms.mean(0) / terms.mean(0).sum()
print(f"shares: L_0 {float(share[0]):.1%}, L_1..L_99 {float(share[1:100].sum()):.1%}, "
      f"L_100..L_999 {float(share[100:T].sum()):.1%}, L_T {float(share[T]):.2%}")
fig, ax = plt.subplots(figsize=(5, 2.6))
ax.plot(np.arange(1, T), md.bits_per_dim(terms[:, 1:T].mean(0), x_test[:1]))
ax.set(xscale="log", yscale="log", xlabel="t", ylabel="L_t (bits/dim)", title="where the bound's bits are")
plt.show()

# %% [markdown]
# Most of the bound is spent at small $t$, on details invisible to the eye: the reason DDPM's samples look
# better than its likelihood suggests, and why L_simple, which down-weights these terms, gives better
# samples (notebook 03).
#
# ## Summary
#
# - The toy notebooks' code runs unchanged on images: only the network differs.
# - Measured here with one shipped model: DDIM-S costs about $S/T$ of DDPM-1000's wall-clock. At 100
#   samples its FID is within the seed-to-seed spread of DDPM-1000's; the 1,000-sample figures show
#   DDIM-50's FID about equal to DDPM-1000's, the near parity the paper finds, at 1/20 of the cost.
#   At few steps, quality falls as $\eta$ grows (DDIM Table 1).
# - With $\eta = 0$, $x_T$ is a latent code: consistent across $S$, interpolable, and test digits can be
#   encoded into it and decoded back, more precisely with more steps.
# - `python -m minddim train`, `evaluate` and `sample` reproduce the shipped model and its figures;
#   notebook 07 runs the same pipeline on CIFAR-10.
