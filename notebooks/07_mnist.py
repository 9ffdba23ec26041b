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
# # 07 · DDPM and DDIM on MNIST
#
# **You will be able to:** train and load a U-Net noise predictor, sample digits with DDPM and DDIM, measure what
# DDIM's fewer steps cost in quality (MNIST FID and a classifier's verdict, over seeds), and use $x_T$ as a latent
# code (consistency, interpolation, encoding).
#
# **You need first:** notebooks 03 (L_simple, ancestral sampling), 04-05 (DDIM's step, subsequences, encoding) and
# 06 (the ODE view). The U-Net is used, not derived; a Frechet distance between two Gaussians is defined here.
#
# **Time:** about 35 min to read; runs in about 90 s on a 2-core laptop CPU (one thread, AVX2).
#
# Everything from notebooks 01-06, now on images: the same `q_sample`, L_simple, `ddim_step` and `sample`, with a
# U-Net in place of the MLP. Sections: 1 the data; 2 the U-Net; 3 training, and the two yardsticks for digits;
# 4 DDPM against DDIM (wall-clock, quality over three seeds beside DDIM's Table 1); 5 the $\eta$ sweep;
# 6 progressive generation; 7 sample consistency. Going further: interpolation in $x_T$, and encoding digits
# and decoding them back (DDIM's Table 2).

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import minddim as md
from minddim import plotting
from minddim.data import load_mnist, to_model_range
from minddim.metrics import classifier_features
from minddim.weights import provenance

torch.manual_seed(0)
schedule = md.Schedule.linear()
T = schedule.T

show = plotting.show_images          # show(images, title, nrow, ax): a grid of images in [-1, 1]


# %% [markdown]
# ## 1. The data
#
# `load_mnist(split)` reads the four original MNIST files from `$MINDDIM_DATA/mnist` (default
# `~/.cache/minddim/mnist`). **Where they are absent, the next cell downloads them** (about 12 MB, from the PyTorch
# mirror of MNIST, then yann.lecun.com), checks each against its published MD5 and only then uses it (`make mnist`
# fetches them ahead). It returns uint8 images;
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
# self-attention at the 16x16 resolution of its 32x32 models, and the time $t$ added into every residual block as
# the Transformer's sinusoidal embedding (in DDPM's code, passed through two dense layers first). `md.UNet` is that
# design scaled for a CPU: the shipped model has widths 16, 32, 64 at 28x28, 14x14 and 7x7, with self-attention at
# 7x7, its lowest resolution.

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
# sense of "how noisy". Each column of the figure below is one $t$, each row one dimension.

# %%
ts = torch.arange(1, T + 1)
emb = md.timestep_embedding(ts, 16)
fig, ax = plt.subplots(figsize=(7, 2.6))
image = ax.imshow(emb.T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1, extent=(1, T, 15.5, -0.5))
ax.set(xlabel="t", ylabel="embedding dimension", title="sinusoidal time embedding (d = 16)")
fig.colorbar(image, ax=ax, label="value")
plt.show()
print("cosine similarity of embeddings: t=10 vs 11:",
      round(float(torch.cosine_similarity(emb[9], emb[10], 0)), 3),
      "| t=10 vs 500:", round(float(torch.cosine_similarity(emb[9], emb[499], 0)), 3))

# %% [markdown]
# ## 3. Training: a few seconds here, the full model by command
#
# Training is L_simple (DDPM eq. 14, notebook 03) on minibatches of digits, exactly as on the toy data:
# `md.train` draws $x_0$, $t \sim U\{1..T\}$ and $\epsilon$, and regresses $\epsilon_\theta(x_t, t)$ on
# $\epsilon$. We run 20 steps at batch 16 from scratch to see the loss fall.

# %%
torch.manual_seed(0)
start = time.perf_counter()
steps = 20
short = md.train(md.UNet(**meta["model"]), x_train, schedule, steps=steps, batch_size=16, lr=5e-4,
                 ema_decay=0.99, seed=0)
