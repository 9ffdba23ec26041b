"""Command line: ``python -m minddim COMMAND ...``; ``python -m minddim COMMAND --help`` lists each command's options.

Every option is checked before any work starts (:mod:`minddim.cli_args`): a mistake is one line and exit status 2,
and nothing is written. ``--help`` and most checks need no torch; a few checks import it (a --device other than
cpu, train --resume, sample's .png mode), and every command but ``exercises`` imports it when it runs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .cli_args import (RUN_FILES, Parser, UsageError, check_device, check_noisy_classifier, check_out_file,
                       check_out_folder, check_root, class_choice, decay, eta, fid_count, finite_float, finite_floats,
                       mults, nonneg_int, positive_float, positive_int, probability, resolve_weights, samplers, steps,
                       weights_model_config)

# the package's own lists (tests/test_cli.py checks that they agree), here so that --help needs no torch
DATASETS = ("mnist", "cifar10")                                         # minddim.commands.DATASETS
TOY_SETS = ("swiss_roll", "two_moons", "eight_gaussians", "checkerboard", "gaussian")  # minddim.data.TOY_SETS
LR_DECAYS = ("constant", "cosine")                                      # minddim.train.LR_DECAYS
PRECISIONS = ("fp32", "bf16")                                           # minddim.train.PRECISIONS
KINDS = ("uniform", "quadratic", "trailing")                            # minddim.sampling.timesteps

DESCRIPTION = """\
The course's commands: generate and grade the exercises, train a U-Net, sample it, measure it.

examples:
  python -m minddim exercises                      regenerate exercises/ (never replaces an edited one)
  python -m minddim grade exercises/01_forward_process.ipynb
  python -m minddim sample --weights mnist_unet --out samples.png
  python -m minddim evaluate --weights mnist_unet --n 200
  python -m minddim train --out runs/mnist --steps 20000

