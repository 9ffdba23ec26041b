"""A plain training loop for any eps-model and any data: Adam, an exponential moving average (EMA) of the
weights (DDPM appendix B uses decay 0.9999), a seed, a progress bar and the loss history."""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path
from typing import Callable, NamedTuple

import torch

from ._io import atomic_path
from ._validate import check_positive_int
from .distributed import barrier, is_writer, mean_over_processes, shard, world
from .losses import objective, sample_t
from .schedules import Schedule, as_schedule


class EMA:
    """Shadow weights theta_ema <- decay theta_ema + (1 - decay) theta after each step."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        if not 0 <= decay < 1:
            raise ValueError(f"decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        torch._foreach_lerp_(list(self.model.parameters()), [p.detach() for p in model.parameters()], 1 - self.decay)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)


LR_DECAYS = ("constant", "cosine")
PRECISIONS = ("fp32", "bf16")


def learning_rate(lr: float, step: int, steps: int, decay: str = "constant") -> float:
    """The learning rate of Adam step ``step`` (0-based) of ``steps``: ``lr`` throughout (``"constant"``, as in
    DDPM's text, App. B: 2e-4 "without any sweeping", 2e-5 for 256 x 256 images, no decay named), or ``lr (1 + cos(pi step / steps)) / 2``
    (``"cosine"``: from ``lr`` at the first step down to nearly 0 at the last). A function of the step alone, so a
    resumed run follows the same schedule."""
    if decay not in LR_DECAYS:
        raise ValueError(f"lr_decay must be one of {LR_DECAYS}, got {decay!r}")
    return lr if decay == "constant" else lr * (1 + math.cos(math.pi * step / steps)) / 2


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX-512 BF16) and torch's oneDNN kernels may use it (an
    ``ONEDNN_MAX_CPU_ISA`` cap below those turns it off). Elsewhere bf16 autocast is emulated in float32 and slower."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()
                and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()))


def _warn_emulated_bf16(device: torch.device) -> None:
    """Once per process: ``precision="bf16"`` on a CPU that has no native bfloat16, with the slowdown measured."""
    global _WARNED_BF16
    if device.type != "cpu" or _WARNED_BF16 or native_bf16():
        return
    _WARNED_BF16 = True
    warnings.warn(BF16_EMULATED, stacklevel=3)


_WARNED_BF16 = False
# measured by `python benchmarks/run.py --only unet` (benchmarks/README.md, section 8, "bf16"), oneDNN capped at AVX2
BF16_EMULATED = ("precision='bf16' on a CPU without native bfloat16 (no AMX or AVX-512 BF16, or torch's kernels capped "
                 "below them): autocast emulates it, and a training step of the shipped U-Net measured about 10x slower "
                 "than float32 (benchmarks/README.md, section 8); use precision='fp32'")


class TrainResult(NamedTuple):
    model: torch.nn.Module      # the trained network (last iterate)
    ema: torch.nn.Module        # its exponential moving average: use this one for sampling
    losses: list                # the loss of every step


def train(model: torch.nn.Module, data, schedule: Schedule, *, steps: int, batch_size: int = 256,
          lr: float = 1e-3, ema_decay: float = 0.999, seed: int = 0, prediction: str = "eps",
          weighting: str = "simple", variance: str = "fixed", progress: bool = True, loss_fn: Callable | None = None,
          checkpoint=None, checkpoint_every: int = 0, resume: bool = False, log_csv=None,
          device: str | torch.device = "cpu", channels_last: bool | None = None,
          lr_decay: str = "constant", precision: str = "fp32", labels: torch.Tensor | None = None,
          p_uncond: float = 0.0, label_lr: float | None = None) -> TrainResult:
    """Train ``model`` on ``data`` for ``steps`` Adam steps of the objective (default L_simple).

    Classes (classifier-free guidance's training, Ho & Salimans 2022, Algorithm 1): with ``labels`` (a (N,) integer
    tensor of classes 0..K-1, one per example of the tensor ``data``; or a callable ``data`` returning
    ``(x0, y)``), ``model`` must be a class-conditional eps-model ``model(x_t, t, y)`` with ``num_classes = K``
    (:mod:`minddim.guidance`), and each label of the minibatch is replaced by the null label K with probability
    ``p_uncond`` (label dropout), drawn from the seeded generator after t and the noise, so the network learns the
    conditional and the unconditional model at once. Without ``labels`` nothing changes (and nothing more is drawn).
    ``label_lr`` (a class-conditional :class:`~minddim.models.UNet` only) gives its class embedding ``label`` its own
    learning rate, following ``lr_decay`` like the rest: an embedding that starts at zero on a trained network
    (``load_unconditional_state_dict``) moves by about ``lr`` a step under Adam whatever its gradient, and the
    shipped ``mnist_unet_cond`` was fine-tuned with ``label_lr = 10 lr`` (its record, ``mnist_unet_cond.json``,
    holds the runs that chose it).

    ``data`` is a tensor of examples (minibatches drawn with replacement) or a callable
    ``data(n, generator) -> tensor`` giving fresh draws.  Everything random comes from ``seed``.
    ``prediction``, ``weighting`` and ``variance`` choose the objective (:func:`minddim.objective`: DDPM Table 2's
    rows, and x_0- or v-prediction); ``loss_fn(model, x0, schedule, generator)`` replaces it if given.

    With ``checkpoint`` (a path), the model, its EMA, the optimizer, the step, the loss history and both
    random states are written there every ``checkpoint_every`` steps and at the end, to a temporary file
    renamed into place; ``resume=True`` continues from that file, so a run killed and resumed ends exactly
    where an uninterrupted run ends.  ``log_csv`` (a path) receives the loss history as ``step,loss``.
    ``device`` (e.g. ``"cuda"``) moves the model and a tensor ``data`` there and draws the minibatches and
    the noise there; the returned networks stay on ``device`` and the checkpoint holds its tensors (``resume`` maps
    them back to ``device``; load it elsewhere with ``map_location``).
    ``lr_decay`` (``"constant"`` or ``"cosine"``) sets each step's learning rate (:func:`learning_rate`).
    ``precision="bf16"`` computes the forward pass under ``torch.autocast`` in bfloat16 (mixed precision: the
    weights, Adam's state, the EMA and the loss stay float32). It pays off for wider U-Nets on CPUs with bf16
    matrix units (measured on one such CPU in ``benchmarks/README.md``, section 3); ``"fp32"`` is the default.
    ``channels_last`` stores the model's weights and the images in the channels-last memory layout while
    training (default: on when ``data`` is a tensor of images, ``(N, C, H, W)``): the same computation up to
    floating-point rounding, and more images per second for the shipped U-Net on a 2-core CPU (measured in
    ``benchmarks/README.md``, section 3).  The returned networks are back in the layout they came in (a
    :class:`~minddim.models.UNet` is channels-last from the start).

    Several processes (a ``torch.distributed`` process group is initialized, as ``python -m minddim train``
    does under torchrun): ``batch_size`` is the global batch, which the number of processes must divide. Every
    process draws the whole global minibatch, its times t and its noise from the same generator, in the order
    one process draws them, keeps its contiguous share of the rows (:func:`minddim.distributed.shard`) and
    trains the model wrapped in DistributedDataParallel, which averages the shards' gradients: the gradient of
    the global batch's mean loss, so the run follows the single-process one up to floating-point rounding.
    The losses recorded are the global batch's (averaged over the processes). Rank 0 alone keeps the EMA and
    writes the checkpoint and ``log_csv``, and the others wait until it is written (a failure in a later step
    cannot interrupt it); every process loads the checkpoint on ``resume``. The other ranks
    return ``ema=None``. ``loss_fn`` draws its own randomness and is for one process only. Dropout (off in the
    package's U-Nets) is the one random draw each process makes from its own torch generator.
    """
    schedule = as_schedule(schedule)
    steps = check_positive_int(steps, "steps")
    learning_rate(lr, 0, steps, lr_decay)                         # checks lr_decay before any work
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16":
        _warn_emulated_bf16(torch.device(device))
    batch_size = check_positive_int(batch_size, "batch_size")
    if not (isinstance(data, torch.Tensor) or callable(data)):
        raise TypeError("data must be a tensor of examples or a callable (n, generator) -> tensor")
    if isinstance(data, torch.Tensor) and data.shape[0] == 0:
        raise ValueError("data must hold at least one example")
    if (resume or checkpoint_every) and checkpoint is None:
        raise ValueError("checkpoint must be a path when resume or checkpoint_every is set")
    rows = shard(batch_size)                                      # this process's rows of the global batch
    num_classes = _check_classes(model, data, labels, p_uncond, loss_fn)
    groups = _parameter_groups(model, lr, label_lr, num_classes)
    if loss_fn is not None and world().size > 1:
        raise ValueError("loss_fn is for one process: under torchrun the objective's draws are shared")
    torch.manual_seed(seed)
    device = torch.device(device)
    g = torch.Generator(device=device).manual_seed(seed)
    model = model.to(device)
    if isinstance(data, torch.Tensor):
        data = data.to(device)
    if labels is not None:
        labels = labels.to(device)
    if channels_last is None:
        channels_last = isinstance(data, torch.Tensor) and data.dim() == 4
    # a model that is channels-last already (md.UNet) stays so; another one is converted for the loop and back after
    converted = channels_last and not all(p.is_contiguous(memory_format=torch.channels_last)
                                          for p in model.parameters() if p.dim() == 4)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        if isinstance(data, torch.Tensor):
            data = data.contiguous(memory_format=torch.channels_last)
    # foreach: Adam's update as a few multi-tensor kernels, not a Python loop over the parameters; on a CPU torch's
    # default is the loop. The same numbers bit for bit (tests/test_losses.py)
    opt = torch.optim.Adam(groups, lr=lr, foreach=True)
    ema = EMA(model, ema_decay) if is_writer() else None
    losses, start = [], 0
    if resume and Path(checkpoint).exists():
        state = torch.load(checkpoint, weights_only=True, map_location=device)
        model.load_state_dict(state["model"])
        if ema is not None:
            ema.model.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"].cpu())
        g.set_state(state["data_rng"].cpu())
        losses, start = list(state["losses"]), int(state["step"])
    it = range(start, steps)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="training", initial=start, total=steps, leave=False)
    net = model if world().size == 1 else _ddp(model, device)
    model.train()
    pending = []                  # this step's losses, still on the device: read back every 50 steps, not every step
    for step in it:
        for group in opt.param_groups:
            group["lr"] = group["lr_scale"] * learning_rate(lr, step, steps, lr_decay)
        y = None
        if isinstance(data, torch.Tensor):
            idx = torch.randint(0, data.shape[0], (batch_size,), generator=g, device=device)
            x0 = data[idx]
            if labels is not None:
                y = labels[idx]
        else:
            x0 = data(batch_size, g)
            if num_classes is not None:
                x0, y = x0
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            if loss_fn is None:
                # the global batch's t ~ U{1..T} and eps ~ N(0, I), drawn as objective() draws them; our rows
                t = sample_t(batch_size, schedule.T, g, device)
                noise = torch.randn(x0.shape, dtype=x0.dtype, device=device, generator=g)
                eps_model = net
                if y is not None:
                    y = drop_labels(y, p_uncond, num_classes, g)
                    eps_model = _with_labels(net, y[rows])
                loss = objective(eps_model, x0[rows], schedule, prediction, weighting, t=t[rows], noise=noise[rows],
                                 variance=variance)
            else:
                loss = loss_fn(model, x0, schedule, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update(model)
        pending.append(loss.detach())
        done = step + 1
        save = checkpoint is not None and (done == steps or (checkpoint_every and done % checkpoint_every == 0))
        if len(pending) == 50 or save or done == steps:
            losses.extend(mean_over_processes(torch.stack(pending)).tolist())
            pending.clear()
            if progress and len(losses) >= 50:
                it.set_postfix(loss=f"{sum(losses[-50:]) / 50:.4f}")
        if save and is_writer():
            _save_atomic({"model": model.state_dict(), "ema": ema.model.state_dict(), "optimizer": opt.state_dict(),
                          "torch_rng": torch.get_rng_state(), "data_rng": g.get_state(), "losses": losses,
                          "step": done}, checkpoint)
            if log_csv is not None:
                _write_csv(losses, log_csv)
        if save:
            barrier()             # no process starts the next step (and can fail in it) before the checkpoint is whole
    if log_csv is not None and checkpoint is None and is_writer():
        _write_csv(losses, log_csv)
    if converted:
        model = model.to(memory_format=torch.contiguous_format)
        if ema is not None:
            ema.model = ema.model.to(memory_format=torch.contiguous_format)
    model.eval()
    return TrainResult(model, None if ema is None else ema.model, losses)


def _parameter_groups(model, lr: float, label_lr, num_classes) -> list[dict]:
    """Adam's parameter groups, each with its ``lr_scale`` (its learning rate over ``lr``): one group, or, with
    ``label_lr``, the class embedding ``model.label`` apart from the rest."""
    if label_lr is None:
        return [{"params": list(model.parameters()), "lr_scale": 1.0}]
    if isinstance(label_lr, bool) or not isinstance(label_lr, (int, float)) or not 0 < label_lr < math.inf:
        raise ValueError(f"label_lr must be a positive number (the class embedding's learning rate), got {label_lr!r}")
    label = getattr(model, "label", None)
    if num_classes is None or not isinstance(label, torch.nn.Embedding):
        raise ValueError("label_lr is for a class-conditional run of a model with a class embedding `label` "
                         "(md.UNet(..., num_classes=K)) and its labels")
    rest = [p for p in model.parameters() if p is not label.weight]
    return [{"params": rest, "lr_scale": 1.0}, {"params": [label.weight], "lr_scale": label_lr / lr}]


def drop_labels(y: torch.Tensor, p_uncond: float, num_classes: int, generator: torch.Generator | None = None):
    """Label dropout (Ho & Salimans 2022, Algorithm 1: "c <- ∅ with probability p_uncond"): each label of ``y``
    replaced by the null label ``num_classes`` independently with probability ``p_uncond`` (one uniform draw per
    row from ``generator``). Returns a new tensor."""
    drop = torch.rand(y.shape, generator=generator, device=y.device) < p_uncond
    return torch.where(drop, torch.full_like(y, num_classes), y)


def _with_labels(net, y: torch.Tensor):
    """The eps-model ``(x_t, t) -> net(x_t, t, y)`` for one minibatch's labels."""
    return lambda x_t, t: net(x_t, t, y)


def _check_classes(model, data, labels, p_uncond, loss_fn) -> int | None:
    """The number of classes K of a class-conditional run (``labels`` given, or a callable ``data`` with a
    class-conditional ``model``), after checking ``labels`` and ``p_uncond``; None for an unconditional run."""
    from .guidance import is_conditional

    if isinstance(p_uncond, bool) or not isinstance(p_uncond, (int, float)) or not 0 <= p_uncond <= 1:
        raise ValueError(f"p_uncond must be a number in [0, 1] (the label-dropout probability), got {p_uncond!r}")
    conditional = is_conditional(getattr(model, "module", model))
    if labels is None:
        if conditional and callable(data) and not isinstance(data, torch.Tensor) and loss_fn is None:
            return int(model.num_classes)                        # data(n, g) returns (x0, y)
        if p_uncond:
            raise ValueError("p_uncond: label dropout needs labels (a class-conditional run)")
        return None
    if not conditional:
        raise TypeError("labels: model must be a class-conditional eps-model model(x_t, t, y) with num_classes "
                        f"(e.g. md.UNet(..., num_classes=10)), got {type(model).__name__} without classes")
    if loss_fn is not None:
        raise ValueError("labels: a custom loss_fn draws its own minibatch; give it the labels itself")
    if not isinstance(data, torch.Tensor):
        raise TypeError("labels go with a tensor data (one label per example); a callable data returns (x0, y)")
    from ._validate import check_labels

    K = int(model.num_classes)
    labels = check_labels(labels, K, "labels", allow_null=False)
    if labels.dim() != 1 or labels.shape[0] != data.shape[0]:
        raise ValueError(f"labels must have shape ({data.shape[0]},), one class per example of data, "
                         f"got {tuple(labels.shape)}")
    return K


def _ddp(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` in DistributedDataParallel: its backward pass averages the gradients over the processes."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def _save_atomic(obj, path) -> None:
    """torch.save through a temporary file: never a half-written checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _write_csv(losses, path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("step,loss\n" + "".join(f"{i + 1},{v:.6f}\n" for i, v in enumerate(losses)))


def train_toy(name: str = "eight_gaussians", steps: int = 3000, seed: int = 0, progress: bool = True,
              batch_size: int = 512, **kwargs) -> TrainResult:
    """The course's recipe for a 2-D toy model: a fresh :class:`~minddim.models.MLP` (initialized from
    ``seed``), L_simple on 100k points of ``toy_data(name)``, batch ``batch_size`` (512), Adam at 3e-3, EMA decay 0.995,
    the linear schedule with T = 1000. 3000 steps took 34.8 s on one thread (eight_gaussians_mlp.json); on the eight
    Gaussians
    the EMA model then comes within about 1.3% of the exact loss floor (minddim/weights/eight_gaussians_mlp.json;
    tests/test_losses.py checks < 5%).
    ``kwargs`` (e.g. ``prediction``, ``weighting``, ``variance``) go to :func:`train`; with
    ``variance="learned"`` the MLP has the variance output (``MLP(learned_variance=True)``)."""
    from .data import toy_data
    from .models import MLP

    torch.manual_seed(seed)
    model = MLP(learned_variance=kwargs.get("variance", "fixed") == "learned")
    data = toy_data(name, 100_000, seed=seed + 1)
    return train(model, data, Schedule.linear(), steps=steps, batch_size=batch_size, lr=3e-3, ema_decay=0.995,
                 seed=seed, progress=progress, **kwargs)
