"""The DDPM paper's own models in the course's convention: a diffusers checkpoint (``google/ddpm-cifar10-32``,
``google/ddpm-celebahq-256``, ...) loaded as ``model(x_t, t)`` with 1-based t, beside its :class:`Schedule`.

diffusers (Hugging Face) stores a DDPM as a ``DDPMPipeline`` folder: ``model_index.json``, the network
(``UNet2DModel``: ``config.json`` and ``diffusion_pytorch_model.safetensors`` or ``.bin``) and the scheduler
(``scheduler_config.json``), either in subfolders ``unet/`` and ``scheduler/`` (what ``save_pretrained``
writes) or all at the folder's root (how the google/ddpm-* repositories were first uploaded). Both layouts load.
The weights are read by diffusers: safetensors, or a .bin file through ``torch.load(..., weights_only=True)``,
so no pickled code runs.

Time. diffusers is 0-based: its ``alphas_cumprod[k]``, k = 0..T-1, is the product of (1 - beta) over its
first k + 1 betas, i.e. our ``Schedule.alpha_bars[k + 1]`` (README.md, "Notation"), and its network is
trained with the index k. Our time t = k + 1, so the network is handed ``t - 1``: that is all
:class:`DiffusersEps` does. (Handing it t instead shifts every noise estimate by one step; tests/test_hub.py
shows that this is caught.)

diffusers is an optional extra (``pip install -c constraints.txt -e '.[hub]'``); this module imports it only when a checkpoint
is loaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from ._validate import as_time
from .schedules import Schedule

INSTALL = "pip install -c constraints.txt -e '.[hub]' in the repository's root (the tested versions)"
# the defaults of diffusers' DDPMScheduler, for fields a scheduler_config.json leaves out
SCHEDULER_DEFAULTS = {"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear",
                      "trained_betas": None, "variance_type": "fixed_small", "clip_sample": True,
                      "clip_sample_range": 1.0, "prediction_type": "epsilon", "thresholding": False,
                      "rescale_betas_zero_snr": False}
# diffusers' variance_type -> the eta of minddim.sampling.sample that gives the same DDPM-1000 sampler
DDPM_ETA = {"fixed_small": 1.0, "fixed_large": "sigma_hat"}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class DiffusersEps(torch.nn.Module):
    """A diffusers ``UNet2DModel`` as the course's ``model(x_t, t) -> eps_hat`` with t in 1..T (a (B,) or ()
    integer tensor): the network receives diffusers' 0-based index ``t - 1``.

    Attributes: ``unet`` (the diffusers network), ``T``, ``image_shape`` (C, H, W), ``clip_x0`` (the scheduler's
    ``clip_sample_range`` when ``clip_sample`` is set, else None: pass it to :func:`minddim.sampling.sample`),
    ``variance_type`` and ``ddpm_eta`` (the eta that reproduces the scheduler's DDPM sampler, see
    :func:`load_diffusers`), and ``scheduler_config`` (the config as read)."""

    def __init__(self, unet: torch.nn.Module, T: int, scheduler_config: dict):
        super().__init__()
        self.unet = unet
        self.T = T
        size = unet.config.sample_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        self.image_shape = (unet.config.in_channels, *size)
        self.scheduler_config = scheduler_config
        self.variance_type = scheduler_config["variance_type"]
        self.ddpm_eta = DDPM_ETA[self.variance_type]
        self.clip_x0 = float(scheduler_config["clip_sample_range"]) if scheduler_config["clip_sample"] else None

    def forward(self, x_t: torch.Tensor, t) -> torch.Tensor:
        t = as_time(t, self.T, "t")
        return self.unet(x_t, (t - 1).to(x_t.device)).sample


def load_diffusers(path_or_hub_id, *, device="cpu") -> tuple[DiffusersEps, Schedule]:
    """Load a diffusers DDPM (a local folder, or a Hugging Face hub id such as ``"google/ddpm-cifar10-32"``)
    as ``(model, schedule)``: ``model(x_t, t)`` in 1-based time (:class:`DiffusersEps`, in eval mode on
    ``device``) and the :class:`Schedule` it was trained with.

    The scheduler's config is checked against what the course implements, and anything else is refused with a
    ValueError naming the field and its value:

    - ``beta_schedule`` must be ``"linear"`` (DDPM sec. 4; ``Schedule.linear(num_train_timesteps, beta_start,
      beta_end)``, in float64 where diffusers uses float32), with no ``trained_betas`` and no
      ``rescale_betas_zero_snr``;
    - ``prediction_type`` must be ``"epsilon"`` (the network predicts the noise, DDPM eq. 11); ``thresholding``
      (dynamic thresholding of x_0) is not implemented;
    - ``variance_type`` must be ``"fixed_small"`` or ``"fixed_large"``, DDPM's two fixed choices (sec. 3.2).
      fixed_small is sigma_t^2 = tilde-beta_t, which is DDIM's eta = 1 (eq. 16 with unit strides); fixed_large
      is sigma_t^2 = beta_t, DDIM's sigma-hat (Table 1), our ``eta="sigma_hat"``, which also adds no noise on
      the last step. ``model.ddpm_eta`` holds the matching eta. The variance only matters for DDPM's
      sampler; DDIM with any eta ignores it. Learned variances (``"learned"``, ``"learned_range"``: a network
      with 2C output channels) are refused.
    - ``clip_sample`` (clamp the predicted x_0 to [-clip_sample_range, clip_sample_range]) is kept as
      ``model.clip_x0``. Our clipped step recomputes eps from the clipped x_0 (DDIM eq. 12 stays exact); for
      DDPM's step that is diffusers' posterior mean (DDPM eq. 7) with the clipped x_0, and for DDIM it is
      diffusers' ``use_clipped_model_output=True``.

    Inference settings of the scheduler (``timestep_spacing``, ``steps_offset``, ``set_alpha_to_one``) are not
    read: the time grid is :func:`minddim.sampling.timesteps`'s. A hub id downloads the checkpoint through
    ``huggingface_hub`` into its cache (network needed; not exercised by the offline tests, which build their
    own folders).
    """
    try:
        from diffusers import UNet2DModel
    except ImportError:
        raise ImportError(f"loading a diffusers checkpoint needs the optional package diffusers: {INSTALL}") from None
    folder = local_folder(path_or_hub_id)
    unet_dir, scheduler_file = _layout(folder)
    config = scheduler_config(scheduler_file)
    schedule = Schedule.linear(config["num_train_timesteps"], config["beta_start"], config["beta_end"])
    unet_class = json.loads((unet_dir / "config.json").read_text()).get("_class_name", "UNet2DModel")
    if unet_class != "UNet2DModel":
        raise ValueError(f"{unet_dir / 'config.json'}: _class_name is {unet_class!r}; only UNet2DModel (an "
                         f"unconditional DDPM network) is supported")
    unet = UNet2DModel.from_pretrained(unet_dir)
    if unet.config.out_channels != unet.config.in_channels:
        raise ValueError(f"the UNet has out_channels={unet.config.out_channels} for in_channels="
                         f"{unet.config.in_channels}: a network that also predicts a variance is not supported")
    if unet.config.num_class_embeds is not None or unet.config.class_embed_type is not None:
        raise ValueError("the UNet is class-conditional (num_class_embeds / class_embed_type set); only "
                         "unconditional models are supported")
    return DiffusersEps(unet, schedule.T, config).to(device).eval(), schedule


def scheduler_config(path) -> dict:
    """A scheduler_config.json read, completed with DDPMScheduler's defaults, and checked (see
    :func:`load_diffusers`). Raises ValueError naming an unsupported field and its value."""
    path = Path(path)
    config = {**SCHEDULER_DEFAULTS, **json.loads(path.read_text())}

    def refuse(field, allowed):
        raise ValueError(f"{path}: {field}={config[field]!r} is not supported (minddim implements {allowed})")

    if config["beta_schedule"] != "linear":
        refuse("beta_schedule", "'linear', DDPM's schedule")
    if config["trained_betas"] is not None:
        refuse("trained_betas", "None: the linear schedule from beta_start, beta_end")
    if config["rescale_betas_zero_snr"]:
        refuse("rescale_betas_zero_snr", "False")
    if config["prediction_type"] != "epsilon":
        refuse("prediction_type", "'epsilon', the eps-prediction of DDPM eq. 11")
    if config["thresholding"]:
        refuse("thresholding", "False; clip_sample is supported")
    if config["variance_type"] not in DDPM_ETA:
        refuse("variance_type", f"{sorted(DDPM_ETA)}, DDPM's fixed variances")
    T = config["num_train_timesteps"]
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        refuse("num_train_timesteps", "an int >= 1")
    if not 0 < config["beta_start"] <= config["beta_end"] < 1:
        refuse("beta_end" if config["beta_start"] > 0 else "beta_start", "0 < beta_start <= beta_end < 1")
    return config


def paper_folder(name: str = "ddpm-cifar10-32", root=None) -> Path:
    """Where the course looks for a downloaded checkpoint of the papers: ``<data root>/<name>``, the data root
    being ``root``, else ``$MINDDIM_DATA``, else ``~/.cache/minddim`` (as for the data sets). Download it there
    once, with network: ``huggingface_hub.snapshot_download("google/ddpm-cifar10-32", local_dir=...)``."""
    from .data import data_root

    return data_root(root) / name


def is_diffusers(weights) -> bool:
    """Whether ``weights`` names a diffusers checkpoint: a folder with ``model_index.json``, ``config.json`` or
    ``unet/config.json`` (not a run folder of ``train``, whose ``config.json`` sits beside ``ema.pt`` or
    ``checkpoint.pt``), or (not an existing path, not ending in .pt) a hub id ``owner/name``."""
    p = Path(str(weights))
    if p.is_dir():
        if any((p / f).is_file() for f in ("ema.pt", "checkpoint.pt")):     # a run folder of `train`
            return False
        return any((p / f).is_file() for f in ("model_index.json", "config.json", "unet/config.json"))
    return not p.exists() and p.suffix != ".pt" and bool(HUB_ID.match(str(weights)))


def local_folder(path_or_hub_id) -> Path:
    """The local folder of a diffusers checkpoint: ``path_or_hub_id`` itself, or the hub id's snapshot, fetched
    (configs and weights only) into the Hugging Face cache; a failed fetch is a ValueError saying what was tried."""
    p = Path(str(path_or_hub_id))
    if p.is_dir():
        return p
    if p.exists() or not HUB_ID.match(str(path_or_hub_id)):
        raise ValueError(f"path_or_hub_id must be a diffusers folder or a hub id like 'google/ddpm-cifar10-32', "
                         f"got {str(path_or_hub_id)!r}")
    from huggingface_hub import snapshot_download

    # the configs and the safetensors weights; the .bin weights only where no safetensors file exists
    try:
        folder = Path(snapshot_download(str(path_or_hub_id),
                                        allow_patterns=["*.json", "*diffusion_pytorch_model.safetensors"]))
        if not any(folder.glob("**/diffusion_pytorch_model.safetensors")):
            folder = Path(snapshot_download(str(path_or_hub_id),
                                            allow_patterns=["*.json", "*diffusion_pytorch_model.bin"]))
    except Exception as e:  # offline, unknown repository, ...: say what was tried
        raise ValueError(f"{str(path_or_hub_id)!r} is not a local folder, and fetching it from the Hugging Face hub "
                         f"failed ({type(e).__name__}: {e})") from e
    return folder


def _layout(folder: Path) -> tuple[Path, Path]:
    """(the UNet's folder, the scheduler config) in a DDPMPipeline folder: subfolders unet/ and scheduler/, or
    everything at the root."""
    unet_dir = next((d for d in (folder / "unet", folder) if (d / "config.json").is_file()), None)
    scheduler = next((f for f in (folder / "scheduler" / "scheduler_config.json", folder / "scheduler_config.json")
                      if f.is_file()), None)
    if unet_dir is None or scheduler is None:
        missing = "unet/config.json (or config.json)" if unet_dir is None else \
            "scheduler/scheduler_config.json (or scheduler_config.json)"
        raise ValueError(f"{folder} is not a diffusers DDPM folder: no {missing}")
    return unet_dir, scheduler


__all__ = ["DiffusersEps", "load_diffusers", "scheduler_config", "is_diffusers", "paper_folder"]