Run `python -m minddim COMMAND --help` for a command's options and their defaults.
Each mistake in a command line is one line and exit status 2, found before anything runs."""

ROOT_HELP = "data folder holding mnist/ and cifar10/ (default: $MINDDIM_DATA, else ~/.cache/minddim)"
DEVICE_HELP = 'where the network runs: "cpu", "cuda" or "cuda:N" (under torchrun: each process\'s GPU)'



def add_guidance_options(p, many: bool) -> None:
    """--guidance, --classifier-guidance and --classifier: one value each for `sample`, comma-separated lists for
    `evaluate` (``many``)."""
    kind, s, lst = (finite_floats, "s", " (comma-separated)") if many else (finite_float, "", "")
    p.add_argument("--guidance", type=kind, default=None,
                   help=f"classifier-free guidance strength{s}{lst} w: (1 + w) eps(x, y) - w eps(x, null); 0 is the "
                        "plain conditional model; diffusers' guidance_scale is 1 + w (default: 0 with --class on a "
                        "class-conditional model)")
    p.add_argument("--classifier-guidance", type=kind, default=None,
                   help=f"classifier guidance scale{s}{lst} s (Dhariwal & Nichol 2021): the gradient of the "
                        "noise-aware --classifier's log p(y | x_t) times s added to the score (default: none)")
    p.add_argument("--classifier", default=None,
                   help="the noise-aware classifier for --classifier-guidance: a .pt with its .json, as "
                        "`train-classifier --noisy` writes")

def build_parser() -> tuple[Parser, dict]:
    """The parser and its sub-parsers by command name."""
    parser = Parser(prog="python -m minddim", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    subs = {}

    def command(name, help_, description=None):
        subs[name] = sub.add_parser(name, help=help_, description=description or help_)
        return subs[name]

    p = command("exercises", "generate exercises/ from solutions/",
                "Write exercises/NN_*.py and .ipynb from solutions/ (the answers replaced by stubs). An exercise whose "
                "files differ from what the generator last wrote (a learner's answers) is kept, and said so, unless "
                "--force; the record of what was written is exercises/.generated.json.")
    p.add_argument("--solutions", default="solutions", help="folder of the solution notebooks")
    p.add_argument("--out", default="exercises", help="folder the exercises are written to")
    p.add_argument("--force", action="store_true", help="replace exercises edited since they were generated "
                                                        "(their answers are lost)")

    p = command("grade", "grade submitted exercise notebooks",
                "Run each notebook in a fresh kernel and score every question with the package's own check. "
                "Exit status 1 when a notebook cannot be read or matched to an exercise.")
    p.add_argument("paths", nargs="+", metavar="NOTEBOOK", help="notebooks (.ipynb) to grade")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument("--timeout", type=positive_float, default=60.0, help="seconds each cell may run, > 0")
    p.add_argument("--solutions", default=None, help="folder of the solution notebooks (default: the repository's)")

    p = command("train", "train a U-Net on MNIST or CIFAR-10 into a run folder",
                "Train a U-Net with L_simple (linear schedule, T = 1000) into a run folder: config.json, "
                "checkpoint.pt (every --checkpoint-every steps), loss.csv, and at the end ema.pt + ema.json. A folder "
                "that already holds a run is continued with --resume (the same settings; --steps may grow) or "
                "replaced with --force, never silently.")
    p.add_argument("--data", choices=DATASETS, default="mnist", help="the data set")
    p.add_argument("--out", default="runs/mnist", help="the run folder")
    p.add_argument("--steps", type=positive_int, default=20_000, help="training steps in all")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per step (the global batch)")
    p.add_argument("--lr", type=positive_float, default=2e-4, help="Adam's learning rate")
    p.add_argument("--lr-decay", choices=LR_DECAYS, default="constant",
                   help="learning rate per step: constant (DDPM's text names no decay; its code warms up over 5,000 steps) "
                        "or a cosine decay from --lr to 0 over --steps")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="bf16: the forward pass in bfloat16 under torch.autocast; only for a CPU with native bfloat16 "
                        "(AMX or AVX-512 BF16) or a GPU, elsewhere about 10x slower and warned "
                        "(benchmarks/README.md, sections 3 and 8)")
    p.add_argument("--ema-decay", type=decay, default=0.9995, help="decay of the weights' moving average, in [0, 1)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed")
    p.add_argument("--base", type=positive_int, default=None,
                   help="U-Net width (channels at full resolution; default: 32, or the --init-from model's)")
    p.add_argument("--mults", type=mults, default=None,
                   help="width multipliers per resolution, e.g. 1,2,2 (default: 1,2,2, or the --init-from model's)")
    p.add_argument("--num-res", type=positive_int, default=None,
                   help="residual blocks per resolution (default: 1, or the --init-from model's)")
    p.add_argument("--classes", type=positive_int, default=None,
                   help="train a class-conditional U-Net on the data's labels with this many classes (10 for MNIST "
                        "and CIFAR-10), for classifier-free guidance (default: unconditional)")
    p.add_argument("--p-uncond", type=probability, default=None,
                   help="with --classes: the probability that a label is replaced by the null label (label dropout, "
                        "Ho & Salimans 2022; default: 0.1)")
    p.add_argument("--init-from", default=None,
                   help="with --classes: start from an unconditional U-Net (a shipped one such as mnist_unet, a run "
                        "folder or an ema.pt) with the class embedding at zero, i.e. fine-tune it (default: a fresh "
                        "network); its architecture is taken")
    p.add_argument("--label-lr", type=positive_float, default=None,
                   help="with --classes: the class embedding's own learning rate (it follows --lr-decay like --lr); "
                        "the shipped mnist_unet_cond used 10x --lr (default: --lr)")
    p.add_argument("--checkpoint-every", type=positive_int, default=500, help="steps between checkpoints")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint "
                                                         "(a fresh run where there is none)")
    p.add_argument("--force", action="store_true", help="replace the run already in --out (its files are deleted)")
    p.add_argument("--device", default="cpu", help=DEVICE_HELP)
    p.add_argument("--root", default=None, help=ROOT_HELP)

    p = command("sample", "sample a PNG grid, or a folder of PNG files, from trained weights",
                "Sample with DDIM (--steps, --eta; DDPM is --steps 1000 --eta 1). --out FILE.png writes one grid of "
                "all samples; --out FOLDER (no file extension) writes 00000.png, 00001.png, ... in batches, "
                "resumable, for the FID tools.")
    p.add_argument("--weights", required=True,
                   help="a shipped model (mnist_unet), a run folder of `train`, an ema.pt (ema.json beside it), or, "
                        "for the folder mode, a diffusers folder or a hub id org/name (e.g. google/ddpm-cifar10-32)")
    p.add_argument("--out", default="samples.png", help="a .png file (a grid) or a folder (one PNG per sample)")
    p.add_argument("--n", "--num-samples", type=positive_int, default=64,
                   help="how many samples (under torchrun write --num-samples: torchrun's own parser reads --n as an "
                        "ambiguous abbreviation of its options --nnodes, --nproc-per-node, ... and stops)")
    p.add_argument("--steps", type=steps, default=50, help="sampling steps S, in 1..1000")
    p.add_argument("--eta", type=eta, default=0.0, help='DDIM\'s eta, a number >= 0 (0: DDIM, 1: DDPM), or "sigma_hat"')
    p.add_argument("--kind", choices=KINDS, default="uniform",
                   help="the subsequence of --steps time steps (minddim.sampling.timesteps)")
    p.add_argument("--class", dest="class_", type=class_choice, default=None,
                   help='the class to ask for (0..K-1 of the model\'s K classes), or "all": one grid row per class, --n rounded up to a multiple of K (default: no class, '
                        'the unconditional model)')
    add_guidance_options(p, many=False)
    p.add_argument("--batch", type=positive_int, default=100, help="folder mode: images per batch")
    p.add_argument("--device", default="cpu", help=DEVICE_HELP)
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed")

    p = command("evaluate", "MNIST FID, confidence and sure fraction of an MNIST U-Net's samples",
                "Score N samples per sampler (MNIST FID against the 10,000 test images, the classifier's confidence "
                "and the share it is sure of), beside N real training images (the floor at this N). The figures are "
                "printed and written to --out (default: a run's ema.json; for a shipped model, "
                "NAME_quality.json in the current folder). The shipped model's record is --n 1000 with both "
                "samplers, then evaluate's default (its recorded command has no --samplers; today write --samplers "
                "ddim-50,ddpm-1000; its sampling took 70 s and 1,323 s on a 2-core CPU, as mnist_unet.json records).")
    p.add_argument("--weights", required=True, help="a shipped U-Net (mnist_unet), a run folder of `train`, or an "
                                                    "ema.pt with its ema.json")
    p.add_argument("--n", "--num-samples", type=fid_count, default=1000,
                   help="samples per sampler, >= 2 (under torchrun write --num-samples); below 1000 the FID is biased far "
                        "upwards (notebook 07: 1,000 real digits score about 7, 100 score about 58)")
    p.add_argument("--samplers", type=samplers, default=samplers("ddim-50"),
                   help="comma-separated: ddim-S (eta 0, S steps) or ddpm-S (eta 1), e.g. ddim-50,ddpm-1000 "
                        "(default: ddim-50; ddpm-1000 takes about 19 times as long: mnist_unet.json records 1323 s against 70 s)")
    p.add_argument("--class", dest="class_", type=class_choice, default=None,
                   help='the class to score (0..K-1 of the model\'s K classes), or "all": ceil(--n / K) samples of each of the K classes, each scored as the class asked for (default: no class)')
    add_guidance_options(p, many=True)
    p.add_argument("--out", default=None, help="JSON file for the figures (default: see above)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed (the same x_T for every sampler)")
    p.add_argument("--batch", type=positive_int, default=500, help="images per batch")
    p.add_argument("--device", default="cpu", help=DEVICE_HELP + "; the classifier scores on the CPU")
    p.add_argument("--root", default=None, help=ROOT_HELP)

    p = command("train-classifier", "train the MNIST classifier behind the MNIST FID",
                "Train the small MNIST classifier whose features give the MNIST FID (the shipped one is "
                "minddim/weights/mnist_classifier.pt, made by this command).")
    p.add_argument("--out", default="runs/mnist_classifier.pt",
                   help="the .pt file (a .json is written beside it; default: runs/mnist_classifier.pt, with --noisy "
                        "runs/mnist_noisy_classifier.pt)")
    p.add_argument("--noisy", action="store_true",
                   help="train the noise-aware classifier p(y | x_t, t) for classifier guidance instead: images "
                        "noised by q_sample at t uniform in 1..1000")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--epochs", type=positive_int, default=5, help="passes over the 60,000 training images")
    p.add_argument("--batch-size", type=positive_int, default=128, help="images per step")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam's initial learning rate (cosine decay)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed")
    p.add_argument("--root", default=None, help=ROOT_HELP)

    p = command("train-toy", "train the course's 2-D MLP on a toy set (the shipped eight_gaussians_mlp's recipe)")
    p.add_argument("--data", choices=TOY_SETS, default="eight_gaussians", help="the toy data set")
    p.add_argument("--out", default="runs/eight_gaussians_mlp", help="folder: ema.pt + ema.json, loss.csv")
    p.add_argument("--steps", type=positive_int, default=3000, help="training steps")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed")
    p.add_argument("--force", action="store_true", help="replace the ema.pt already in --out")
    return parser, subs


def main(argv=None) -> int:
    parser, subs = build_parser()
    args = parser.parse_args(argv)
    args.command_line = "python -m minddim " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        check = CHECKS.get(args.command)
        if check is not None:
            check(args)
    except UsageError as e:
        subs[args.command].error(str(e))
    return RUNS[args.command](args)


# -- the checks of each command, before it runs (they may fill in args) -----------------------------------------
def _rank() -> int:
    """This process's rank under torchrun (0 otherwise)."""
    return int(os.environ.get("RANK", "0"))


