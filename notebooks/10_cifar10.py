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
#   minddim:
#     requires_data: cifar10
# ---

# %% [markdown]
# # 10 · DDPM and DDIM on CIFAR-10
#
# **What this notebook shows.** The MNIST pipeline of notebook 07 on three channels and 32x32 images, the
# data set of both papers' headline results (DDPM: FID 3.17; DDIM: Table 1). We load CIFAR-10, build the
# U-Net for three channels, give the training command for a GPU, train a small model for a few minutes
# on the CPU and sample it with DDPM and DDIM.
#
# CIFAR-10's archive is 170 MB (163 MiB) and is not shipped with the course. This notebook runs only where the data is present:
# run `minddim.data.load_cifar10("train")` once with a network connection (it downloads and checks the
# archive), or place `cifar-10-python.tar.gz` in `$MINDDIM_DATA/cifar10/` (default
# `~/.cache/minddim/cifar10/`). Without it, the first cell below says so and the test suite reports the
# rest of the notebook as skipped; nothing here stands in for CIFAR-10.
#
# Section 5 samples **the DDPM paper's own CIFAR-10 model** (`google/ddpm-cifar10-32`, DDPM's weights in
# diffusers' format) with this course's sampler. It needs the checkpoint, not the data: download it once with
# network, `hf download google/ddpm-cifar10-32 --local-dir $MINDDIM_DATA/ddpm-cifar10-32` (`hf` comes with
# `pip install -e '.[hub]'`), then run the first cell and section 5. Without the folder, section 5 says so and
# skips.

# %% tags=["nbval-ignore-output"]
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import minddim as md
from minddim import plotting
from minddim.data import available, load_cifar10, to_model_range
from minddim.hub import is_diffusers, paper_folder

HAVE_CIFAR10 = available("cifar10")
if HAVE_CIFAR10:
    print("CIFAR-10 is present in the data folder: running the notebook end to end.")
else:
    print("CIFAR-10 is not present in the data folder ($MINDDIM_DATA/cifar10/cifar-10-python.tar.gz), so the "
          "rest of this notebook cannot run here and the test suite skips it. To run it, download the data "
          "once with minddim.data.load_cifar10('train') or place the archive there.")
HAVE_PAPER_MODEL = is_diffusers(paper_folder("ddpm-cifar10-32"))
print("The DDPM paper's CIFAR-10 model (google/ddpm-cifar10-32) is "
      + ("present at $MINDDIM_DATA/ddpm-cifar10-32: section 5 samples it." if HAVE_PAPER_MODEL else
         "not present at $MINDDIM_DATA/ddpm-cifar10-32: section 5 says so and skips."))

# %% [markdown]
# ## 1. The data
#
# `load_cifar10` extracts the archive safely (no member may land outside the folder) and reads the pickled
# batches with an unpickler that accepts arrays only. Images come as uint8 (N, 3, 32, 32).

# %% tags=["nbval-ignore-output"]
train_u8, train_labels = load_cifar10("train", download=False)
test_u8, _ = load_cifar10("test", download=False)
x_train = to_model_range(train_u8)
classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
print("train", tuple(x_train.shape), "test", tuple(test_u8.shape))
print("per-channel mean in [-1, 1]:", x_train.mean((0, 2, 3)).numpy().round(3))
print("images per class:", dict(zip(classes, torch.bincount(train_labels, minlength=10).tolist())))
fig, ax = plt.subplots(figsize=(5, 5))
ax.imshow(plotting.image_grid(x_train[:64]))
ax.set_title("64 training images", fontsize=9)
ax.axis("off")
plt.show()

