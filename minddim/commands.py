"""The commands around the training loop, what ``python -m minddim train | sample | evaluate | train-classifier``
run: a U-Net trained on MNIST or CIFAR-10 into a run folder, its EMA weights loaded back, sampled to a PNG grid and
scored, and the MNIST classifier behind the MNIST FID. The loop itself is :mod:`minddim.train`."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ._io import atomic_path
from .schedules import Schedule
from .train import TrainResult, _save_atomic, _write_csv, train


DATASETS = ("mnist", "cifar10")


def train_images(data: str = "mnist", out="runs/mnist", *, steps: int = 20_000, batch_size: int = 64,
                 lr: float = 2e-4, ema_decay: float = 0.9995, seed: int = 0, base: int | None = None, mults=None,
                 num_res: int | None = None, checkpoint_every: int = 500, resume: bool = False, root=None,
                 progress: bool = True, command: str | None = None, device: str = "cpu",
                 lr_decay: str = "constant", precision: str = "fp32", classes: int | None = None,
                 p_uncond: float = 0.0, init_from=None, label_lr: float | None = None) -> TrainResult:
    """Train a :class:`~minddim.models.UNet` on MNIST or CIFAR-10 with L_simple and the linear schedule
    (T = 1000): what ``python -m minddim train`` runs. ``out`` receives ``config.json``, ``checkpoint.pt``
    (every ``checkpoint_every`` steps, atomically), ``loss.csv`` and, at the end, the EMA weights
    ``ema.pt`` (a state_dict) with ``ema.json`` (command, steps, wall-clock of each session, machine).

    Under torchrun (``torchrun --nproc_per_node=N -m minddim train ...``) the N processes train one model with
    DistributedDataParallel on the global batch ``batch_size`` (:func:`minddim.train.train`); rank 0 writes
    every file, and ``ema.json`` records the world size and the launch command. ``device="cuda"`` gives each
    process the GPU of its local rank.

    Classes (:mod:`minddim.guidance`): ``classes=K`` trains ``UNet(..., num_classes=K)`` on the images with their
    labels (MNIST's digits, CIFAR-10's classes: K = 10), each label dropped to the null label K with probability
    ``p_uncond`` (Ho & Salimans 2022, sec. 4.2, train 0.1, 0.2 and 0.5; 0.5 does worse), so one network is both
    the conditional and the unconditional model that classifier-free guidance combines. ``init_from`` (a shipped U-Net such as ``"mnist_unet"``, a run
    folder or an ``ema.pt`` with its ``ema.json``) starts from an unconditional model's weights with the class
    embedding at zero (:meth:`~minddim.models.UNet.load_unconditional_state_dict`): at step 0 the network predicts
    exactly what the unconditional one did, for every label, and training fine-tunes it. The architecture is then
    the checkpoint's (``base``, ``mults`` and ``num_res`` must be its own or None; without ``init_from``, None is
    32, (1, 2, 2) and 1). ``label_lr`` sets the class embedding's own learning rate (:func:`minddim.train.train`).
    ``config.json`` and ``ema.json`` record ``classes``, ``p_uncond``, ``init_from`` and ``label_lr``."""
    from .distributed import process_group

    with process_group(device) as device:
        return _train_images(data, out, steps=steps, batch_size=batch_size, lr=lr, ema_decay=ema_decay, seed=seed,
                             base=base, mults=mults, num_res=num_res, checkpoint_every=checkpoint_every,
                             resume=resume, root=root, progress=progress, command=command, device=device,
                             lr_decay=lr_decay, precision=precision, classes=classes, p_uncond=p_uncond,
                             init_from=init_from, label_lr=label_lr)


def unconditional_start(init_from, data: str = "mnist", base=None, mults=None, num_res=None):
    """The unconditional U-Net that ``init_from`` names (:func:`load_unet`) and its architecture as
    ``(model, base, mults, num_res)``, after checking that it is unconditional, has ``data``'s channels, and
    that ``base``, ``mults`` and ``num_res`` (None: the checkpoint's) are its own."""
    model = load_unet(init_from)
    if model.num_classes is not None:
        raise ValueError(f"init_from: {init_from} is already class-conditional ({model.num_classes} classes); "
                         f"init_from takes an unconditional U-Net (continue a conditional run with resume)")
    cfg = model.config
    channels = 1 if data == "mnist" else 3
    if cfg["channels"] != channels:
        raise ValueError(f"init_from: {init_from} has {cfg['channels']} channel(s), {data} has {channels}")
    given = {"base": base, "mults": None if mults is None else list(mults), "num_res": num_res}
    differ = [f"{k} {v} (the checkpoint's: {cfg[k]})" for k, v in given.items() if v is not None and v != cfg[k]]
    if differ:
        raise ValueError(f"init_from: {init_from} is a U-Net of another architecture: {'; '.join(differ)}; "
                         f"leave base, mults and num_res out to take the checkpoint's")
    return model, cfg["base"], tuple(cfg["mults"]), cfg["num_res"]


def _train_images(data, out, *, steps, batch_size, lr, ema_decay, seed, base, mults, num_res, checkpoint_every,
                  resume, root, progress, command, device, lr_decay, precision, classes=None, p_uncond=0.0,
                  init_from=None, label_lr=None) -> TrainResult:
    import json
    import time

    from .data import load_cifar10, load_mnist, to_model_range
    from .distributed import is_writer, launch_command, world
    from .models import UNet

    out = Path(out)
    start = None
    if init_from is not None:
        if classes is None:
            raise ValueError("init_from: starting from an unconditional checkpoint is for a class-conditional run; "
                             "give classes too")
        start, base, mults, num_res = unconditional_start(init_from, data, base, mults, num_res)
    base, mults, num_res = (32 if base is None else base), ((1, 2, 2) if mults is None else mults), (
        1 if num_res is None else num_res)
    config = run_config(data, steps=steps, batch_size=batch_size, lr=lr, lr_decay=lr_decay, precision=precision,
                        ema_decay=ema_decay, seed=seed, base=base, mults=mults, num_res=num_res, classes=classes,
                        p_uncond=p_uncond, init_from=init_from, label_lr=label_lr)
    config_path = out / "config.json"
    sessions = []
    if resume and config_path.exists():
        differ = resume_differences(out, config)
        if differ:
            raise ValueError(f"resume: the run in {out} was started with other settings: {'; '.join(differ)}")
        sessions = json.loads(config_path.read_text()).get("sessions", [])
    images, labels = (load_mnist if data == "mnist" else load_cifar10)("train", root=root)
    x = to_model_range(images)
    writer = is_writer()
    if writer:
        _write_json(config_path, {**config, "sessions": sessions})
    torch.manual_seed(seed)
    model = UNet(**{k: v for k, v in config["model"].items()})
    if start is not None:
        model.load_unconditional_state_dict(start.state_dict())
    started = time.time()
    result = train(model, x, Schedule.linear(), steps=steps, batch_size=batch_size, lr=lr, ema_decay=ema_decay,
                   seed=seed, progress=progress and writer, checkpoint=out / "checkpoint.pt",
                   checkpoint_every=checkpoint_every, resume=resume, log_csv=out / "loss.csv", device=device,
                   lr_decay=lr_decay, precision=precision, labels=None if classes is None else labels.long(),
                   p_uncond=p_uncond if classes is not None else 0.0, label_lr=label_lr)
    if not writer:
        return result
    sessions.append({"seconds": round(time.time() - started, 1), "finished_step": steps, "world_size": world().size})
    _write_json(out / "config.json", {**config, "sessions": sessions})
    _save_atomic({k: v.cpu() for k, v in result.ema.state_dict().items()}, out / "ema.pt")
    _write_json(out / "ema.json", {
        "command": launch_command(command or f"python -m minddim train --data {data} --out {out} --steps {steps} "
                              f"--batch-size {batch_size} --lr {lr} --lr-decay {lr_decay} --precision {precision} "
                              f"--ema-decay {ema_decay} --seed {seed} --base {base} "
                              f"--mults {','.join(map(str, mults))} --num-res {num_res}" + (
                              "" if classes is None else f" --classes {classes} --p-uncond {p_uncond}") + (
                              "" if init_from is None else f" --init-from {init_from}") + (
                              "" if label_lr is None else f" --label-lr {label_lr}")),
        "world_size": world().size, **_class_settings(config),
        "steps": steps, "wall_clock_seconds": round(sum(s["seconds"] for s in sessions), 1), "sessions": sessions,
        "machine": machine(device),
        "model": config["model"], "schedule": config["schedule"], "final_loss_mean_100": round(
            sum(result.losses[-100:]) / len(result.losses[-100:]), 5)})
    return result


# the settings of a run (config.json) that a resumed run must repeat, each with the option that sets it
RESUMED_SETTINGS = {"data": "--data", "batch_size": "--batch-size", "lr": "--lr", "lr_decay": "--lr-decay",
                    "precision": "--precision", "ema_decay": "--ema-decay", "seed": "--seed", "base": "--base",
                    "mults": "--mults", "num_res": "--num-res", "classes": "--classes", "p_uncond": "--p-uncond",
                    "init_from": "--init-from", "label_lr": "--label-lr"}


def _class_settings(config: dict) -> dict:
    """A class-conditional run's ``classes``, ``p_uncond``, ``init_from`` and ``label_lr`` (nothing for an
    unconditional one; ``label_lr`` only where it was set)."""
    keys = ("classes", "p_uncond", "init_from") + (("label_lr",) if config.get("label_lr") is not None else ())
    return {k: config[k] for k in keys if config.get("classes") is not None}


def run_config(data: str = "mnist", *, steps: int = 20_000, batch_size: int = 64, lr: float = 2e-4,
               lr_decay: str = "constant", precision: str = "fp32", ema_decay: float = 0.9995, seed: int = 0,
               base: int = 32, mults=(1, 2, 2), num_res: int = 1, classes: int | None = None,
               p_uncond: float = 0.0, init_from=None, label_lr: float | None = None) -> dict:
    """The ``config.json`` of a run of :func:`train_images` (without its sessions). A class-conditional run
    (``classes`` = K) has ``classes``, ``p_uncond`` and ``init_from`` (a str or None), ``label_lr`` where it is set,
    and ``num_classes`` in its model; an unconditional one has none of them (its config is as before classes existed)."""
    if data not in DATASETS:
        raise ValueError(f"data must be one of {DATASETS}, got {data!r}")
    if classes is not None and (isinstance(classes, bool) or not isinstance(classes, int) or classes < 1):
        raise ValueError(f"classes must be an int >= 1 (or None: unconditional), got {classes!r}")
    if isinstance(p_uncond, bool) or not isinstance(p_uncond, (int, float)) or not 0 <= p_uncond <= 1:
        raise ValueError(f"p_uncond must be a number in [0, 1], got {p_uncond!r}")
    if classes is None and (p_uncond or init_from is not None or label_lr is not None):
        raise ValueError("p_uncond, init_from and label_lr are for a class-conditional run: give classes too")
    model = {"channels": 1 if data == "mnist" else 3, "base": base, "mults": list(mults), "num_res": num_res}
    config = {"data": data, "steps": steps, "batch_size": batch_size, "lr": lr, "lr_decay": lr_decay,
              "precision": precision, "ema_decay": ema_decay, "seed": seed, "model": model,
              "schedule": {"kind": "linear", "T": 1000}}
    if classes is not None:
        model["num_classes"] = classes
        config.update(classes=classes, p_uncond=float(p_uncond), init_from=None if init_from is None else str(init_from))
        if label_lr is not None:
            config["label_lr"] = float(label_lr)
    return config


def resume_differences(out, config: dict) -> list[str]:
    """Each setting of ``config`` (:func:`run_config`) that differs from the run in ``out`` (its ``config.json``;
    the number of steps may grow), as ``--lr 0.0005 (given: 0.0002)``: the run's value, then the one given.
    Empty when the run may be resumed with ``config``."""
    import json

    stored = json.loads((Path(out) / "config.json").read_text())
    # runs from before --lr-decay and --precision; unconditional runs have no class settings
    unset = {"lr_decay": "constant", "precision": "fp32", "classes": None, "p_uncond": 0.0, "init_from": None,
             "label_lr": None}
    stored, config = {**unset, **stored}, {**unset, **config}

    def settings(c):
        return {**{k: c.get(k) for k in RESUMED_SETTINGS if k in c}, **c.get("model", {})}

    def shown(v):
        return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)

    old, new = settings(stored), settings(config)
    return [f"{option} {shown(old.get(key))} (given: {shown(new.get(key))})"
            for key, option in RESUMED_SETTINGS.items() if old.get(key) != new.get(key)]