def _check_train(args):
    check_root(args.root)
    out = check_out_folder(args.out)
    # under torchrun rank 0 alone judges the folder (and writes it): the others could see its first files already
    found = [f for f in RUN_FILES if (out / f).exists()] if _rank() == 0 else []
    if args.resume and args.force:
        raise UsageError("--resume continues the run in --out and --force replaces it: give one of them")
    if found and not (args.resume or args.force):
        raise UsageError(f"--out {args.out} already holds a run ({', '.join(found)}); add --resume to continue it, "
                         f"--force to replace it, or choose another --out")
    _check_classes(args)
    if args.resume and (out / "config.json").is_file() and _rank() == 0:
        from .commands import resume_differences, run_config

        differ = resume_differences(out, run_config(
            args.data, steps=args.steps, batch_size=args.batch_size, lr=args.lr, lr_decay=args.lr_decay,
            precision=args.precision, ema_decay=args.ema_decay, seed=args.seed, base=args.base, mults=args.mults,
            num_res=args.num_res, classes=args.classes, p_uncond=args.p_uncond, init_from=args.init_from,
            label_lr=args.label_lr))
        if differ:
            raise UsageError(f"--resume: the run in {args.out} was started with other settings: {'; '.join(differ)}; "
                             f"give the run's settings, or choose another --out")
    check_device(args.device)


