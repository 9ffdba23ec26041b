"""Samples as a folder of PNG files, ``00000.png, 00001.png, ...``: what the field's FID tools read (torch-fidelity,
clean-fid; README, "The papers' own models"). What ``python -m minddim sample --out FOLDER`` runs.

The n samples are drawn in batches of ``batch``; batch b draws its x_T and its noise from its own generator,
seeded from (seed, b) (:func:`batch_generator`). So the files do not depend on how the work is split: a run that
was killed resumes by skipping the batches whose files all exist, and processes ``rank = 0..world-1`` that take
the batches b with b % world == rank (torchrun) write, together, the files one process writes. Every file is
written to a temporary name and renamed (nothing half-written); ``settings.json`` beside the images records the
settings, and a rerun with other settings into the same folder is refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from ._io import atomic_path
from ._validate import check_positive_int
from .data import to_pixels
from .sampling import check_eta, sample, timesteps
from .schedules import Schedule

SETTINGS = "settings.json"
_TEMP = re.compile(r"^\.(\d+)\.png\..*\.tmp$")    # what atomic_path leaves behind when a process is killed


def batch_generator(seed: int, b: int, device="cpu") -> torch.Generator:
    """The generator of batch ``b``: seeded with a 32-bit word that numpy's SeedSequence derives from (seed, b)
    (torch's CPU generator uses the low 32 bits of a seed; the words of different b are independent)."""
    word = int(np.random.SeedSequence([seed, b]).generate_state(1)[0])
    return torch.Generator(device=device).manual_seed(word)


def write_png(image: torch.Tensor, path) -> None:
    """A uint8 image (C, H, W) with C = 1 (grayscale) or 3 (RGB) as a PNG of its own size, written atomically."""
    from PIL import Image

    if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"image must be a uint8 tensor (C, H, W) with C = 1 or 3, got "
                         f"{getattr(image, 'dtype', type(image).__name__)} {tuple(getattr(image, 'shape', ()))}")
    pixels = image.cpu().permute(1, 2, 0).numpy()
    with atomic_path(path) as tmp:
        Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(tmp, format="PNG")


def read_png(path) -> torch.Tensor:
    """A PNG written by :func:`write_png` back as uint8 (C, H, W)."""
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im)
    return torch.from_numpy(a.copy()).unsqueeze(0) if a.ndim == 2 else torch.from_numpy(a.copy()).permute(2, 0, 1)