def machine(device: str | torch.device = "cpu") -> dict:
    """What a recorded figure was measured on: platform, processor, cores, torch version and threads, Python,
    and the accelerator's name when ``device`` is one (e.g. ``"cuda"``)."""
    import platform

    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version()}
    if torch.device(device).type == "cuda":
        info["device"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _write_json(path, obj) -> None:
    import json

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2))


def load_unet(weights) -> torch.nn.Module:
    """A U-Net from ``ema.pt`` (state_dict, loaded with weights_only=True) and the ``ema.json`` beside it, a run
    folder of ``train`` (its ``ema.pt``), or the shipped model of that name (``"mnist_unet"``)."""
    import json

    from .models import UNet
    from .weights import AVAILABLE, pretrained

    unets = sorted(name for name, kind in AVAILABLE.items() if kind == "UNet")
    if isinstance(weights, str) and weights in unets and not Path(weights).exists():
        return pretrained(weights)
    weights = Path(weights)
    if weights.is_dir() and (weights / "ema.pt").is_file():        # a run folder of `train`
        weights = weights / "ema.pt"
    if not weights.is_file() or not weights.with_suffix(".json").is_file():
        raise ValueError(f"weights must be a state_dict .pt file with its .json beside it (as `train` writes), "
                         f"or one of {unets}; got {str(weights)!r}")
    meta = json.loads(weights.with_suffix(".json").read_text())
    model = UNet(**meta["model"])
    model.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"))
    return model.eval()