print(f"{steps} steps in {time.perf_counter() - start:.1f} s")
losses = np.array(short.losses)
print(f"mean loss, steps 1-5: {losses[:5].mean():.3f} | steps {steps - 4}-{steps}: {losses[-5:].mean():.3f}")
fig, ax = plt.subplots(figsize=(5, 2.6))
ax.plot(np.arange(1, steps + 1), losses, lw=0.8)
ax.set(xlabel="step", ylabel="L_simple (positive)", yscale="log", title=f"a U-Net's first {steps} steps")
plt.show()

# %% [markdown]
# ### Two yardsticks for digits
#
# The 2-D notebooks compared point clouds with SW and MMD² (notebook 03, section 3); 784-pixel images need
# features. Both yardsticks here use a small MNIST classifier shipped with the package (`md.pretrained("mnist_classifier")`,
# two conv blocks and a 128-unit hidden layer; its test accuracy is printed below).
#
# - **MNIST FID.** Fit a Gaussian to the classifier's 128 penultimate features of each image set (means
#   $\mu_1, \mu_2$, covariances $C_1, C_2$) and take the Frechet distance between the two Gaussians,
#   $\|\mu_1-\mu_2\|^2 + \operatorname{tr}\big(C_1 + C_2 - 2(C_1C_2)^{1/2}\big)$ (`md.frechet_distance`), against the
#   10,000 test digits. Lower is better; it sees both quality and diversity. It is the FID recipe of the papers
#   with another network, so its numbers are **not** comparable with their CIFAR-10 FIDs (Inception features);
#   and like every FID it is biased upwards for small sample sets, so we always print real digits' score at the
#   same size beside it.
# - **"Sure" fraction.** The share of samples whose top class probability exceeds 0.9 (`md.metrics.SURE`): the
#   digits the classifier reads as one class. It has no small-sample bias, but it sees quality only: a sampler
#   that drew one perfect digit again and again would score 100%. The mean top probability ("confidence")
#   is printed beside it.
#
# The shipped model was trained by the package's command below (its JSON records the command, the machine and the
# wall-clock); `python -m minddim evaluate` then scored 1,000 samples per sampler. The record is one seed; its
# noise: the standard error of a sure fraction $p$ on $n$ samples is $\sqrt{p(1-p)/n}$, and for the FID we score
# three draws of 1,000 *real* training digits the same way.

# %%
print("command:   ", meta["command"])
print(f"steps:      {meta['steps']:,} at batch 64, final loss {meta['final_loss_mean_100']}")
print(f"wall-clock: {meta['wall_clock_seconds'] / 60:.0f} min on {meta['machine']['cpu_count']} CPU cores")
q = meta["quality"]
print("evaluated: ", q["command"])
print(f"quality ({q['n']} samples each, against the {q['reference']}; sure +- its standard error):")
for name in ("real_train_images", "DDIM-50", "DDPM-1000"):
    p = q[name]["sure"]
    print(f"  {name:<18} FID {q[name]['fid']:>6.2f}   confidence {q[name]['confidence']:.3f}"
          f"   sure {p:.1%} +- {(p * (1 - p) / q['n']) ** 0.5:.1%}")
classifier = md.pretrained("mnist_classifier")
print(f"the MNIST classifier: {provenance('mnist_classifier')['test_accuracy']:.2%} test accuracy (its JSON)")
reference = classifier_features(classifier, x_test)      # the 10,000 test digits' features, computed once


def real_digits(n, seed):
    """n training digits drawn without replacement by a seeded permutation."""
    return x_train[torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))[:n]]


real_1000 = [md.frechet_distance(classifier_features(classifier, real_digits(1000, seed)), reference)
             for seed in (0, 1, 2)]
print(f"FID of 1,000 real training digits, 3 draws: {np.mean(real_1000):.2f} +- {np.std(real_1000, ddof=1):.2f}"
      f" (mean +- std)")
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
# Every sampler starts from the same four $x_T$, so the grids can be compared cell by cell. Four samples are
# enough to time the samplers (a network evaluation costs the same whatever it is asked), and DDPM-1000 is
# the expensive one: its quality is the shipped record's, measured on 1,000 samples (section 3).

# %%
model = md.pretrained("mnist_unet")
x_T = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
settings = [("DDPM", T, 1.0)] + [("DDIM", S, 0.0) for S in (10, 20, 50, 100)]
grid, seconds = {}, {}
for name, S, eta in settings:
    start = time.perf_counter()
    grid[name, S] = md.sample(model, x_T, schedule, md.timesteps(T, S), eta, clip_x0=1.0, trajectory=name == "DDPM",
                              generator=torch.Generator().manual_seed(1))
    seconds[name, S] = time.perf_counter() - start