def _check_classes(args):
    """train's --classes, --p-uncond and --init-from; fills in the architecture (--init-from's, else the defaults)
    and --p-uncond (0.1 with --classes)."""
    if args.classes is None:
        for option, value in (("--p-uncond", args.p_uncond), ("--init-from", args.init_from),
                              ("--label-lr", args.label_lr)):
            if value is not None:
                raise UsageError(f"{option} is for a class-conditional run: give --classes too (e.g. --classes 10)")
        args.p_uncond = 0.0
    elif args.p_uncond is None:
        args.p_uncond = 0.1
    if args.init_from is not None:
        args.init_from, _ = resolve_weights(args.init_from, diffusers=False, option="--init-from")
        cfg = weights_model_config(args.init_from)
        if cfg.get("num_classes") is not None:
            raise UsageError(f"--init-from {args.init_from} is already class-conditional; --init-from takes an "
                             f"unconditional U-Net (continue a conditional run with --resume)")
        channels = 1 if args.data == "mnist" else 3
        if cfg.get("channels", channels) != channels:
            raise UsageError(f"--init-from {args.init_from} has {cfg['channels']} channel(s); --data {args.data} "
                             f"has {channels}")
        for option, key in (("--base", "base"), ("--mults", "mults"), ("--num-res", "num_res")):
            given = getattr(args, key)
            mine = cfg.get(key)
            if given is not None and mine is not None and (list(given) if key == "mults" else given) != mine:
                shown = ",".join(map(str, mine)) if key == "mults" else mine
                raise UsageError(f"{option} {','.join(map(str, given)) if key == 'mults' else given}: --init-from "
                                 f"{args.init_from} has {option} {shown}; leave {option} out to take it")
            if given is None and mine is not None:
                setattr(args, key, tuple(mine) if key == "mults" else mine)
    if args.base is None:
        args.base = 32
    if args.mults is None:
        args.mults = (1, 2, 2)
    if args.num_res is None:
        args.num_res = 1


