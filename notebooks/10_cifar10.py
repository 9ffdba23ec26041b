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
# # 10 · DDPM and DDIM on CIFAR-10, and the DDPM paper's own model
#
# **You will be able to:** run the course's pipeline (`md.UNet` with three channels, `md.train`, `md.sample`) on
# CIFAR-10; write the command that trains a U-Net of the DDPM paper's size on one GPU or several, and account for
# the paper's 35.7 M parameters; load the DDPM paper's own CIFAR-10 model and sample it with DDPM and DDIM from one
# $x_T$.
#
# **You need first:** notebook 07 (the U-Net, `md.train` and `md.sample` on MNIST) and notebook 05 (subsequences
# $\tau$, $\eta$, sample consistency); no new mathematics.
#
# **Time:** about 15 min to read (an estimate); runs in about 5 s on a 2-core CPU (one thread, AVX2 kernels; README, "Running the
# tests") without the data. With CIFAR-10, sections 3 and 4 train and sample a small model
# (not timed: the course's machines have no CIFAR-10); with the paper's model, section 5 runs its 35.7 M-parameter
# network for 4 images x 1,180 steps (DDPM-1000 and DDIM-100, 50, 20, 10) = 4,720 image-passes, about 17 min at the
# README's 0.22 s per pass on a CPU: use a GPU.
#
# *Optional.* This notebook needs the CIFAR-10 data (not shipped) for sections 1, 3 and 4, the DDPM paper's
# checkpoint for section 5, and, to sample the paper's model at full length, a GPU. Without them it still runs top
# to bottom: section 2 runs, and every other section prints what is missing and how to get it. Nothing here
# downloads anything unless you set `DOWNLOAD_CIFAR10 = True` in the next cell.
#
# 1. the data; 2. the U-Net for three channels, at the paper's size, and the training command for a GPU;
# 3. a small model trained on the CPU; 4. sampling it with DDPM and DDIM; 5. the DDPM paper's own model, sampled
# by `md.sample`, and DDIM's sample consistency. *Going further*: training on several GPUs or machines.

# %% tags=["nbval-ignore-output"]
import importlib.util
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import minddim as md
from minddim import plotting
from minddim.data import available, data_root, load_cifar10, to_model_range
from minddim.hub import is_diffusers, paper_folder

DOWNLOAD_CIFAR10 = False     # True: download CIFAR-10 (about 170 MB) into the data folder if it is missing

if DOWNLOAD_CIFAR10 and not available("cifar10"):
    print(f"downloading CIFAR-10 (about 170 MB) from {md.data.CIFAR10_MIRRORS[0]} into {data_root() / 'cifar10'}")
    load_cifar10("train")                        # checked against its MD5; both splits are in the one archive
have_cifar = available("cifar10")
have_paper_model = is_diffusers(paper_folder("ddpm-cifar10-32"))
have_diffusers = importlib.util.find_spec("diffusers") is not None

if have_cifar:
    print("CIFAR-10 is present: sections 1, 3 and 4 run.")
else:
    print("CIFAR-10 is missing (it goes in $MINDDIM_DATA/cifar10/cifar-10-python.tar.gz; MINDDIM_DATA unset: "
          "~/.cache/minddim).\n  Sections 1, 3 and 4 skip. To get it (about 170 MB, needs network), set "
          "DOWNLOAD_CIFAR10 = True above, or run once in a terminal:\n"
          "  python -c \"from minddim.data import load_cifar10; load_cifar10('train')\"\n"
          "  or put cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html in that folder.")
if have_paper_model and have_diffusers:
    print("The DDPM paper's model (google/ddpm-cifar10-32) is present: section 5 runs.")
elif have_paper_model:
    print("The DDPM paper's model is present, but loading it needs diffusers: section 5 skips. Install it with\n"
          "  pip install -c constraints.txt -e '.[hub]'")
else:
    print("The DDPM paper's model is missing (it goes in $MINDDIM_DATA/ddpm-cifar10-32): section 5 skips. To get "
          "it (needs network), run once in a terminal, in the repository's root:\n"
          "  pip install -c constraints.txt -e '.[hub]'\n"
          "  hf download google/ddpm-cifar10-32 --local-dir \"${MINDDIM_DATA:-$HOME/.cache/minddim}/ddpm-cifar10-32\"")