ddpm_walk = grid["DDPM", T]                  # the whole DDPM chain, kept for section 6
grid["DDPM", T] = ddpm_walk.x0
print(f"{'sampler':<11}{'network evaluations':>20}{'wall-clock (4 samples)':>24}{'speed-up':>10}")
for name, S, eta in settings:
    print(f"{name + '-' + str(S):<11}{S:>20}{seconds[name, S]:>22.2f} s{seconds['DDPM', T] / seconds[name, S]:>9.1f}x")
fig, axes = plt.subplots(1, len(settings), figsize=(2.0 * len(settings), 2.3))
for ax, (name, S, eta) in zip(axes, settings):
    show(grid[name, S], f"{name}, S = {S}", 2, ax)
plt.show()

# %% [markdown]
# The wall-clock scales with the number of network evaluations, so DDIM-$S$ is about $T/S$ times faster
# than DDPM-1000 (the speed-ups are wall-clock ratios of one run on a shared CPU, so they move by some percent
# from run to run; DDIM fig. 4 shows the same linear scaling on a GPU).
#
# ### Quality against the number of steps, over three seeds
#
# Sample quality needs many samples. We draw $N = 100$ samples for each of three seeds (seed $k$ fixes $x_T$ and
# any sampling noise, as `md.sample_quality` does) and report three statistics, each as its mean and standard
# deviation over the seeds:
#
# - the MNIST FID (section 3). At $N = 100$ it is biased far upwards (100 *real* digits: the first row) and
#   varies between seeds, real digits included. Every sampler starts from the same $x_T$ for a given seed, so the
#   **paired** difference, FID minus DDIM-20's FID at the same seed, cancels most of that variation: read that
#   column for the comparison;
# - the classifier's mean confidence and sure fraction (section 3), which can be set beside the 1,000-sample
#   record.
#
# We score $S = 10$ and $S = 20$ here, where DDIM's Table 1 changes most (13.36 to 6.84); $S = 50$ and DDPM-1000 come
# from the shipped model's 1,000-sample record, since sampling them for three seeds would take this notebook past its
# time budget.
#
# DDIM's Table 1 prints the CIFAR-10 FID (Inception features) of the same samplers with DDPM's 35.7 M-parameter
# model; it is in the last column for the ordering, not for the values, which are on another scale.

# %%
N, seeds = 100, (0, 1, 2)


def draw(S, eta, seed, trajectory=False):
    """N samples on timesteps(T, S), drawn as md.sample_quality draws them: x_T, then the noise, from one seed."""
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(N, 1, 28, 28, generator=g)
    return md.sample(model, x_T, schedule, md.timesteps(T, S), eta, generator=g, clip_x0=1.0, trajectory=trajectory)


def score(images):
    """MNIST FID against the test set, mean top probability and sure fraction of images in [-1, 1]."""
    images = images.clamp(-1, 1)
    return {"fid": md.frechet_distance(classifier_features(classifier, images), reference),
            "confidence": md.metrics.classifier_confidence(images, classifier),
            "sure": md.metrics.classifier_sure_fraction(images, classifier), "images": images}


def table_row(label, scores, base=None, paper=""):
    """One table line: mean +- std over seeds of each statistic, and the FID paired with `base` seed by seed."""
    fid, conf, sure = (np.array([r[k] for r in scores]) for k in ("fid", "confidence", "sure"))
    paired = "" if base is None else (f"{np.mean(fid - [r['fid'] for r in base]):>+8.1f} +-"
                                      f"{np.std(fid - [r['fid'] for r in base], ddof=1):>5.1f}")
    paired = "(reference)" if base is scores else paired
    print(f"{label:<13}{fid.mean():>7.1f} +-{fid.std(ddof=1):>5.1f}{paired:>16}{conf.mean():>9.3f} +-"
          f"{conf.std(ddof=1):>6.3f}{sure.mean():>8.1%} +-{sure.std(ddof=1):>5.1%}{paper:>10}")


