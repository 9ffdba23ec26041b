"""The command line's checks, apart from the mathematics: every mistake in a ``python -m minddim`` command line is
one line (``python -m minddim sample: error: --n must be a positive integer, got 0``) and exit status 2, found
before any work starts and before anything is written. A traceback is left for the package's own bugs.

The ``type=`` functions below check one option's text; :class:`Parser` turns argparse's own messages into the
same one-line form; the ``check_*`` functions check what needs the file system or torch, after parsing and
before the command runs (they raise :class:`UsageError`, which ``__main__`` reports as the parser's error).
Nothing here imports torch at module level, so ``--help`` stays fast."""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

# a folder-type output whose name ends in one of these is surely a mistake (`--out x.jpg` for a folder of samples)
FILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".pdf", ".svg", ".pt", ".pth",
                 ".json", ".csv", ".txt", ".npy", ".npz", ".ipynb", ".py")
# what `train` writes into its run folder (commands.train_images)
RUN_FILES = ("config.json", "checkpoint.pt", "loss.csv", "ema.pt", "ema.json")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")       # as minddim.hub: org/name
SAMPLER = re.compile(r"^(ddim|ddpm)-(\d+)$")
T = 1000                                                     # the course U-Nets' schedule (Schedule.linear())


class UsageError(Exception):
    """A mistake in the command line: its message is the one line the user reads (the option first)."""


class Parser(argparse.ArgumentParser):
    """argparse, with each error on one line naming the option (``--n must be ..., got ...``), exit status 2,
    and ``(default: ...)`` after the help of every option with a default value (not None, not False) that does not
    say its default itself."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {plain(message)}\n")


class HelpFormatter(argparse.HelpFormatter):
    """Plain text: descriptions wrapped paragraph by paragraph (lines indented by two spaces kept as they are),
    every option's default value after its help (none for a default of None or False)."""

    def _fill_text(self, text, width, indent):
        import textwrap

        out = []
        for para in text.split("\n\n"):
            if para.startswith("  ") or "\n  " in para:
                out.append(textwrap.indent(para, indent))
            else:
                out.append(textwrap.fill(" ".join(para.split()), width, initial_indent=indent,
                                         subsequent_indent=indent))
        return "\n\n".join(out)

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or action.default is None or action.default is False
                or action.default is argparse.SUPPRESS or not action.option_strings):
            return text
        default = ",".join(map(str, action.default)) if isinstance(action.default, (list, tuple)) else action.default
        return f"{text} (default: {default})"


def plain(message: str) -> str:
    """argparse's ``argument --n/--num-samples: ...`` as ``--n ...``; its choices and missing values likewise."""
    m = re.match(r"argument ([^\s/:]+)(?:/[^\s:]+)*: (.*)$", message, re.S)
    if not m:
        return message
    option, rest = m.groups()
    choice = re.match(r"invalid choice: (.*?) \(choose from (.*)\)$", rest, re.S)
    if choice:
        return f"{option} must be one of {choice[2].replace(chr(39), '')}, got {choice[1]}"
    if rest == "expected one argument":
        return f"{option} needs a value"
    kind = re.match(r"invalid (\w+) value: (.*)$", rest, re.S)
    if kind:
        return f"{option} must be a{'n' if kind[1][0] in 'aeiou' else ''} {kind[1]}, got {kind[2]}"
    return f"{option} {rest}"


# -- one option's text ---------------------------------------------------------------------------------------
def _int(text, what):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None


def _int_in(what: str, low: int, high: int | None = None, why: str = ""):
    """A ``type=`` for an integer option in low..high (no upper end when ``high`` is None), said as ``what``
    (``why`` after it once the text is an integer)."""
    def check(text: str) -> int:
        v = _int(text, what)
        if v < low or (high is not None and v > high):
            raise argparse.ArgumentTypeError(f"must be {what}{why}, got {v}")
        return v
    return check


positive_int = _int_in("a positive integer", 1)
# a number of samples for an FID: at least 2 (it fits a covariance to them)
fid_count = _int_in("an integer >= 2", 2, why=" (an FID fits a covariance to the samples)")
nonneg_int = _int_in("an integer >= 0", 0)
# a number of sampling steps S in 1..T (T = 1000, the course's schedule)
steps = _int_in(f"an integer in 1..{T}", 1, T, why=f" (the schedule has T = {T} steps)")


def _float(text, what):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return v


def positive_float(text: str) -> float:
    v = _float(text, "a number > 0")
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return v


def finite_float(text: str) -> float:
    """A finite real number (a guidance weight w or scale s: nan and inf are refused)."""
    return _float(text, "a finite number")


