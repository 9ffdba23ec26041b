"""Command line: ``python -m minddim exercises``, ``grade PATH... [--json]``, ``train ...``, ``sample ...``,
``evaluate ...``, ``train-classifier ...``, ``train-toy ...``."""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv=None) -> int:
    from .commands import DATASETS
    from .data import TOY_SETS
    from .train import LR_DECAYS, PRECISIONS

    parser = argparse.ArgumentParser(prog="python -m minddim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("exercises", help="generate exercises/ from solutions/")
    p.add_argument("--solutions", default="solutions")
    p.add_argument("--out", default="exercises")

    p = sub.add_parser("grade", help="grade submitted exercise notebooks")
    p.add_argument("paths", nargs="+", help="notebooks (.ipynb) to grade")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per cell (default 60)")
    p.add_argument("--solutions", default=None, help="folder of the solution notebooks (default: the repository's)")

    p = sub.add_parser("train", help="train a U-Net on MNIST or CIFAR-10 (checkpoints; --resume continues)")
    p.add_argument("--data", choices=DATASETS, default="mnist")
    p.add_argument("--out", default="runs/mnist", help="run folder: config, checkpoint, loss.csv, ema.pt + ema.json")
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--lr-decay", choices=LR_DECAYS, default="constant",
                   help="learning rate per step: constant (DDPM) or a cosine decay from --lr to 0 over --steps")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="bf16: the forward pass in bfloat16 under torch.autocast (faster for wide U-Nets on CPUs "
                        "with bf16 units and on GPUs; benchmarks/README.md, section 3)")
    p.add_argument("--ema-decay", type=float, default=0.9995)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base", type=int, default=32, help="U-Net width")
    p.add_argument("--mults", default="1,2,2", help="width multipliers per resolution, e.g. 1,2,2")
    p.add_argument("--num-res", type=int, default=1, help="residual blocks per resolution")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--device", default="cpu", help='where to train: "cpu" (default) or e.g. "cuda"')
    p.add_argument("--root", default=None, help="data folder (default: $MINDDIM_DATA or ~/.cache/minddim)")

    p = sub.add_parser("sample", help="sample a PNG grid, or a folder of PNG files for FID, from trained weights "
                                      "(DDIM, or DDPM with --steps 1000 --eta 1)")
    p.add_argument("--weights", required=True, help="ema.pt written by `train` (ema.json beside it), a shipped model "
                                                    "(mnist_unet), or, for the folder mode, a diffusers folder or hub "
                                                    "id such as google/ddpm-cifar10-32 (README, \"The papers' own models\")")
    p.add_argument("--out", default="samples.png",
                   help="a .png file: one grid of all samples; anything else: a folder of 00000.png, 00001.png, ... "
                        "written in batches, resumable (minddim.sample_folder)")
    p.add_argument("--n", "--num-samples", type=int, default=64,
                   help="how many (under torchrun write --num-samples: torchrun takes --n for its own --nnodes)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--eta", default="0", help='a number >= 0, or "sigma_hat"')
    p.add_argument("--kind", choices=("uniform", "quadratic", "trailing"), default="uniform",
                   help="the subsequence of --steps time steps (minddim.sampling.timesteps)")
    p.add_argument("--batch", type=int, default=100, help="folder mode: images per batch (default 100)")
    p.add_argument("--device", default="cpu", help='"cpu" (default) or e.g. "cuda" (under torchrun: each process\'s GPU)')
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("evaluate", help="MNIST FID and confidence of DDIM-50 and DDPM-1000 samples, into the weights' JSON")
    p.add_argument("--weights", required=True, help="ema.pt written by `train` (its ema.json receives the figures)")
    p.add_argument("--n", "--num-samples", type=int, default=1000,
                   help="samples per sampler (default 1000; under torchrun write --num-samples)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--device", default="cpu", help='where to sample: "cpu" (default) or e.g. "cuda" (under torchrun: '
                                                   "each process's GPU); the scoring runs on the CPU")
    p.add_argument("--root", default=None)

    p = sub.add_parser("train-classifier", help="train the MNIST classifier behind the MNIST FID")
    p.add_argument("--out", default="minddim/weights/mnist_classifier.pt")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", default=None)

    p = sub.add_parser("train-toy", help="train the course's 2-D MLP on a toy set (notebook 03's recipe; the shipped "
                                         "eight_gaussians_mlp)")
    p.add_argument("--data", choices=TOY_SETS, default="eight_gaussians")
    p.add_argument("--out", default="runs/eight_gaussians_mlp", help="folder: ema.pt + ema.json, loss.csv")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="replace the ema.pt already in --out")

    args = parser.parse_args(argv)
    # under torchrun every process runs this; rank 0 alone says what was written
    report = print if os.environ.get("RANK", "0") == "0" else (lambda *a, **k: None)
    if args.command == "train-classifier":
        from .commands import train_classifier

        _, acc = train_classifier(args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                  root=args.root, command="python -m minddim " + " ".join(sys.argv[1:] if argv is None else argv))
        print(f"wrote {args.out}: test accuracy {acc:.4f}")
        return 0
    if args.command == "train-toy":
        from pathlib import Path

        from .commands import train_toy_model

        if args.steps < 1:
            parser.error(f"train-toy: --steps must be a positive integer, got {args.steps}")
        if (Path(args.out) / "ema.pt").exists() and not args.force:
            parser.error(f"train-toy: {args.out}/ema.pt exists; choose another --out, or add --force to replace it")
        train_toy_model(args.out, args.data, steps=args.steps, seed=args.seed,
                        command="python -m minddim " + " ".join(sys.argv[1:] if argv is None else argv))
        print(f"wrote {args.out}/ema.pt, {args.out}/ema.json and {args.out}/loss.csv")
        return 0
    if args.command == "train":
        from .commands import train_images

        train_images(args.data, args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                     ema_decay=args.ema_decay, seed=args.seed, base=args.base,
                     mults=tuple(int(m) for m in args.mults.split(",")), num_res=args.num_res,
                     checkpoint_every=args.checkpoint_every, resume=args.resume, root=args.root, device=args.device,
                     lr_decay=args.lr_decay, precision=args.precision,
                     command="python -m minddim " + " ".join(sys.argv[1:] if argv is None else argv))
        report(f"wrote {args.out}/ema.pt and {args.out}/ema.json")
        return 0
    if args.command == "evaluate":
        from .commands import evaluate_unet

        quality = evaluate_unet(args.weights, n=args.n, seed=args.seed, batch=args.batch, root=args.root,
                                device=args.device,
                                command="python -m minddim " + " ".join(sys.argv[1:] if argv is None else argv))
        report(json.dumps(quality, indent=2))
        return 0
    if args.command == "sample" and args.out.lower().endswith(".png"):
        from .hub import is_diffusers

        if is_diffusers(args.weights):
            parser.error("sample: a diffusers checkpoint is sampled into a folder of PNG files; give --out a folder "
                         "(a path without .png)")
    if args.command == "sample" and not args.out.lower().endswith(".png"):
        from .distributed import launched_as, process_device
        from .sample_folder import sample_folder

        eta = args.eta if args.eta == "sigma_hat" else float(args.eta)
        rank, world, _ = launched_as()                   # under torchrun: this process's batches, on its GPU
        written = sample_folder(args.weights, args.out, n=args.n, batch=args.batch, steps=args.steps, eta=eta,
                                seed=args.seed, kind=args.kind, device=process_device(args.device), rank=rank,
                                world=world)
        print(f"wrote {len(written)} PNG files to {args.out} (the others were there already)")
        return 0
    if args.command == "sample":
        from .commands import sample_images

        eta = args.eta if args.eta == "sigma_hat" else float(args.eta)
        sample_images(args.weights, args.out, n=args.n, steps=args.steps, eta=eta, seed=args.seed, kind=args.kind,
                      device=args.device)
        report(f"wrote {args.out}")
        return 0
    if args.command == "exercises":
        from .exercises import make_exercises

        for path in make_exercises(args.solutions, args.out):
            print(f"wrote {path}")
        return 0
    from .grading import format_report, grade_notebook

    reports = [grade_notebook(p, args.solutions, args.timeout) for p in args.paths]
    print(json.dumps(reports, indent=2) if args.json else format_report(reports))
    return 0


if __name__ == "__main__":
    from .distributed import entry_point

    sys.exit(entry_point(main)())       # under torchrun: a failure is recorded with its rank for the launcher