SKIP_DATA = "CIFAR-10 is missing (see the first code cell): this cell skips."
SKIP_PAPER = "The DDPM paper's model is not at hand (see the first code cell): this cell skips."

# %% [markdown]
# ## 1. The data
#
# `load_cifar10` checks the archive's MD5, extracts it safely (no member may land outside the folder) and reads the
# pickled batches with an unpickler that accepts arrays only. Images come as uint8 (N, 3, 32, 32).

# %% tags=["nbval-ignore-output"]
if have_cifar:
    train_u8, train_labels = load_cifar10("train", download=False)
    test_u8, _ = load_cifar10("test", download=False)
    x_train = to_model_range(train_u8)
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    print("train", tuple(x_train.shape), "test", tuple(test_u8.shape))
    print("per-channel mean in [-1, 1]:", x_train.mean((0, 2, 3)).numpy().round(3))
    print("images per class:", dict(zip(classes, torch.bincount(train_labels, minlength=10).tolist())))
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(plotting.image_grid(x_train[:64]))
    ax.set_title("64 CIFAR-10 training images", fontsize=9)
    ax.axis("off")
    plt.show()
else:
    print(SKIP_DATA)

# %% [markdown]
# ## 2. The U-Net for three channels, at the paper's size
#
# The same `md.UNet`, with `channels=3`. DDPM's CIFAR-10 network (appendix B) has four feature map resolutions
# (32 x 32 to 4 x 4), two residual blocks per resolution level, self-attention at the 16 x 16 resolution, dropout
# 0.1 and 35.7 million parameters; its width is set in the official code (`scripts/run_cifar.py` of
# hojonathanho/diffusion: 128 base channels, multipliers 1, 2, 2, 2). The cell builds `md.UNet` at that width and
# depth and counts its parameters, then adds what `md.UNet` leaves out: it has self-attention only in the middle
# block, while the paper's network (in the official code's `unet.py`) also has one after each of the five residual
# blocks at 16 x 16 (two on the way down, three on the way up), each of 256 channels.

# %%
def n_params(module):
    return sum(p.numel() for p in module.parameters())


rows = {}
for base, mults, num_res in ((16, (1, 2, 2), 1), (64, (1, 2, 2, 2), 2), (128, (1, 2, 2, 2), 2)):
    n = n_params(md.UNet(3, base, mults, num_res))
    rows[f"base {base}, mults {mults}, {num_res} residual block(s) per level"] = [n]
attention = n_params(md.models.SelfAttention(256, 8))          # md.UNet's attention block, at 256 channels
rows["one self-attention block of 256 channels"] = [attention]
rows["base 128 as above + 5 such blocks at 16 x 16"] = [n + 5 * attention]
print(md.table(rows, ["parameters"], header="md.UNet(channels=3), 32 x 32 images", digits=0))

# %% [markdown]
# **The paper's size, counted.** At the paper's width and depth `md.UNet` has 34,427,907 parameters; five
# attention blocks of 263,680 each bring it to 35,746,307, which is the 35.7 M of DDPM's appendix B, and the same
# count as a diffusers network built with `google/ddpm-cifar10-32`'s config (README, "The papers' own models";
# `tests/test_hub.py`). The smallest row is the model section 3 trains on the CPU; the middle one is what the
# command below trains on one GPU:
#
# ```bash
# python -m minddim train --data cifar10 --out runs/cifar10 --device cuda --steps 200000 --batch-size 128 \
#     --lr 2e-4 --ema-decay 0.9999 --base 64 --mults 1,2,2,2 --num-res 2 --checkpoint-every 5000   # --resume continues
# python -m minddim sample --weights runs/cifar10/ema.pt --steps 50 --eta 0 --out cifar10_ddim50.png
# ```
#
# Its learning rate, batch and EMA decay are the paper's (appendix B: $2 \times 10^{-4}$, 128, 0.9999); the width
# and the 200,000 steps are a single GPU's budget, not the paper's 800k steps. No run of it was timed for this
# course (README, "Image data and training"). The paper trained its model on a TPU v3-8 at 21 steps per second,
# 10.6 hours for 800k steps (appendix B).