def finite_floats(text: str) -> tuple:
    """Finite real numbers separated by commas, e.g. ``0,0.5,1,2,4`` (each once, in the order given)."""
    out = []
    for part in text.split(","):
        try:
            v = float(part)
        except ValueError:
            v = float("nan")
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be finite numbers separated by commas (e.g. 0,1,2), got {text!r}")
        if v not in out:
            out.append(v)
    return tuple(out)


def probability(text: str) -> float:
    """A probability in [0, 1]."""
    v = _float(text, "a number in [0, 1]")
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text}")
    return v


def class_choice(text: str):
    """A class index >= 0 (checked against the model's classes later) or ``all``."""
    if text == "all":
        return text
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'must be a class 0, 1, ... or "all", got {text!r}') from None
    if v < 0:
        raise argparse.ArgumentTypeError(f'must be a class 0, 1, ... or "all", got {v}')
    return v


def decay(text: str) -> float:
    """An EMA decay in [0, 1)."""
    v = _float(text, "a number in [0, 1)")
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text}")
    return v


def eta(text: str):
    """DDIM's eta: a number >= 0, or ``sigma_hat`` (DDPM's larger variance)."""
    if text == "sigma_hat":
        return text
    v = _float(text, 'a number >= 0 or "sigma_hat"')
    if v < 0:
        raise argparse.ArgumentTypeError(f'must be a number >= 0 or "sigma_hat", got {text}')
    return v


def mults(text: str) -> tuple:
    """Width multipliers: positive integers separated by commas, e.g. ``1,2,2``."""
    try:
        values = tuple(int(m) for m in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be positive integers separated by commas (e.g. 1,2,2), got {text!r}")
    return values


def samplers(text: str) -> tuple:
    """``ddim-50,ddpm-1000``: DDIM-S is eta = 0 on S uniform steps, DDPM-S eta = 1 (DDPM-1000: DDPM's own sampler).
    Returns ((name, S, eta), ...) with names such as ``DDIM-50``."""
    out = []
    for part in text.split(","):
        m = SAMPLER.match(part.strip().lower())
        if not m or not 1 <= int(m[2]) <= T:
            raise argparse.ArgumentTypeError(f"must be ddim-S or ddpm-S (S in 1..{T}), comma-separated, e.g. "
                                             f"ddim-50,ddpm-1000, got {text!r}")
        name = f"{m[1].upper()}-{int(m[2])}"
        if name not in [o[0] for o in out]:
            out.append((name, int(m[2]), 0.0 if m[1] == "ddim" else 1.0))
    return tuple(out)


# -- what needs the file system or torch ---------------------------------------------------------------------
def check_device(text: str) -> str:
    """A device torch knows and this machine has: ``--device cuda`` without CUDA says so in those words."""
    if text == "cpu":
        return text
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise UsageError(f'--device must be "cpu", "cuda" or "cuda:N", got {text!r}') from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch was built without CUDA" if torch.version.cuda is None
                   else "no CUDA GPU is visible (driver or CUDA_VISIBLE_DEVICES)")
            raise UsageError(f"--device {text}: CUDA is not available here ({why}); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {text}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                             f"numbered from 0")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {text}: MPS (Apple GPU) is not available here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f'--device must be "cpu", "cuda" or "cuda:N", got {text!r}')
    return text


def check_root(text: str | None) -> None:
    if text is not None and Path(text).exists() and not Path(text).is_dir():
        raise UsageError(f"--root must be a folder (the data root, holding mnist/ and cifar10/), got the file {text}")


def check_out_folder(text: str, option: str = "--out") -> Path:
    """A folder-type output: not an existing file, not a name with a file's extension (``x.jpg``)."""
    path = Path(text)
    if path.suffix.lower() in FILE_SUFFIXES:
        raise UsageError(f"{option} must be a folder (a path without a file extension), got {text}")
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} must be a folder, got the existing file {text}")
    return path


def check_out_file(text: str, suffix: str, option: str = "--out", force: bool | None = None) -> Path:
    """A file output with ``suffix``; with ``force`` given, an existing file is replaced only when it is true."""
    path = Path(text)
    if path.suffix.lower() != suffix:
        raise UsageError(f"{option} must be a {suffix} file, got {text}")
    if path.is_dir():
        raise UsageError(f"{option} must be a {suffix} file, got the folder {text}")
    if force is False and path.exists():
        raise UsageError(f"{option} {text} exists; choose another {option}, or add --force to replace it")
    return path