def write_samples(model, schedule: Schedule, out, *, n: int, image_shape, batch: int = 100, steps: int = 50,
                  eta=0.0, seed: int = 0, kind: str = "uniform", clip_x0: float | None = 1.0, device="cpu",
                  rank: int = 0, world: int = 1, progress: bool = True, settings: dict | None = None) -> list[Path]:
    """Sample ``n`` images with :func:`minddim.sampling.sample` (DDIM on ``timesteps(T, steps, kind)`` with
    ``eta``; DDPM is steps = T, eta = 1) and write them to the folder ``out`` as ``00000.png ...`` (uint8, the
    model's own size; one channel gray, three RGB). ``image_shape`` is (C, H, W).

    Batch b (images b*batch .. b*batch + batch - 1) is drawn from :func:`batch_generator` (seed, b) on ``device``:
    x_T first, then each step's noise. This process takes the batches with b % world == rank and skips those whose
    files all exist (resume); a batch with some files missing is sampled again and only those are written.
    Temporary files of this process's batches left by a killed run are removed. The sampling arguments, updated with
    ``settings`` (a dict of further entries, or None), are written to ``out/settings.json``; a folder whose settings.json differs is refused.
    Returns the paths written by this call."""
    out = Path(out)
    n = check_positive_int(n, "n")
    batch = check_positive_int(batch, "batch")
    steps = check_positive_int(steps, "steps", high=schedule.T)
    eta = check_eta(eta)
    world = check_positive_int(world, "world")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world:
        raise ValueError(f"rank must be an int in 0..{world - 1} (world={world}), got {rank!r}")
    if out.suffix.lower() == ".png" or out.is_file():
        raise ValueError(f"out must be a folder for the PNG files, got {str(out)!r} (a .png path is the grid mode)")
    tau = timesteps(schedule.T, steps, kind)
    settings = {"n": n, "batch": batch, "steps": steps, "eta": eta, "kind": kind, "seed": seed, "clip_x0": clip_x0,
                "device": torch.device(device).type, "image_shape": list(image_shape), **(settings or {})}
    _claim(out, settings)
    width = max(5, len(str(n - 1)))
    names = [f"{i:0{width}d}.png" for i in range(n)]
    mine = [b for b in range(-(-n // batch)) if b % world == rank]
    _remove_stale_temporaries(out, batch, world, rank)
    todo = [(b, [i for i in range(b * batch, min(n, (b + 1) * batch)) if not (out / names[i]).exists()]) for b in mine]
    todo = [(b, missing) for b, missing in todo if missing]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(min(n, (b + 1) * batch) - b * batch for b in mine), unit="img",
                   initial=sum(min(n, (b + 1) * batch) - b * batch for b in mine if b not in dict(todo)),
                   desc=f"{out} ({steps} steps, eta {eta}, rank {rank}/{world})" if world > 1 else
                   f"{out} ({steps} steps, eta {eta})")
    written = []
    for b, missing in todo:
        first, size = b * batch, min(n, (b + 1) * batch) - b * batch
        g = batch_generator(seed, b, device)
        x_T = torch.randn((size, *image_shape), generator=g, device=device)
        x = sample(model, x_T, schedule, tau, eta, generator=g, clip_x0=clip_x0)
        pixels = to_pixels(x).cpu()
        for i in missing:
            write_png(pixels[i - first], out / names[i])
            written.append(out / names[i])
        if bar is not None:
            bar.update(size)
    if bar is not None:
        bar.close()
    return written


def sample_folder(weights, out, *, n: int = 50_000, batch: int = 100, steps: int = 50, eta=0.0, seed: int = 0,
                  kind: str = "uniform", device="cpu", rank: int = 0, world: int = 1,
                  progress: bool = True) -> list[Path]:
    """What ``python -m minddim sample --out FOLDER`` runs: the model of ``weights`` (``ema.pt`` from ``train``,
    a shipped name such as ``"mnist_unet"``, or a diffusers folder / hub id, :func:`minddim.hub.load_diffusers`)
    sampled into ``out`` with :func:`write_samples`. Course U-Nets use the linear schedule (T = 1000) and clip the
    predicted x_0 to [-1, 1]; a diffusers checkpoint brings its own schedule and its scheduler's clip_sample."""
    from .hub import is_diffusers, load_diffusers

    if is_diffusers(weights):
        model, schedule = load_diffusers(weights, device=device)
        shape, clip_x0 = model.image_shape, model.clip_x0
    else:
        from .commands import load_unet

        model = load_unet(weights).to(device)
        schedule = Schedule.linear()
        channels = model.config["channels"]
        shape, clip_x0 = (channels, 28, 28) if channels == 1 else (channels, 32, 32), 1.0
    return write_samples(model, schedule, out, n=n, image_shape=shape, batch=batch, steps=steps, eta=eta, seed=seed,
                         kind=kind, clip_x0=clip_x0, device=device, rank=rank, world=world, progress=progress,
                         settings={"weights": str(weights)})


def _claim(out: Path, settings: dict) -> None:
    """Write out/settings.json, or check that the one there is the same (a resumed run)."""
    path = out / SETTINGS
    settings = json.loads(json.dumps(settings))       # as it reads back (tuples become lists)
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored != settings:
            differ = sorted(k for k in set(stored) | set(settings) if stored.get(k) != settings.get(k))
            raise ValueError(f"out: {out} holds samples of other settings ({', '.join(differ)} differ from its "
                             f"{SETTINGS}); choose another folder or the same settings to resume")
        return
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(settings, indent=2))


def _remove_stale_temporaries(out: Path, batch: int, world: int, rank: int) -> None:
    """Temporary PNGs of this process's batches, left by a run that was killed while writing."""
    for entry in out.iterdir():
        m = _TEMP.match(entry.name)
        if m and (int(m.group(1)) // batch) % world == rank:
            entry.unlink(missing_ok=True)


__all__ = ["batch_generator", "write_png", "read_png", "write_samples", "sample_folder"]