real = [score(real_digits(N, seed)) for seed in seeds]
results, walks = {}, {}
for S in (10, 20):
    for seed in seeds:
        out = draw(S, 0.0, seed, trajectory=S == 20)     # DDIM-20's walks are kept for the next sections
        if S == 20:
            walks[seed], out = out, out.x0
        results[S, 0.0, seed] = score(out)
header = f"{'':<13}{'FID':>15}{'paired FID':>16}{'confidence':>18}{'sure':>16}{'paper':>10}"
print(f"N = {N} per seed, mean +- std over seeds {seeds}; paired FID: minus DDIM-20's at the same seed;")
print("paper: DDIM Table 1, CIFAR-10 FID (eta = 0; DDPM-1000 is its eta = 1, S = 1000 entry)")
print(header)
table_row("real digits", real)
paper_fid = {10: 13.36, 20: 6.84, 50: 4.67, 100: 4.16}
for S in (10, 20):
    base = [results[20, 0.0, seed] for seed in seeds]
    table_row(f"DDIM-{S}", base if S == 20 else [results[S, 0.0, seed] for seed in seeds], base, f"{paper_fid[S]:.2f}")
for name in ("DDIM-50", "DDPM-1000"):
    p = q[name]["sure"]
    print(f"{name + ' record':<19}(N = 1,000, one seed){q[name]['confidence']:>13.3f}{'':>9}{p:>8.1%} +-"
          f"{(p * (1 - p) / q['n']) ** 0.5:>5.1%}{'4.73' if name == 'DDPM-1000' else '4.67':>10}")

# %% [markdown]
# What the table shows, cell by cell against its spread:
#
# - **More steps, better samples**, as in DDIM's Table 1. The raw FIDs of the two rows overlap within their
#   $\pm 8$, but the paired difference, +9.5 for DDIM-10 over DDIM-20, is about four times its own spread (2.4).
#   The classifier agrees: it is sure of 86.7% of DDIM-10's samples against 89.7% for DDIM-20, a gap five times
#   the seed spread of either (0.6%). On CIFAR-10 the paper's FID falls by a factor 2.0 from $S = 10$ to $S = 20$;
#   ours cannot be compared as a ratio, because at $N = 100$ most of our FID is the small-sample bias that
#   even real digits pay.
# - **Beyond $S = 20$ the returns diminish.** DDIM-20's sure fraction here, 89.7% $\pm$ 0.6% over three seeds of
#   100, equals the DDIM-50 record's within its standard error (89.8% $\pm$ 1.0% on 1,000 samples), and its
#   confidence differs from the
#   record's by 0.003, about the seed spread (0.004). Section 7 shows why: DDIM-20 and DDIM-50 samples differ from
#   the DDIM-100 sample of the same $x_T$ by an RMSE of about 0.04 and 0.02 (pixels in $[-1, 1]$), against about 0.8
#   between two different samples. DDIM's Table 1 likewise moves by 2.2 from $S = 20$ to 50 and by 0.5 from 50 to
#   100, after 6.5 from 10 to 20. The FIDs of the record and of this table are not comparable ($N$ = 1,000 against
#   100: the bias differs), so only the classifier's statistics are set side by side.
# - **DDIM against DDPM-1000**: both are the record's, on 1,000 samples. DDPM-1000's sure fraction sits a
#   little above DDIM-50's, by about two standard errors of the difference (92.3% and 89.8%, each
#   $\pm 0.8$-$1.0$), and so does its confidence (0.974 against 0.965; the record has no standard error for it);
#   its FID equals DDIM-50's to 0.02, far inside the spread of the FID of
#   1,000 real digits printed in section 3. So on this model DDIM-50 matches DDPM-1000 at 1/20 of the cost,
#   the near parity the paper reports at $S = 50$-$100$ on CIFAR-10 (4.67 and 4.16 against 4.73 for
#   $\eta = 1$ on 1,000 steps; DDPM's own 3.17 uses $\hat\sigma$ on 1,000 steps). All samplers stay well short
#   of real digits, whose sure fraction is 97-98%.
#
# ### All 100 samples of one DDIM-20 draw
#
# The DDIM-20 row's first seed, all $N = 100$ samples (nothing new is drawn). A red frame marks each sample
# whose top class probability is at most 0.9, the ones the classifier does not read as one digit. Look at
# them and judge for yourself: some are legible but unusual digits, some are strokes between two classes. The
# classifier is not a perfect judge either: it is sure of a few shapes a person would hesitate over.