# %% [markdown]
# ## 3. A small model on the CPU
#
# Three hundred steps of the smallest U-Net: the GPU run's code path at a budget that fits a CPU. Meant to let you watch
# the loss fall (the cell prints its mean over the first and the last 30 steps; not run on CIFAR-10 for this course);
# far too little for objects: the
# paper's model saw 800k batches, this one 300. Judge the samples of section 4 by eye against that.

# %% tags=["nbval-ignore-output"]
if have_cifar:
    torch.manual_seed(0)
    start = time.perf_counter()
    small = md.train(md.UNet(3, 16, (1, 2, 2), 1), x_train, md.Schedule.linear(), steps=300, batch_size=64,
                     lr=5e-4, ema_decay=0.99, seed=0)
    print(f"300 steps in {time.perf_counter() - start:.0f} s")
    losses = np.array(small.losses)
    print(f"mean loss, steps 1-30: {losses[:30].mean():.3f} | steps 271-300: {losses[-30:].mean():.3f}")
    fig, ax = plt.subplots(figsize=(5, 2.6))
    ax.plot(np.arange(1, len(losses) + 1), losses, lw=0.8)
    ax.set(xlabel="step", ylabel="L_simple (log scale)", yscale="log",
           title="training loss of the small CIFAR-10 U-Net, per batch")
    plt.show()
else:
    print(SKIP_DATA)

# %% [markdown]
# ## 4. Sampling: DDPM against DDIM
#
# The same `md.sample` as for MNIST and the toy data: DDPM is $\eta = 1$ on all 1000 steps, DDIM takes $S$ steps
# (the uniform subsequence) with $\eta = 0$, all from the same $x_T$; each panel's title gives its wall-clock.

# %% tags=["nbval-ignore-output"]
if have_cifar:
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
    fig.suptitle("16 samples of the small CIFAR-10 U-Net from one x_T", fontsize=10)
    plt.show()
else:
    print(SKIP_DATA)

# %% [markdown]
# ## 5. The paper's own model, sampled by this course
#
# `google/ddpm-cifar10-32` holds DDPM's CIFAR-10 network (35.7 M parameters; FID 3.17 in the DDPM paper, sec. 4)
# in diffusers' format. `minddim.hub.load_diffusers` loads it as `model(x_t, t)` in this course's 1-based time (the
# network is handed $t - 1$, diffusers' 0-based index) with the `Schedule` of its scheduler config (linear betas
# from $10^{-4}$ to 0.02, $T = 1000$), and `md.sample` samples it: DDPM-1000 and DDIM-$S$ from **one** $x_T$.
# `tests/test_hub.py` checks this loader against diffusers' own pipelines on a network of the same architecture.
#
# The cell prints the checkpoint's `variance_type`. The README records `fixed_small`, DDPM's smaller variance
# $\sigma_t^2 = \tilde\beta_t$, which is $\eta = 1$ (`model.ddpm_eta`): DDIM's Table 1 row $\eta = 1$ (FID 4.73 at
# $S = 1000$), not its $\hat\sigma$ row ($\sigma_t^2 = \beta_t$), whose $S = 1000$ entry is DDPM's 3.17.
# Clipping of the predicted $x_0$ follows the config. DDIM's CIFAR-10 FIDs use the quadratic subsequence; this cell
# uses the uniform one (README, "The papers' own models", gives both).
#
# Cost: every step is one pass of the 35.7 M-parameter network, 12.1 GFLOPs per image; the README measured about
# 0.22 s per image-pass on one thread of this course's 2-core CPU ("The papers' own models", *Wall-clock*). So on a
# CPU the cell draws 4 images (DDPM-1000 alone is 4,000 image-passes, about a quarter of an hour at that rate); with
# a GPU, 16.