def guided_model(model, y: int, *, guidance=None, classifier=None, classifier_guidance=None, schedule=None):
    """The eps-model ``(x_t, t)`` that samples class ``y`` from ``model`` (:mod:`minddim.guidance`): for a
    class-conditional model, classifier-free guidance at ``guidance`` = w (None or 0: the plain conditional model,
    one network evaluation per step; w != 0: two, batched); then, with ``classifier`` (a noise-aware
    ``classifier(x_t, t) -> logits``), classifier guidance at scale ``classifier_guidance`` on top (on an
    unconditional model, classifier guidance alone)."""
    from .guidance import classifier_free, classifier_guidance as guide, is_conditional

    schedule = Schedule.linear() if schedule is None else schedule
    if is_conditional(model):
        eps = (classifier_free(model, y, guidance) if guidance else (lambda x_t, t: model(x_t, t, y)))
    elif guidance is not None:
        raise ValueError("guidance: the model is unconditional (no num_classes); classifier-free guidance needs a "
                         "class-conditional model")
    else:
        eps = model
    if classifier is not None:
        eps = guide(eps, classifier, y, 1.0 if classifier_guidance is None else classifier_guidance, schedule)
    elif not is_conditional(model):
        raise ValueError("classifier: asking an unconditional model for a class needs a noise-aware classifier")
    return eps