# %% [markdown]
# ## 2. The U-Net for three channels, and the command for a GPU
#
# The same `md.UNet` with `channels=3` (32 -> 16 -> 8 with three levels). The DDPM paper's CIFAR-10 model
# has 35.7 M parameters (base 128, multipliers 1, 2, 2, 2, two residual blocks per level, dropout 0.1) and
# was trained for 800k steps at batch 128 on a TPU v3-8. The cell prints our U-Net's size at that width
# and depth: 34.43 M, 1.3 M fewer, because `md.UNet` has self-attention only in the middle block, while the
# paper's also has it at the 16x16 resolution: five more attention blocks of 256 channels, 0.26 M each,
# would bring ours to 35.75 M. A model worth sampling on a single GPU is smaller:

# %% tags=["nbval-ignore-output"]
for base, mults, num_res in ((16, (1, 2, 2), 1), (64, (1, 2, 2, 2), 2), (128, (1, 2, 2, 2), 2)):
    n = sum(p.numel() for p in md.UNet(3, base, mults, num_res).parameters())
    print(f"base {base:>3}, mults {mults}, {num_res} residual block(s) per level: {n / 1e6:.2f} M parameters")
print()
print("on a GPU (hours; --resume continues after a stop):")
print("  python -m minddim train --data cifar10 --out runs/cifar10 --device cuda --steps 200000 "
      "--batch-size 128 --lr 2e-4 --ema-decay 0.9999 --base 64 --mults 1,2,2,2 --num-res 2 --checkpoint-every 5000")
print("  python -m minddim sample --weights runs/cifar10/ema.pt --steps 50 --eta 0 --out cifar10_ddim50.png")

# %% [markdown]
# **At the paper's scale: several GPUs, several machines.** The paper's width and depth (base 128, multipliers
# 1, 2, 2, 2, two residual blocks per level: 34.43 M parameters here) at its batch of 128 for 800k steps took
# the paper 10.6 hours on a TPU v3-8 (21 steps per second, DDPM appendix B); to spread it over several GPUs the
# command does not change, only the launcher does. `torchrun` starts one process per GPU,
# each trains its share of the same global batch, and DistributedDataParallel averages their gradients:
#
# ```bash
# # one machine, 8 GPUs: each process computes 16 of the 128 images of every step
# torchrun --nproc_per_node=8 -m minddim train --data cifar10 --out runs/cifar10_ddpm --device cuda \
#     --steps 800000 --batch-size 128 --lr 2e-4 --ema-decay 0.9999 --base 128 --mults 1,2,2,2 --num-res 2 \
#     --checkpoint-every 5000 --resume
# # two machines with 8 GPUs each: the same line on both, with the node's rank and the first machine's address
# torchrun --nnodes=2 --nproc_per_node=8 --node-rank=0 --master-addr=HOST0 --master-port=29500 -m minddim train ...  # on HOST0
# torchrun --nnodes=2 --nproc_per_node=8 --node-rank=1 --master-addr=HOST0 --master-port=29500 -m minddim train ...  # on the other
# ```
#
# `--batch-size` stays the global batch (the number of processes must divide it), and every process draws the
# whole batch's images, times t and noise from the same seeded generator and keeps its own rows, so the run
# follows the one-process run with the same arguments up to floating-point rounding: the learning rate needs no
# rescaling. Rank 0 alone writes the run folder (checkpoint, `loss.csv`, `ema.pt` and `ema.json`, which records
# the world size and the launch command). With `--resume` on the first launch too, the same line relaunched after
# a stop continues from the last checkpoint (relaunch by hand: torchrun's own `--max-restarts` failed to reconnect
# the processes in 7 of 11 tries on the course's CPU machine); on a failure the whole job stops with a non-zero
# exit and torchrun names the rank that failed. Tested on 2 CPU processes (gloo) against one process
# (`tests/test_distributed.py`); no multi-GPU run was measured for this course.

# %% [markdown]
# ## 3. A small model on the CPU
#
# A few hundred steps of the smallest U-Net, the GPU run's code path at a budget that fits here. Enough to
# watch the loss fall (the cell prints its mean over the first and the last 30 steps); far too little for
# objects: the paper's model saw 800k batches, this one 300. Judge the samples below by eye against that.