def weights_model_config(weights: str) -> dict:
    """The ``"model"`` entry of the JSON beside resolved ``--weights`` (a shipped name or an ``ema.pt``): what the
    command-line checks need (channels, num_classes) without loading torch. Empty for other kinds."""
    import json

    if weights in shipped_names() and not Path(weights).exists():
        from .weights import HERE

        return json.loads((HERE / f"{weights}.json").read_text()).get("model", {})
    path = Path(weights)
    if path.suffix == ".pt" and path.with_suffix(".json").is_file():
        return json.loads(path.with_suffix(".json").read_text()).get("model", {})
    return {}


def check_noisy_classifier(text: str, option: str = "--classifier") -> int:
    """A noise-aware classifier's ``.pt`` with its JSON beside it (``"kind": "NoisyClassifier"``, as
    ``train-classifier --noisy`` writes), or a shipped one by name; returns its number of classes."""
    import json

    noisy = shipped_names("NoisyClassifier")
    if text in noisy and not Path(text).exists():
        from .weights import HERE

        return int(json.loads((HERE / f"{text}.json").read_text())["model"]["num_classes"])
    path = Path(text)
    meta = path.with_suffix(".json")
    if not path.is_file():
        raise UsageError(f"{option} {text}: no such file; give a noise-aware classifier's .pt (with its .json, as "
                         f"`python -m minddim train-classifier --noisy` writes)" + (f" or one of {', '.join(noisy)}"
                                                                                    if noisy else ""))
    info = json.loads(meta.read_text()) if meta.is_file() else {}
    if info.get("kind") != "NoisyClassifier":
        raise UsageError(f"{option} {text} is not a noise-aware classifier (its {meta.name} must say "
                         f"\"kind\": \"NoisyClassifier\", as `train-classifier --noisy` writes)")
    return int(info["model"]["num_classes"])


def shipped_names(kind: str | None = None) -> list:
    """The shipped models (minddim/weights/NAME.pt with NAME.json), of a class such as ``"UNet"``."""
    from .weights import AVAILABLE

    return sorted(name for name, k in AVAILABLE.items() if kind is None or k == kind)


def resolve_weights(text: str, diffusers: bool = True, option: str = "--weights") -> tuple:
    """What ``--weights`` names, as ``(value for the loader, one line saying which it took)``: a shipped U-Net
    (``mnist_unet``), a run folder (its ``ema.pt``), an ``ema.pt`` with its ``ema.json``, a diffusers folder, or a
    hub id ``org/name`` (only a text of that form that is no local path). A path that does not exist is
    "no such file"; ``diffusers=False`` refuses the diffusers kinds (``evaluate`` scores the course's U-Nets)."""
    unets = shipped_names("UNet")
    path = Path(text)
    if text in shipped_names() and not path.exists():
        if text not in unets:
            raise UsageError(f"{option} {text} is a shipped model but not a U-Net; the shipped U-Nets are "
                             f"{', '.join(unets)}")
        return text, f"the shipped model {text}"
    if path.is_dir():
        if (path / "ema.pt").is_file():
            path = path / "ema.pt"
        elif (path / "checkpoint.pt").is_file():
            raise UsageError(f"{option} {text} is a run folder without ema.pt yet (`train` writes it when the run "
                             f"ends; continue it with --resume)")
        elif any((path / f).is_file() for f in ("model_index.json", "config.json", "unet/config.json")):
            if not diffusers:
                raise UsageError(f"{option} {text} is a diffusers checkpoint; this command takes the course's U-Nets "
                                 f"(a run folder, an ema.pt, or {', '.join(unets)})")
            return text, f"the diffusers checkpoint in the folder {text}"
        else:
            raise UsageError(f"{option} {text} is a folder with neither an ema.pt (a run folder of `train`) nor a "
                             f"diffusers checkpoint (model_index.json or config.json)")
    if path.is_file():
        if not path.with_suffix(".json").is_file():
            raise UsageError(f"{option} {text} has no {path.with_suffix('.json').name} beside it (as `train` writes "
                             f"ema.pt with ema.json)")
        return str(path), f"the trained weights {path} (with {path.with_suffix('.json').name})"
    first = Path(text.split("/")[0])
    if (diffusers and HUB_ID.match(text) and path.suffix.lower() not in FILE_SUFFIXES and not first.exists()
            and not text.startswith(".")):
        return text, f"the model hub's checkpoint {text} (downloaded by diffusers on first use)"
    kinds = "a shipped model (" + ", ".join(unets) + "), a run folder, an ema.pt" + (
        ", a diffusers folder or a hub id org/name" if diffusers else "")
    raise UsageError(f"{option} {text}: no such file or folder; give {kinds}")