# %%
r20 = results[20, 0.0, 0]
sure = md.metrics.top_probability(r20["images"], classifier) > md.metrics.SURE     # the threshold, 0.9
print(f"the classifier is sure of {int(sure.sum())} of these {N} samples")
cols, cell = 10, 28 + 2                                   # image_grid puts 2 pixels between 28x28 digits
ax = show(r20["images"], f"DDIM-20, seed 0: all {N} samples, framed where top probability <= 0.9", cols)
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
# which on the classifier reads every prediction as the digit it reads at the end. The table above kept the
# DDIM-20 walks of all three seeds (`trajectory=True`), so we can pool their 300 samples; a walk of 20 steps
# reads $\hat x_0$ every 50 time steps, so commitment times fall on $t = 1, 51, 101, \dots, 951$.

# %%
walk20 = walks[0]                                             # seed 0: the 100 samples of the grid above
commit = torch.cat([md.commitment_times(walks[seed], classifier) for seed in seeds])
sure_all = torch.cat([md.metrics.top_probability(results[20, 0.0, seed]["images"], classifier) > md.metrics.SURE
                      for seed in seeds])
for label, group in (("sure", sure_all), ("unsure", ~sure_all)):
    lo, mid, hi = (int(v) for v in commit[group].float().quantile(torch.tensor([0.25, 0.5, 0.75])))
    print(f"{int(group.sum()):>3} {label:<6} samples of {len(commit)}: median commitment time t = {mid} "
          f"(quartiles {lo}, {hi})")
late = commit <= 300
print(f"{int(late.sum())} samples settle at t <= 300; the classifier is unsure of {int((late & ~sure_all).sum())} of them")
fig, ax = plt.subplots(figsize=(5, 2.6))
ax.hist([commit[sure_all].numpy(), commit[~sure_all].numpy()], bins=np.arange(0, T + 1, 100), color=["0.6", "red"],
        stacked=True, label=["sure", "unsure"])
ax.set(xlabel="commitment time t", ylabel="samples", title=f"when the {len(commit)} DDIM-20 samples settle on their digit")
ax.legend()
plt.show()
commit = commit[:N]                                           # seed 0 again, for two examples
show_t, walk_t = (901, 701, 501, 401, 301, 201, 101, 1), walk20.times.tolist()
examples = (int(((commit >= 601) & sure).nonzero()[0]), int((~sure).nonzero()[0]))   # one of each kind
cells = torch.stack([walk20.x0_preds[walk_t.index(t)][k] for k in examples for t in show_t])
with torch.no_grad():
    read = classifier(cells.clamp(-1, 1)).argmax(1).reshape(2, -1)
ax = show(cells, "predicted x_0 at t = " + ", ".join(map(str, show_t)), len(show_t))
ax.figure.set_size_inches(7, 2.2)
plt.show()
for row, k in enumerate(examples):
    print(f"sample {k:>2} ({'sure' if sure[k] else 'unsure'}), read as:", " ".join(map(str, read[row].tolist())))

# %% [markdown]
# Over the three seeds' 300 samples, the ones the classifier is sure of settle their digit early (median
# t = 601), while the coarse shape is being laid down; the unsure ones settle late (median t = 301, and the
# two groups' quartile ranges, 501-751 and 151-401, do not overlap): they are still switching between digits late in the walk,
# when the remaining steps only refine strokes, and they end between two of them. Aithal et al. (2024, "Understanding hallucinations in
# diffusion models through mode interpolation") describe this failure: a network's learned $\epsilon_\theta$
# is a smooth function, so between two nearby modes of the data (here two digit classes) it has no sharp
# boundary, and a sample that reaches the boundary is carried to a point between the modes that the data
# never visits. Whether DDPM's fresh noise helps here is open: in the record it is sure of 92.3% of its samples
# against DDIM-50's 89.8%, a gap of only about two standard errors (section 3).