# %% tags=["nbval-ignore-output"]
torch.manual_seed(0)
start = time.perf_counter()
small = md.train(md.UNet(3, 16, (1, 2, 2), 1), x_train, md.Schedule.linear(), steps=300, batch_size=64, lr=5e-4,
                 ema_decay=0.99, seed=0)
print(f"300 steps in {time.perf_counter() - start:.0f} s")
losses = np.array(small.losses)
print("mean loss, steps 1-30:", round(float(losses[:30].mean()), 3), "| steps 271-300:", round(float(losses[-30:].mean()), 3))
fig, ax = plt.subplots(figsize=(5, 2.6))
ax.plot(np.arange(1, len(losses) + 1), losses, lw=0.8)
ax.set(xlabel="step", ylabel="L_simple (log scale; always > 0)", yscale="log",
       title="training loss of the small CIFAR-10 U-Net, per batch")
plt.show()

# %% [markdown]
# ## 4. Sampling: DDPM against DDIM
#
# The same `md.sample` as for MNIST and the toy data: DDPM is $\eta = 1$ on all 1000 steps, DDIM takes $S$
# steps with $\eta = 0$, all from the same $x_T$.

# %% tags=["nbval-ignore-output"]
schedule = md.Schedule.linear()
x_T = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
for ax, (S, eta) in zip(axes, ((1000, 1.0), (50, 0.0), (10, 0.0))):
    start = time.perf_counter()
    x = md.sample(small.ema, x_T, schedule, md.timesteps(schedule.T, S), eta, clip_x0=1.0,
                  generator=torch.Generator().manual_seed(1))
    seconds = time.perf_counter() - start
    ax.imshow(plotting.image_grid(x, 4))
    ax.set_title(f"{'DDPM' if eta == 1 else 'DDIM'}, S = {S}: {seconds:.1f} s", fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 5. The paper's own model, sampled by this course
#
# `google/ddpm-cifar10-32` holds the weights of DDPM's CIFAR-10 network (35.7 M parameters, FID 3.17 in the
# DDPM paper) in diffusers' format. `minddim.hub.load_diffusers` loads it as `model(x_t, t)` in this course's
# 1-based time (the network is handed $t - 1$, diffusers' 0-based index) with the `Schedule` of its scheduler
# config (linear betas from $10^{-4}$ to 0.02, $T = 1000$), and `md.sample` samples it: DDPM-1000 and
# DDIM-$S$ from **one** $x_T$. `tests/test_hub.py` checks this loader against diffusers' own pipelines on a
# network of the same architecture. The checkpoint's scheduler uses DDPM's smaller variance ($\sigma_t^2 =
# \tilde\beta_t$, `fixed_small`), which is $\eta = 1$ (`model.ddpm_eta`): DDIM's Table 1 row $\eta = 1$, not its
# $\hat\sigma$ row, whose $S = 1000$ entry is DDPM's 3.17. Clipping of the predicted $x_0$ follows the config.
#
# Cost: every step is one pass of the 35.7 M-parameter network, 12.1 GFLOPs per image (measured with
# `torch.utils.flop_counter`), about 0.22 s per image on one thread of this course's 2-core CPU. On a CPU the
# cell below therefore draws 4 images (DDPM-1000 alone is 4,000 image-passes, about a quarter of an hour);
# with a GPU it draws 16. FID needs 50,000 samples per setting: README, "The papers' own models".

# %% tags=["nbval-ignore-output"]
if HAVE_PAPER_MODEL:
    from minddim.hub import load_diffusers

    device = "cuda" if torch.cuda.is_available() else "cpu"
    paper, paper_schedule = load_diffusers(paper_folder("ddpm-cifar10-32"), device=device)
    print(paper_schedule, "| parameters:", sum(p.numel() for p in paper.parameters()), "| variance_type:",
          paper.variance_type, "-> DDPM's eta =", paper.ddpm_eta, "| clip_x0:", paper.clip_x0)
    n_paper = 16 if device == "cuda" else 4
    x_T_paper = torch.randn(n_paper, *paper.image_shape, generator=torch.Generator().manual_seed(0)).to(device)
    paper_samples, paper_seconds = {}, {}
    for S, eta in ((1000, paper.ddpm_eta), (100, 0.0), (50, 0.0), (20, 0.0), (10, 0.0)):
        start = time.perf_counter()
        paper_samples[S] = md.sample(paper, x_T_paper, paper_schedule, md.timesteps(paper_schedule.T, S), eta,
                                     clip_x0=paper.clip_x0, generator=torch.Generator(device).manual_seed(1),
                                     progress=True).cpu()
        paper_seconds[S] = time.perf_counter() - start
        print(f"{'DDPM' if S == 1000 else 'DDIM'}-{S}: {paper_seconds[S]:.1f} s for {n_paper} images on {device}")
    fig, axes = plt.subplots(1, 5, figsize=(13, 3))
    for ax, S in zip(axes, paper_samples):
        ax.imshow(plotting.image_grid(paper_samples[S], 4 if n_paper == 16 else 2))
        title = (f"DDPM, eta = {paper.ddpm_eta}, S = 1000\n{paper_seconds[S]:.1f} s" if S == 1000 else
                 f"DDIM, eta = 0, S = {S}\n{paper_seconds[S]:.1f} s, {paper_seconds[1000] / paper_seconds[S]:.0f}x faster")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle("google/ddpm-cifar10-32 sampled by md.sample, all from one x_T", fontsize=10)
    plt.show()
else:
    print("The paper's model is not present at $MINDDIM_DATA/ddpm-cifar10-32: skipping section 5.")

# %% [markdown]
# **Sample consistency** (DDIM sec. 5.2). With $\eta = 0$ the sample is a deterministic function of $x_T$, and
# DDIM reports that the same $x_T$ gives nearly the same image at every $S$: $S$ changes details, not content.
# The cell measures it: the root-mean-square distance (pixels in $[-1, 1]$) between each DDIM-$S$ sample and the
# DDIM-100 sample from the same $x_T$, beside the distance between DDIM-100 samples from *different* $x_T$,
# the scale of "a different image". DDPM-1000 draws fresh noise at every step, so it is not expected to match.

# %% tags=["nbval-ignore-output"]
if HAVE_PAPER_MODEL:
    def rms(a, b):
        return ((a - b) ** 2).flatten(1).mean(1).sqrt()

    different = rms(paper_samples[100], paper_samples[100].roll(1, 0))
    print(f"RMS distance between DDIM-100 samples of different x_T: {different.mean():.3f} "
          f"(min {different.min():.3f}, max {different.max():.3f} over {n_paper} pairs)")
    for S in (10, 20, 50, 1000):
        d = rms(paper_samples[S], paper_samples[100])
        print(f"{'DDPM' if S == 1000 else 'DDIM'}-{S:<4} vs DDIM-100, same x_T: mean {d.mean():.3f} "
              f"(min {d.min():.3f}, max {d.max():.3f})")
else:
    print("The paper's model is not present at $MINDDIM_DATA/ddpm-cifar10-32: skipping section 5.")

# %% [markdown]
# ## Summary
#
# - Nothing in the package is specific to MNIST: the data loader, `md.UNet(channels=3)`, `md.train` and
#   `md.sample` carry over unchanged.
# - A CPU can show the mechanics on CIFAR-10 but not a good model: the command above, on a GPU, is the
#   path to samples worth measuring, and `python -m minddim sample` draws them with any $S$ and $\eta$.
# - The DDPM paper's own model loads in the course's 1-based time (`minddim.hub`) and runs on the same
#   `md.sample`; `python -m minddim sample --weights $MINDDIM_DATA/ddpm-cifar10-32 --out FOLDER` writes the
#   50,000 PNGs that torch-fidelity or clean-fid turn into DDIM Table 1's FIDs (README, "The papers' own models").