def _check_guidance(args, diffusers: bool = False):
    """--class, --guidance, --classifier-guidance and --classifier of sample and evaluate against the model's classes
    (its JSON, read without torch). Sets args.num_classes (None: no class asked for)."""
    guided = args.guidance is not None or args.classifier_guidance is not None
    args.num_classes = None
    if args.classifier is not None and args.classifier_guidance is None:
        raise UsageError("--classifier is the noise-aware classifier of --classifier-guidance: give "
                         "--classifier-guidance S too")
    if args.class_ is None:
        if guided:
            which = "--guidance" if args.guidance is not None else "--classifier-guidance"
            raise UsageError(f'{which} needs --class (a class 0..K-1, or "all")')
        return
    if diffusers:
        raise UsageError("--class: a diffusers checkpoint is unconditional here; give a class-conditional U-Net "
                         "(python -m minddim train --classes 10)")
    K = weights_model_config(args.weights).get("num_classes")
    if args.guidance is not None and K is None:
        raise UsageError(f"--guidance: --weights {args.weights} is an unconditional model (trained without "
                         f"--classes); classifier-free guidance needs a class-conditional one, or use "
                         f"--classifier-guidance S --classifier FILE")
    if args.classifier_guidance is not None:
        if args.classifier is None:
            raise UsageError("--classifier-guidance needs --classifier, a noise-aware classifier's .pt "
                             "(python -m minddim train-classifier --noisy)")
        K_clf = check_noisy_classifier(args.classifier)
        if K is not None and K != K_clf:
            raise UsageError(f"--classifier {args.classifier} has {K_clf} classes, --weights {args.weights} {K}")
        K = K_clf
    if K is None:
        raise UsageError(f"--class: --weights {args.weights} is an unconditional model (trained without --classes); "
                         f"ask for a class with a class-conditional one, or with --classifier-guidance S "
                         f"--classifier FILE")
    if args.class_ != "all" and args.class_ >= K:
        raise UsageError(f'--class must be a class in 0..{K - 1} or "all" (the model has {K} classes), '
                         f"got {args.class_}")
    args.num_classes = K


def _check_sample(args):
    args.weights, args.took = resolve_weights(args.weights)
    args.grid = args.out.lower().endswith(".png")
    if args.grid:
        check_out_file(args.out, ".png")
        from .hub import is_diffusers

        if is_diffusers(args.weights):
            raise UsageError("--out: a diffusers checkpoint is sampled into a folder of PNG files; give --out a folder "
                             "(a path without .png)")
    else:
        try:
            check_out_folder(args.out)
        except UsageError:
            raise UsageError(f"--out must be a .png file (one grid of all samples) or a folder (a path without a file "
                             f"extension: one PNG file per sample), got {args.out}") from None
    _check_guidance(args, diffusers="diffusers" in args.took or "model hub" in args.took)
    if args.class_ is not None and not args.grid:
        raise UsageError("--class: guided sampling writes a grid (--out FILE.png); the folder mode samples "
                         "unconditionally")
    check_device(args.device)