# %% [markdown]
# ## 5. The $\eta$ sweep at $S = 10$
#
# $\eta$ interpolates between deterministic DDIM ($\eta = 0$) and DDPM-like stochastic steps ($\eta = 1$);
# $\hat\sigma$ is DDPM's larger variance $\sigma^2 = \beta$ carried over to the short chain (DDIM Table 1).
# Same $N = 100$, the same three seeds (hence the same $x_T$) and the same statistics as the table above; the
# paired FID is now the difference to $\eta = 0$ at the same seed. We sweep at $S = 10$, where DDIM's Table 1
# spreads the settings furthest apart (13.36 for $\eta = 0$ against 41.07 for $\eta = 1$ on CIFAR-10), and
# skip the paper's $\eta = 0.2$ and $0.5$ (14.04 and 16.66 there, between $\eta = 0$ and $\eta = 1$) to keep
# this notebook within its time budget.

# %%
for eta in (1.0, "sigma_hat"):
    for seed in seeds:
        results[10, eta, seed] = score(draw(10, eta, seed))
paper_eta = {0.0: 13.36, 0.2: 14.04, 0.5: 16.66, 1.0: 41.07, "sigma_hat": 367.43}
print(f"S = 10, N = {N} per seed, mean +- std over seeds {seeds}; paired FID: minus eta = 0's at the same seed;")
print("paper: DDIM Table 1, CIFAR-10 FID at S = 10")
print(header)
table_row("real digits", real)
for eta in (0.0, 0.2, 0.5, 1.0, "sigma_hat"):
    if eta in (0.2, 0.5):
        print(f"{f'eta = {eta}':<13}{'(not run)':>15}{'':>50}{paper_eta[eta]:>10.2f}")
        continue
    base = [results[10, 0.0, seed] for seed in seeds]
    table_row(f"eta = {eta}" if eta != "sigma_hat" else "sigma-hat",
              base if eta == 0.0 else [results[10, eta, seed] for seed in seeds], base, f"{paper_eta[eta]:.2f}")
fig, axes = plt.subplots(1, 3, figsize=(7.2, 2.6))
for ax, eta in zip(axes, (0.0, 1.0, "sigma_hat")):
    show(results[10, eta, 0]["images"][:16], f"S = 10, eta = {eta}, seed 0", 4, ax)
plt.show()

# %% [markdown]
# Read the paired column. $\hat\sigma$ is far worse than $\eta = 0$: its FID is higher by +108 on average,
# 16 times the spread of that difference, and the classifier agrees (sure of 79.0% $\pm$ 2.0% of its samples
# against 86.7% $\pm$ 0.6%). Its grid shows why: with 10 large steps, each adding the larger noise
# $\sigma^2 = \beta$, the last steps cannot remove what the earlier ones added, and grainy strokes remain
# (DDIM sec. 5.1 observes the same noisy perturbations under short trajectories, and its appendix D.3 notes that
# this update is more stochastic than that of $\eta = 1$). $\eta = 1$ is worse than $\eta = 0$ by a paired +1.7 $\pm$ 0.2:
# a small gap, but eight times its spread, so not noise; the classifier's sure fraction moves the other way
# (90.3% $\pm$ 2.5% against 86.7% $\pm$ 0.6%) by about one and a half times its spread, which is noise. So the ordering
# DDIM's Table 1 reports at $S = 10$ on CIFAR-10, $\eta = 0$ before $\eta = 1$ before $\hat\sigma$ (13.36,
# 41.07, 367.43), holds here in the paired FID; its size does not carry over: the paper's $\eta = 1$ is three
# times worse than its $\eta = 0$, ours 1.7 points worse on a FID of about 70, most of which is the small-sample
# bias that 100 real digits pay too (58.1).
#
# ## 6. Progressive generation
#
# Along a DDPM chain, the model's running prediction $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta)/\sqrt{\bar\alpha_t}$
# (eq. 15) shows what the sample is becoming (DDPM fig. 6): coarse shape first, details last. These are the
# four DDPM-1000 chains of section 4, whose every step we kept.

# %%
traj = ddpm_walk
show_t = (1000, 800, 600, 400, 300, 200, 100, 50, 1)
walk = traj.times.tolist()                # tau_S .. tau_1, 0: x0_preds[k] is predicted at time walk[k]
rows = torch.stack([traj.x0_preds[walk.index(t)] for t in show_t], 1).reshape(-1, 1, 28, 28)
ax = show(rows, "predicted x_0 at t = " + ", ".join(map(str, show_t)), len(show_t))
ax.figure.set_size_inches(7, 3.4)
plt.show()