def class_rows(classes, n: int, num_classes: int) -> list:
    """The classes to draw and how many of each: ``classes`` an int (``n`` of it) or ``"all"`` (ceil(n / K) of
    each of the K classes, in order)."""
    if classes == "all":
        per = -(-n // num_classes)
        return [(c, per) for c in range(num_classes)]
    c = int(classes)
    if not 0 <= c < num_classes:
        raise ValueError(f"classes must be a class in 0..{num_classes - 1} or 'all', got {classes!r}")
    return [(c, n)]


def sample_images(weights, out="samples.png", *, n: int = 64, steps: int = 50, eta=0.0, seed: int = 0,
                  kind: str = "uniform", progress: bool = True, device="cpu", classes=None, guidance=None,
                  classifier=None, classifier_guidance=None) -> torch.Tensor:
    """Sample ``n`` images from trained weights with DDIM (``steps``, ``eta``; DDPM is steps=1000, eta=1)
    and write them to ``out`` as a PNG grid; returns the images in [-1, 1] (on the CPU). What ``python -m
    minddim sample`` runs. Under torchrun the processes share the batch by rows
    (:func:`minddim.distributed.sample_across`: the same x_T and noise, the network on 1/N of the rows each)
    and rank 0 writes the grid of all of them. ``device`` (``"cuda"``: each process's GPU) holds the network,
    x_T and the generator of the noise: a GPU's generator draws other numbers than the CPU's, so the images
    depend on the device type and, up to floating-point rounding (at most one pixel level in
    ``tests/test_distributed.py``), not on the number of processes.

    Classes: ``classes`` (an int, or ``"all"``: one grid row per class, ceil(n / K) images each) samples the
    class-conditional model at that class, with classifier-free guidance ``guidance`` = w (diffusers'
    guidance_scale = 1 + w) and/or classifier guidance at scale ``classifier_guidance`` with the noise-aware
    ``classifier`` (a path or a shipped name: :func:`load_noisy_classifier`) (:func:`guided_model`). The classes
    are drawn one after another from the one generator."""
    from .distributed import is_writer, process_group, sample_across
    from .plotting import save_image_grid
    from .sampling import timesteps

    schedule = Schedule.linear()
    with process_group(device) as device:
        model = load_unet(weights).to(device)
        size = 28 if model.config["channels"] == 1 else 32
        g = torch.Generator(device=device).manual_seed(seed)
        tau = timesteps(schedule.T, steps, kind)
        shape = (model.config["channels"], size, size)
        if classes is None:
            x_T = torch.randn(n, *shape, generator=g, device=device)
            x = sample_across(model, x_T, schedule, tau, eta, generator=g, progress=progress and is_writer(),
                              clip_x0=1.0).cpu()
            nrow = None
        else:
            clf = None if classifier is None else load_noisy_classifier(classifier).to(device)
            K = model.num_classes or clf.num_classes
            rows = class_rows(classes, n, K)
            parts = []
            for c, count in rows:
                eps = guided_model(model, c, guidance=guidance, classifier=clf,
                                   classifier_guidance=classifier_guidance, schedule=schedule)
                x_T = torch.randn(count, *shape, generator=g, device=device)
                parts.append(sample_across(eps, x_T, schedule, tau, eta, generator=g,
                                           progress=progress and is_writer(), clip_x0=1.0).cpu())
            x = torch.cat(parts)
            nrow = rows[0][1] if classes == "all" else None
        if is_writer():
            save_image_grid(x, out, nrow)
    return x


def train_toy_model(out="runs/eight_gaussians_mlp", data: str = "eight_gaussians", *, steps: int = 3000,
                    seed: int = 0, progress: bool = True, command: str | None = None) -> TrainResult:
    """Train the course's 2-D :class:`~minddim.models.MLP` with :func:`minddim.train.train_toy` (notebook 03's
    recipe) and write ``out/ema.pt`` (the EMA weights, a state_dict), ``out/ema.json`` (the command, data, recipe,
    steps, seed, wall-clock, machine, model, schedule, the mean of the last 100 losses and, for the Gaussian-mixture
    sets, the quality against the exact model) and ``out/loss.csv``. What
    ``python -m minddim train-toy`` runs; the shipped ``eight_gaussians_mlp`` was made this way (README)."""
    import time

    from .data import TOY_SETS
    from .train import train_toy

    if data not in TOY_SETS:
        raise ValueError(f"data must be one of {TOY_SETS}, got {data!r}")
    out = Path(out)
    started = time.time()
    result = train_toy(data, steps=steps, seed=seed, progress=progress)
    seconds = time.time() - started
    out.mkdir(parents=True, exist_ok=True)
    _save_atomic(result.ema.state_dict(), out / "ema.pt")
    _write_csv(result.losses, out / "loss.csv")
    _write_json(out / "ema.json", {
        "command": command or f"python -m minddim train-toy --data {data} --out {out} --steps {steps} --seed {seed}",
        "data": data, "steps": steps, "seed": seed, "wall_clock_seconds": round(seconds, 1), "machine": machine(),
        "model": {}, "schedule": {"kind": "linear", "T": 1000},
        "recipe": "minddim.train_toy: 100k points, batch 512, Adam lr 3e-3, EMA decay 0.995, L_simple",
        "final_loss_mean_100": round(sum(result.losses[-100:]) / len(result.losses[-100:]), 5),
        **({"quality": toy_quality(result.ema, data)} if data in ("eight_gaussians", "gaussian") else {})})
    return result


def toy_quality(model: torch.nn.Module, data: str = "eight_gaussians", *, n: int = 20_000, seed: int = 123) -> dict:
    """L_simple of ``model`` and of the exact denoiser (:class:`~minddim.analytic.GaussianMixtureDenoiser`, the
    loss floor) on the same ``n`` draws of (x_0, t, eps) from ``seed``, and their ratio: how close a toy model came
    to the Bayes-optimal one. Recorded by ``train-toy`` for the toy sets that are exact mixtures."""
    from .analytic import GaussianMixtureDenoiser
    from .data import toy_mixture
    from .losses import epsilon_loss

    schedule = Schedule.linear()
    exact = GaussianMixtureDenoiser(*toy_mixture(data), schedule)
    g = torch.Generator().manual_seed(seed)
    x0 = exact.sample_data(n, g)
    t = torch.randint(1, schedule.T + 1, (n,), generator=g)
    noise = torch.randn(n, exact.dim, generator=g)
    with torch.no_grad():
        floor = epsilon_loss(exact, x0, schedule, t=t, noise=noise).item()
        learned = epsilon_loss(model, x0, schedule, t=t, noise=noise).item()
    return {"draws": n, "seed": seed, "l_simple": round(learned, 5), "exact_floor": round(floor, 5),
            "ratio_to_floor": round(learned / floor, 4)}


def train_classifier(out="runs/mnist_classifier.pt", *, epochs: int = 5, batch_size: int = 128,
                     lr: float = 1e-3, seed: int = 0, root=None, progress: bool = True, command: str | None = None):
    """Train the MNIST :class:`~minddim.models.Classifier` (Adam with a cosine learning-rate decay,
    cross-entropy, the 60k training images in [-1, 1]), measure its test accuracy and write ``out`` (state_dict) with a JSON beside it. What
    ``python -m minddim train-classifier`` runs. Returns (model, test accuracy)."""
    import time

    from .data import load_mnist, to_model_range
    from .models import Classifier

    x, y = load_mnist("train", root=root)
    xt, yt = load_mnist("test", root=root)
    x, xt = to_model_range(x), to_model_range(xt)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * -(-len(x) // batch_size))
    started = time.time()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=g)
        batches = range(0, len(x), batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc=f"classifier epoch {epoch + 1}/{epochs}", leave=False)
        model.train()
        for i in batches:
            idx = order[i:i + batch_size]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            decay.step()
    seconds = time.time() - started
    model.eval()
    with torch.no_grad():
        accuracy = float(torch.cat([model(xt[i:i + 1000]).argmax(1) for i in range(0, len(xt), 1000)]).eq(yt)
                         .float().mean())
    out = Path(out)
    _save_atomic(model.state_dict(), out)
    _write_json(out.with_suffix(".json"), {
        "command": command or f"python -m minddim train-classifier --out {out} --epochs {epochs} "
                              f"--batch-size {batch_size} --lr {lr} --seed {seed}",
        "epochs": epochs, "steps": epochs * -(-len(x) // batch_size), "wall_clock_seconds": round(seconds, 1),
        "machine": machine(),
        "model": {}, "test_accuracy": round(accuracy, 4)})
    return model, accuracy


def train_noisy_classifier(out="runs/mnist_noisy_classifier.pt", *, epochs: int = 5, batch_size: int = 128,
                           lr: float = 1e-3, seed: int = 0, base: int = 32, root=None, progress: bool = True,
                           command: str | None = None, max_steps: int | None = None, eval_n: int | None = None):
    """Train the noise-aware MNIST :class:`~minddim.models.NoisyClassifier` for classifier guidance (Dhariwal &
    Nichol 2021, sec. 4): each minibatch of training images (in [-1, 1]) is noised by :func:`minddim.q_sample`
    at t ~ Uniform{1..T} with the course's linear schedule (T = 1000), and the classifier learns p(y | x_t, t) by
    cross-entropy; Adam with a cosine decay. What ``python -m minddim train-classifier --noisy`` runs. Writes
    ``out`` (state_dict) and a JSON beside it (command, steps, wall-clock, machine, ``"kind": "NoisyClassifier"``,
    its ``model`` config, and the test accuracy on noised test images at t = 1, 250, 500, 750, 1000 and over
    t uniform). ``max_steps`` stops early and ``eval_n`` scores only the first test images (to time a few steps, or
    in a test). Returns (model, accuracy over t uniform)."""
    import time

    from .data import load_mnist, to_model_range
    from .diffusion import q_sample
    from .models import NoisyClassifier

    schedule = Schedule.linear()
    x, y = load_mnist("train", root=root)
    xt, yt = load_mnist("test", root=root)
    x, xt = to_model_range(x), to_model_range(xt)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = NoisyClassifier(base=base)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    per_epoch = -(-len(x) // batch_size)
    total = epochs * per_epoch if max_steps is None else min(max_steps, epochs * per_epoch)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    started, done = time.time(), 0
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=g)
        batches = range(0, len(x), batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc=f"noisy classifier epoch {epoch + 1}/{epochs}", leave=False)
        for i in batches:
            if done == total:
                break
            idx = order[i:i + batch_size]
            t = torch.randint(1, schedule.T + 1, (len(idx),), generator=g)
            x_t = q_sample(x[idx], t, schedule, torch.randn(x[idx].shape, generator=g))
            loss = torch.nn.functional.cross_entropy(model(x_t, t), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            decay.step()
            done += 1
    seconds = time.time() - started
    model.eval()
    accuracy = noisy_accuracy(model, xt[:eval_n], yt[:eval_n], schedule, seed=seed)
    out = Path(out)
    _save_atomic(model.state_dict(), out)
    _write_json(out.with_suffix(".json"), {
        "command": command or f"python -m minddim train-classifier --noisy --out {out} --epochs {epochs} "
                              f"--batch-size {batch_size} --lr {lr} --seed {seed}",
        "kind": "NoisyClassifier", "epochs": epochs, "steps": done, "wall_clock_seconds": round(seconds, 1),
        "machine": machine(), "model": model.config, "schedule": {"kind": "linear", "T": schedule.T},
        "test_accuracy": accuracy, "test_images": len(xt[:eval_n])})
    return model, accuracy["t_uniform"]


def noisy_accuracy(model, images, labels, schedule, *, seed: int = 0, ts=(1, 250, 500, 750, 1000)) -> dict:
    """A noise-aware classifier's accuracy on ``images`` noised by q_sample at each t of ``ts`` and at t uniform on
    1..T (one draw of t and noise per image, from ``seed``), rounded to 4 digits."""
    from .diffusion import q_sample

    g = torch.Generator().manual_seed(seed)
    result = {}
    with torch.no_grad():
        for t in [*ts, None]:
            tt = (torch.randint(1, schedule.T + 1, (len(images),), generator=g) if t is None
                  else torch.full((len(images),), t))
            x_t = q_sample(images, tt, schedule, torch.randn(images.shape, generator=g))
            pred = torch.cat([model(x_t[i:i + 1000], tt[i:i + 1000]).argmax(1) for i in range(0, len(x_t), 1000)])
            result["t_uniform" if t is None else f"t={t}"] = round(float(pred.eq(labels).float().mean()), 4)
    return result


def load_noisy_classifier(weights) -> torch.nn.Module:
    """A :class:`~minddim.models.NoisyClassifier` from its ``.pt`` (state_dict, weights_only) and the JSON beside
    it (as ``train-classifier --noisy`` writes them), or a shipped one by name."""
    import json

    from .models import NoisyClassifier
    from .weights import AVAILABLE, pretrained

    if isinstance(weights, str) and AVAILABLE.get(weights) == "NoisyClassifier" and not Path(weights).exists():
        return pretrained(weights)
    weights = Path(weights)
    meta = weights.with_suffix(".json")
    if not weights.is_file() or not meta.is_file() or json.loads(meta.read_text()).get("kind") != "NoisyClassifier":
        raise ValueError(f"classifier must be a noise-aware classifier's .pt with its .json beside it (as "
                         f"`train-classifier --noisy` writes them), got {str(weights)!r}")
    model = NoisyClassifier(**json.loads(meta.read_text())["model"])
    model.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"))
    return model.eval()


# the samplers of the shipped model's record; evaluate's default is the first (DDPM-1000 takes about 19x as long:
# mnist_unet.json records 1323 s against 70 s)
SAMPLERS = (("DDIM-50", 50, 0.0), ("DDPM-1000", 1000, 1.0))


def evaluate_unet(weights, *, n: int = 1000, seed: int = 0, batch: int = 500, root=None, progress: bool = True,
                  command: str | None = None, device="cpu", samplers=SAMPLERS[:1], out=None, classes=None,
                  guidance=None, classifier=None, classifier_guidance=None) -> dict:
    """Measure an MNIST U-Net's sample quality: MNIST FID against the 10,000 test images, classifier confidence and
    the fraction the classifier is sure of (top probability > 0.9) of ``n`` samples from each of ``samplers``
    (``(name, S, eta)``: DDIM-50 is ``("DDIM-50", 50, 0.0)``, DDPM-1000 ``("DDPM-1000", 1000, 1.0)``; every
    sampler draws from the same seed), with their sampling wall-clock, and, as the floor at this ``n``, the same
    figures for ``n`` real training images. What ``python -m minddim evaluate`` runs; returns the ``"quality"``
    entry it records.

    Where: ``out`` (a JSON file, written as ``{"weights": ..., "quality": ...}``), else the JSON beside ``weights``
    (a run's ``ema.json``), whose ``"quality"`` entry is replaced; the shipped models' JSON files are never
    written (``out`` is then required). The record is written after the floor and after each sampler, so a run
    that fails or is stopped keeps what it measured. Under torchrun the processes share each batch by rows
    (:func:`minddim.metrics.sample_quality`), so the figures are those of one process with the same seed (up to
    floating-point rounding), and rank 0 writes them. ``device`` (``"cuda"``: each process's GPU) is where the
    samples are drawn; the classifier scores them on the CPU.

    Classes (:func:`guided_model`): with ``classes`` (an int, or ``"all"``: ceil(``n`` / K) samples of each of the K
    classes), each sampler runs once per guidance setting: classifier-free guidance at each w of ``guidance`` (a
    sequence; default (0,): the plain conditional model) on a class-conditional model, and classifier guidance at
    each scale of ``classifier_guidance`` with the noise-aware ``classifier``. Each entry, named like
    ``"DDIM-50 w=2"`` or ``"DDIM-50 classifier s=1"``, adds to the FID, confidence and sure fraction the
    ``accuracy``: the share of samples the course's MNIST classifier (``md.pretrained("mnist_classifier")``)
    reads as the class asked for, overall and per class, and the network evaluations per sample."""
    from .distributed import process_group

    with process_group(device) as device:
        return _evaluate_unet(weights, n=n, seed=seed, batch=batch, root=root, progress=progress, command=command,
                              device=device, samplers=samplers, out=out, classes=classes, guidance=guidance,
                              classifier=classifier, classifier_guidance=classifier_guidance)


def class_quality(eps_for, schedule, steps: int, eta, *, rows, reference, seed: int = 0, batch: int = 500,
                  mnist_classifier=None, progress: bool = False, device="cpu", reference_labels=None) -> dict:
    """Sample each class ``c`` of ``rows`` (``[(c, count), ...]``, :func:`class_rows`) from ``eps_for(c)`` with
    DDIM on ``timesteps(T, steps)`` and ``eta`` (x_T and all noise from one generator seeded with ``seed``, the
    classes in order, in batches of ``batch``) and score all samples together: MNIST FID against ``reference``
    (features), confidence, sure fraction, and the accuracy, the share the MNIST classifier reads as the class asked
    for (overall and per class).  With ``reference_labels`` (the digits of ``reference``'s rows), also the
    within-class diversity: :func:`~minddim.metrics.within_class_spread` of the samples grouped by the class asked
    for, divided by that of the reference digits of the same classes (1: as varied as the data; lower: each class
    collapsed onto fewer shapes), when every class has two samples or more."""
    import time

    from .distributed import sample_across
    from .metrics import (_shipped_unless_given, classifier_confidence, classifier_features,
                          classifier_sure_fraction, frechet_distance, within_class_spread)
    from .sampling import timesteps

    mnist_classifier = _shipped_unless_given(mnist_classifier)
    g = torch.Generator(device=device).manual_seed(seed)
    tau = timesteps(schedule.T, steps)
    images, asked = [], []
    started = time.perf_counter()
    for c, count in rows:
        eps = eps_for(c)
        for i in range(0, count, batch):
            x_T = torch.randn(min(batch, count - i), 1, 28, 28, generator=g, device=device)
            images.append(sample_across(eps, x_T, schedule, tau, eta, generator=g, progress=progress,
                                        clip_x0=1.0).cpu())
        asked += [c] * count
    seconds = time.perf_counter() - started
    images, asked = torch.cat(images).clamp(-1, 1), torch.tensor(asked)
    with torch.no_grad():
        read = torch.cat([mnist_classifier(images[i:i + 500]).argmax(1) for i in range(0, len(images), 500)])
    hit = read.eq(asked).float()
    per_class = {str(c): round(float(hit[asked == c].mean()), 4) for c, _ in rows}
    features = classifier_features(mnist_classifier, images)
    extra = {}
    if reference_labels is not None and min(count for _, count in rows) >= 2:     # a spread needs two rows a class
        keep = torch.isin(reference_labels, asked.unique())
        extra["diversity"] = round(within_class_spread(features, asked)
                                   / within_class_spread(reference[keep], reference_labels[keep]), 4)
    return {"n": len(images), "steps": int(steps), "eta": eta, "seed": seed,
            "classes": [c for c, _ in rows], "accuracy": round(float(hit.mean()), 4),
            "accuracy_per_class": per_class, **extra,
            "fid": round(frechet_distance(features, reference), 2),
            "confidence": round(classifier_confidence(images, mnist_classifier), 4),
            "sure": round(classifier_sure_fraction(images, mnist_classifier), 4),
            "seconds": round(seconds, 1)}


def _evaluate_unet(weights, *, n, seed, batch, root, progress, command, device, samplers, out, classes=None,
                   guidance=None, classifier=None, classifier_guidance=None) -> dict:
    import json

    noisy_classifier = classifier         # the noise-aware one, for classifier guidance; `classifier` is MNIST's below
    import sys

    from ._validate import check_positive_int
    from .data import load_mnist, to_model_range
    from .distributed import is_writer, launch_command, world
    from .metrics import (classifier_confidence, classifier_features, classifier_sure_fraction, frechet_distance,
                          sample_quality)
    from .weights import AVAILABLE, pretrained

    n = check_positive_int(n, "n")
    if n < 2:
        raise ValueError(f"n must be >= 2 (an FID fits a covariance to the samples), got {n}")
    if not samplers:
        raise ValueError("samplers must name at least one (name, steps, eta), e.g. (('DDIM-50', 50, 0.0),)")
    shipped = isinstance(weights, str) and weights in AVAILABLE and not Path(weights).exists()
    if out is None and shipped:
        raise ValueError(f"out: the shipped model {weights}'s JSON is not written; give out, a JSON file")
    model = load_unet(weights).to(device)
    if model.config["channels"] != 1:
        raise ValueError("weights must be an MNIST (1-channel) U-Net")
    if out is None:
        folder = Path(weights) if Path(weights).is_dir() else Path(weights).parent
        out_path = (folder / "ema.pt" if Path(weights).is_dir() else Path(weights)).with_suffix(".json")
    else:
        out_path = Path(out)
    say = (lambda text: print(f"evaluate: {text}", file=sys.stderr, flush=True)) if progress and is_writer() \
        else (lambda text: None)
    classifier = pretrained("mnist_classifier")
    say("MNIST test and training images, the classifier's features")
    reference, reference_labels = load_mnist("test", root=root)
    reference = to_model_range(reference)
    train_images_ = to_model_range(load_mnist("train", root=root)[0])
    schedule = Schedule.linear()
    pick = torch.randperm(len(train_images_), generator=torch.Generator().manual_seed(seed))[:n]
    reference = classifier_features(classifier, reference)        # the test set's features, computed once
    quality = {"command": launch_command(command or f"python -m minddim evaluate --weights {weights} --n {n} "
                                                    f"--seed {seed}"),
               "reference": f"MNIST test set ({len(reference)} images)", "n": n, "seed": seed, "batch": batch,
               "machine": machine(device),
               "real_train_images": {"fid": round(frechet_distance(classifier_features(classifier, train_images_[pick]),
                                                                   reference), 2),
                                     "confidence": round(classifier_confidence(train_images_[pick], classifier), 4),
                                     "sure": round(classifier_sure_fraction(train_images_[pick], classifier), 4)}}
    if world().size > 1:
        quality["world_size"] = world().size

    def record():
        if not is_writer():
            return
        if out is None:
            meta = json.loads(out_path.read_text())
            _write_json(out_path, {**meta, "quality": quality})
        else:
            _write_json(out_path, {"weights": str(weights), "quality": quality})

    record()
    if classes is not None:
        clf = None if noisy_classifier is None else load_noisy_classifier(noisy_classifier).to(device)
        K = model.num_classes or (None if clf is None else clf.num_classes)
        if K is None:
            raise ValueError("classes: the model is unconditional; give a class-conditional model or a classifier")
        rows = class_rows(classes, n, K)
        settings = [(f"w={w:g}", {"guidance": float(w)}) for w in (guidance or (0.0,))] if model.num_classes else []
        settings += [(f"classifier s={s_:g}", {"classifier": clf, "classifier_guidance": float(s_)})
                     for s_ in (classifier_guidance or ())]
        for name, steps, eta in samplers:
            for label, kw in settings:
                say(f"{name} {label}: classes {classes}, {sum(k for _, k in rows)} samples, {steps} steps")
                result = class_quality(lambda c: guided_model(model, c, schedule=schedule, **kw), schedule, steps,
                                       eta, rows=rows, reference=reference, seed=seed, batch=batch,
                                       mnist_classifier=classifier, progress=progress and is_writer(), device=device,
                                       reference_labels=reference_labels)
                cfg = model.num_classes is not None and kw.get("guidance", 0.0) != 0.0
                result.update({k: v for k, v in kw.items() if k != "classifier"})
                result["network_evaluations_per_sample"] = steps * (2 if cfg else 1)
                if "classifier_guidance" in kw:
                    result["classifier_passes_per_sample"] = steps
                quality[f"{name} {label}"] = result
                record()
        return quality
    for name, steps, eta in samplers:
        say(f"{name}: {n} samples, {steps} steps, eta = {eta:g}")
        result = sample_quality(model, schedule, steps, eta, n=n, reference=reference, seed=seed, batch=batch,
                                classifier=classifier, progress=progress and is_writer(), device=device)
        result.pop("images")
        quality[name] = result
        record()
    return quality