def _check_evaluate(args):
    check_root(args.root)
    args.weights, args.took = resolve_weights(args.weights, diffusers=False)
    if args.out is not None:
        check_out_file(args.out, ".json")
    weights = Path(args.weights)
    meta = weights.with_suffix(".json") if weights.suffix == ".pt" else None
    if meta is not None and json.loads(meta.read_text()).get("model", {}).get("channels", 1) != 1:
        raise UsageError(f"--weights {args.weights} is not an MNIST (1-channel) U-Net; evaluate scores MNIST digits")
    _check_guidance(args)
    check_device(args.device)


def _check_classifier(args):
    check_root(args.root)
    if args.noisy and args.out == "runs/mnist_classifier.pt":          # the default: the noisy one's own
        args.out = "runs/mnist_noisy_classifier.pt"
    check_out_file(args.out, ".pt", force=args.force)


def _check_toy(args):
    out = check_out_folder(args.out)
    if (out / "ema.pt").exists() and not args.force:
        raise UsageError(f"--out {args.out}/ema.pt exists; choose another --out, or add --force to replace it")


def _check_exercises(args):
    if not Path(args.solutions).is_dir():
        raise UsageError(f"--solutions {args.solutions}: no such folder")
    check_out_folder(args.out)


def _check_grade(args):
    for path in args.paths:
        if not Path(path).exists():
            raise UsageError(f"{path}: no such file")
        if Path(path).is_dir():
            raise UsageError(f"{path} is a folder; give the notebooks (.ipynb) to grade")
    if args.solutions is not None and not Path(args.solutions).is_dir():
        raise UsageError(f"--solutions {args.solutions}: no such folder")


CHECKS = {"train": _check_train, "sample": _check_sample, "evaluate": _check_evaluate, "train-toy": _check_toy,
          "train-classifier": _check_classifier, "exercises": _check_exercises, "grade": _check_grade}


# -- what each command runs --------------------------------------------------------------------------------------
def _report(*a, **k):
    """Print, on rank 0 only: under torchrun every process runs the command, rank 0 alone says what was written."""
    if _rank() == 0:
        print(*a, **k)


def _run_train(args) -> int:
    from .commands import train_images

    if args.force and _rank() == 0:
        for name in RUN_FILES:
            (Path(args.out) / name).unlink(missing_ok=True)
    train_images(args.data, args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                 ema_decay=args.ema_decay, seed=args.seed, base=args.base, mults=args.mults, num_res=args.num_res,
                 checkpoint_every=args.checkpoint_every, resume=args.resume, root=args.root, device=args.device,
                 lr_decay=args.lr_decay, precision=args.precision, command=args.command_line, classes=args.classes,
                 p_uncond=args.p_uncond or 0.0, init_from=args.init_from, label_lr=args.label_lr)
    _report(f"wrote {args.out}/ema.pt and {args.out}/ema.json")
    return 0