# %% [markdown]
# ## 7. Sample consistency: one $x_T$, different $S$
#
# With $\eta = 0$ the sample is a deterministic function of $x_T$, and the function barely depends on $S$
# (DDIM sec. 5.2, fig. 5): the high-level features are fixed by $x_T$. Section 4's grids started all samplers
# from the same four $x_T$; here they are stacked, one row per sampler, and measured against DDIM-100. Two
# yardsticks: the RMSE between two *different* DDIM-100 samples (any two of the four), and the DDPM-1000 sample
# from the same $x_T$, whose fresh noise at every step makes it, as a rule, another sample (here three of the four
# are other digits).

# %%
rows_ = [("DDIM", 10), ("DDIM", 20), ("DDIM", 50), ("DDIM", 100), ("DDPM", T)]
ax = show(torch.cat([grid[key] for key in rows_]), "rows: DDIM-10, 20, 50, 100, DDPM-1000; same x_T per column",
          len(x_T))
ax.figure.set_size_inches(3.6, 4.4)
plt.show()


def rmse(a, b):
    """Root mean squared difference per sample, pixels in [-1, 1]."""
    return (a - b).pow(2).flatten(1).mean(1).sqrt()


ref100 = grid["DDIM", 100]
for name, S in rows_[:3] + rows_[4:]:
    d = rmse(grid[name, S], ref100)
    print(f"{name}-{S:<5} against DDIM-100 from the same x_T: RMSE {float(d.mean()):.3f} +- {float(d.std()):.3f}")
pairs = torch.combinations(torch.arange(len(x_T)))
d = rmse(ref100[pairs[:, 0]], ref100[pairs[:, 1]])
print(f"two different DDIM-100 samples ({len(pairs)} pairs):      RMSE {float(d.mean()):.3f} +- {float(d.std()):.3f}"
      "   (mean +- std over samples; pixels in [-1, 1])")

# %% [markdown]
# Each column is one digit through DDIM-10, 20, 50 and 100: the digit and its pose are fixed by $x_T$, and the
# distance to DDIM-100 shrinks as $S$ grows (0.11, 0.04, 0.02), far below the 0.78 between two different
# samples. The DDPM-1000 sample from the same $x_T$ is as far from it (0.78) as an unrelated sample: with fresh
# noise at every step, $x_T$ does not determine DDPM's result, which is why only the deterministic sampler
# gives a latent code (DDIM sec. 5.2 and 5.4).
#
# ## Summary
#
# - The toy notebooks' code runs unchanged on images: only the network differs.
# - DDIM-$S$ costs about $S/T$ of DDPM-1000's wall-clock. Over three seeds of 100 samples, DDIM-10 scores worse than
#   DDIM-20 beyond the spread (paired FID and sure fraction), and DDIM-20's sure fraction already equals the DDIM-50
#   record's within its standard error; the 1,000-sample record puts DDIM-50 level with DDPM-1000 in FID and
#   within about two standard errors in sure fraction, at 1/20 of the cost: the near parity DDIM's Table 1 reports.
# - At $S = 10$, $\hat\sigma$ is far worse than $\eta = 0$ (paired FID +108, 16 spreads; sure fraction 79% against
#   87%) and $\eta = 1$ slightly worse in paired FID (+1.7 $\pm$ 0.2): DDIM Table 1's ordering.
# - With $\eta = 0$, $x_T$ is a latent code: the sample it gives barely changes with $S$.
#
# ## Going further
#
# Two more uses of that latent code, from DDIM sec. 5.3-5.4. `python -m minddim train`, `evaluate` and `sample`
# reproduce the shipped model and its figures (README, "Image data and training").
#
# ### A. Interpolation in $x_T$
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
# ### B. Encoding test digits and decoding them back (DDIM Table 2)
#
# Running the deterministic step forwards (`md.encode`) maps a test digit to a latent $x_T$; decoding that
# latent with the same $S$ should give the digit back. The error shrinks as $S$ grows (the ODE is solved
# more finely) - a property only the deterministic sampler has. We use 8 test digits the model never saw.
#
# DDIM's Table 2 reports the per-dimension mean squared error on the CIFAR-10 test set with pixels scaled to
# $[0, 1]$; our pixels live in $[-1, 1]$, twice the range, so our squared errors are divided by 4 to compare.
# The paper's CIFAR-10 runs use the *quadratic* subsequence (its appendix D.2), which puts more of the steps
# at small $t$; we use the uniform one, and add the quadratic one at $S = 10$. The last column asks what the
# round trip does to a digit's identity: how many reconstructions the classifier reads as the same digit as
# the original.