# %% tags=["nbval-ignore-output"]
if have_paper_model and have_diffusers:
    from minddim.hub import load_diffusers

    device = "cuda" if torch.cuda.is_available() else "cpu"
    paper, paper_schedule = load_diffusers(paper_folder("ddpm-cifar10-32"), device=device)
    print(paper_schedule, "| parameters:", n_params(paper), "| variance_type:", paper.variance_type,
          "-> DDPM's eta =", paper.ddpm_eta, "| clip_x0:", paper.clip_x0)
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
                 f"DDIM, eta = 0, S = {S}\n{paper_seconds[S]:.1f} s, "
                 f"{paper_seconds[1000] / paper_seconds[S]:.0f}x faster")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle("google/ddpm-cifar10-32 sampled by md.sample, all from one x_T", fontsize=10)
    plt.show()
else:
    print(SKIP_PAPER)

# %% [markdown]
# **Sample consistency** (DDIM sec. 5.2). With $\eta = 0$ the sample is a deterministic function of $x_T$, and
# DDIM reports that with the same $x_T$ most high-level features are similar whatever the trajectory, with minor
# differences in details. The cell measures it: the root-mean-square distance (pixels in $[-1, 1]$) between each
# DDIM-$S$ sample and the DDIM-100 sample from the same $x_T$, beside the distance between DDIM-100 samples from
# *different* $x_T$, the scale of "a different image". DDPM-1000 draws fresh noise at every step, so it is not
# expected to match.

# %% tags=["nbval-ignore-output"]
if have_paper_model and have_diffusers:
    def rms(a, b):
        return ((a - b) ** 2).flatten(1).mean(1).sqrt()

    different = rms(paper_samples[100], paper_samples[100].roll(1, 0))
    rows = {"DDIM-100 vs DDIM-100, different x_T": [different]}
    for S in (10, 20, 50, 1000):
        name = f"{'DDPM' if S == 1000 else 'DDIM'}-{S} vs DDIM-100, same x_T"
        rows[name] = [rms(paper_samples[S], paper_samples[100])]
    print(md.table(rows, ["RMS distance"], digits=3, title=f"mean +- std over {n_paper} images"))
else:
    print(SKIP_PAPER)

# %% [markdown]
# ## Summary
#
# - Nothing in the package is specific to MNIST: the data loader, `md.UNet(channels=3)`, `md.train` and
#   `md.sample` carry over unchanged.
# - `md.UNet` at the paper's width and depth, plus the five attention blocks it leaves out, counts the 35.7 M
#   parameters of DDPM's appendix B.
# - A CPU can show the mechanics on CIFAR-10 but not a good model: the command of section 2, on a GPU, is the path
#   to samples worth measuring, and `python -m minddim sample` draws them with any $S$ and $\eta$.
# - The DDPM paper's own model loads in the course's 1-based time (`minddim.hub`) and runs on the same
#   `md.sample`; `python -m minddim sample --weights FOLDER_OF_THE_CHECKPOINT --out samples --n 50000` writes
#   the 50,000 PNGs that torch-fidelity or clean-fid turn into FIDs to set beside DDIM's Table 1 (README, "The papers'
#   own models").

# %% [markdown]
# ## Going further
#
# **At the paper's scale: several GPUs, several machines.** The paper's width and depth at its batch of 128 for 800k
# steps; to spread it over several GPUs the command does not change, only the launcher does. `torchrun` starts one
# process per GPU, each trains its share of the same global batch, and DistributedDataParallel averages their
# gradients:
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
# a stop continues from the last checkpoint; relaunch by hand (README, "Training on several GPUs or machines", says
# why torchrun's own `--max-restarts` is not relied on). On a failure the whole job stops with a non-zero exit and
# torchrun names the rank that failed. Tested on 2 CPU processes (gloo) against one process
# (`tests/test_distributed.py`); no multi-GPU run was measured for this course.

# %% [markdown]
# **Next:** this is the end of the course, and there is no exercise for this notebook. Go back to the README for the
# full-length runs ("Image data and training", "Training on several GPUs or machines", "The papers' own models"), and
# to any exercise in `exercises/` (01-06, 08 and 09) you have not solved yet.