def _run_sample(args) -> int:
    _report(f"weights: {args.took}", file=sys.stderr)
    if "model hub" in args.took:                          # fetched before anything is written: offline, one line
        from .hub import local_folder

        try:
            args.weights = str(local_folder(args.weights))
        except ValueError as e:
            why = type(e.__cause__).__name__ if e.__cause__ is not None else "error"
            print(f"python -m minddim sample: error: --weights {args.weights}: fetching it from the Hugging Face hub "
                  f"failed ({why}); where there is no network, download it elsewhere (hf download {args.weights} "
                  f"--local-dir FOLDER) and give --weights FOLDER", file=sys.stderr)
            return 1
    if not args.grid:
        from .distributed import launched_as, process_device
        from .sample_folder import sample_folder

        rank, world, _ = launched_as()                   # under torchrun: this process's batches, on its GPU
        written = sample_folder(args.weights, args.out, n=args.n, batch=args.batch, steps=args.steps, eta=args.eta,
                                seed=args.seed, kind=args.kind, device=process_device(args.device), rank=rank,
                                world=world)
        print(f"wrote {len(written)} PNG files to {args.out}" + (" (the others were there already)" if world == 1 else
                                                                 f" (process {rank} of {world}; the others write the rest)"))
        return 0
    from .commands import sample_images

    sample_images(args.weights, args.out, n=args.n, steps=args.steps, eta=args.eta, seed=args.seed, kind=args.kind,
                  device=args.device, classes=args.class_, guidance=args.guidance, classifier=args.classifier,
                  classifier_guidance=args.classifier_guidance)
    _report(f"wrote {args.out}")
    return 0


def _run_evaluate(args) -> int:
    from .weights import AVAILABLE

    shipped = args.weights in AVAILABLE and not Path(args.weights).exists()
    out = args.out or (f"{args.weights}_quality.json" if shipped else None)
    _report(f"weights: {args.took}", file=sys.stderr)
    if args.n < 1000:
        _report(f"warning: --n {args.n} is too few samples for an MNIST FID to mean much (the record uses 1000): "
                f"compare with real_train_images, the FID of {args.n} real digits", file=sys.stderr)
    from .commands import evaluate_unet

    quality = evaluate_unet(args.weights, n=args.n, seed=args.seed, batch=args.batch, root=args.root,
                            device=args.device, samplers=args.samplers, out=out, command=args.command_line,
                            classes=args.class_, guidance=args.guidance, classifier=args.classifier,
                            classifier_guidance=args.classifier_guidance)
    _report(json.dumps(quality, indent=2))
    where = out or str(Path(args.weights).with_suffix(".json"))
    _report(f"wrote {where}" + ("" if out else " (its \"quality\" entry)"), file=sys.stderr)
    return 0


def _run_classifier(args) -> int:
    if args.noisy:
        from .commands import train_noisy_classifier

        _, acc = train_noisy_classifier(args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                        seed=args.seed, root=args.root, command=args.command_line)
        print(f"wrote {args.out}: test accuracy over t uniform in 1..1000 {acc:.4f}")
        return 0
    from .commands import train_classifier

    _, acc = train_classifier(args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                              root=args.root, command=args.command_line)
    print(f"wrote {args.out}: test accuracy {acc:.4f}")
    return 0


def _run_toy(args) -> int:
    from .commands import train_toy_model

    train_toy_model(args.out, args.data, steps=args.steps, seed=args.seed, command=args.command_line)
    print(f"wrote {args.out}/ema.pt, {args.out}/ema.json and {args.out}/loss.csv")
    return 0


def _run_exercises(args) -> int:
    from .grading.generator import make_exercises

    written, kept = make_exercises(args.solutions, args.out, force=args.force)
    for path in written:
        print(f"wrote {path}")
    for path, why in kept:
        print(f"kept {path}: {why}", file=sys.stderr)
    if kept:
        print(f"{len(kept)} exercise(s) kept as they are; `python -m minddim exercises --force` replaces them "
              f"(their answers are lost: copy them elsewhere first)", file=sys.stderr)
    return 1 if kept else 0


def _run_grade(args) -> int:
    from .grading import format_report, grade_notebook

    reports = [grade_notebook(p, args.solutions, args.timeout) for p in args.paths]
    print(json.dumps(reports, indent=2) if args.json else format_report(reports))
    return 1 if any(r["assignment"] is None for r in reports) else 0


RUNS = {"train": _run_train, "sample": _run_sample, "evaluate": _run_evaluate, "train-classifier": _run_classifier,
        "train-toy": _run_toy, "exercises": _run_exercises, "grade": _run_grade}


if __name__ == "__main__":
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from .distributed import entry_point     # under torchrun: a failure is recorded with its rank for the launcher

        sys.exit(entry_point(main)())
    sys.exit(main())