# %%
digits = x_test[:8]
with torch.no_grad():
    read_orig = classifier(digits).argmax(1)
print(f"the classifier reads {int((read_orig == test_labels[:8]).sum())} of the 8 originals as their label")
print(f"{'S':>10}{'MSE in [0, 1] units':>24}{'paper (CIFAR-10)':>18}{'RMSE in [-1, 1]':>17}{'same digit':>12}")
recon = {}
paper_mse = {10: 0.014, 20: 0.0065, 50: 0.0023, 100: 0.0009}
for S, kind in ((10, "uniform"), (20, "uniform"), (50, "uniform"), (100, "uniform"), (10, "quadratic")):
    tau = md.timesteps(T, S, kind)
    recon[S, kind] = md.sample(model, md.encode(model, digits, schedule, tau), schedule, tau, eta=0.0)
    mse = (recon[S, kind] - digits).pow(2).flatten(1).mean(1) / 4          # per digit, pixels scaled to [0, 1]
    with torch.no_grad():
        same = int((classifier(recon[S, kind].clamp(-1, 1)).argmax(1) == read_orig).sum())
    label = f"{S} {kind[:4]}."
    print(f"{label:>10}{float(mse.mean()):>14.4f} +- {float(mse.std() / len(digits) ** 0.5):.4f}"
          f"{paper_mse[S] if kind == 'uniform' else '':>18}{float((4 * mse.mean()).sqrt()):>17.3f}{same:>9} / {len(digits)}")
print(f"(MSE: mean +- standard error over the {len(digits)} digits)")
ax = show(torch.cat([digits, recon[10, "uniform"], recon[10, "quadratic"], recon[100, "uniform"]]),
          "rows: test digits; decoded with S = 10 uniform, S = 10 quadratic, S = 100 uniform", 8)
ax.figure.set_size_inches(6, 3.4)
plt.show()

# %% [markdown]
# Beside the paper: the error falls steeply with $S$ here too, and faster. At $S = 10$ and 20 our error is about four
# times DDIM's CIFAR-10 figure (0.050 against 0.014, 0.027 against 0.0065); at $S = 50$ it is the paper's within the
# standard error (0.0025 $\pm$ 0.0010 against 0.0023), and at $S = 100$ below it (0.0004 $\pm$ 0.0002 against 0.0009).
# The quadratic subsequence does not explain the gap at $S = 10$: it gives the same error as the uniform one, within
# the standard error. At $S = 10$ the round trip does not even keep the digit: the classifier reads only 4 of the 8
# reconstructions as the digit it reads in the original (5 with the quadratic subsequence, 7 at $S = 20$, all 8
# from $S = 50$). The grid shows how: the $S = 10$ reconstructions are faded and thinned, and some are redrawn as
# another shape (the 2 and the 0). An error of 0.050 in $[0, 1]$ units is an RMSE of 0.45 in our $[-1, 1]$ range,
# over a fifth of the whole range. The models, data sets and $N$ differ (8 digits here), so the numbers are not meant
# to agree; what they share is the shape: with few steps the Euler steps of the ODE (DDIM eq. 14) are too coarse to
# retrace the path, and a nearly binary MNIST digit with sharp edges seems to punish coarse steps more than a
# CIFAR-10 image does. Encoding is only as faithful as the ODE
# solve is fine.

# %% [markdown]
# **Next:** notebook 08 · what a trained DDPM does besides sampling: the variational bound of these digits as a
# codelength (progressive lossy compression), samples that share $x_t$, interpolation through $q$, and inpainting,
# all with this notebook's shipped U-Net. No exercise goes with this notebook yet.
