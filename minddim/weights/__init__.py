"""Shipped pretrained weights: ``pretrained(name)`` returns the model with its ``state_dict`` loaded with
``torch.load(..., weights_only=True)`` (no pickled code runs); ``provenance(name)`` the JSON beside it
(the exact command that trained it, steps, wall-clock, machine, the quality it reached)."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
AVAILABLE = {"eight_gaussians_mlp": "MLP", "mnist_classifier": "Classifier", "mnist_noisy_classifier": "NoisyClassifier",
             "mnist_unet": "UNet", "mnist_unet_cond": "UNet"}


def provenance(name: str) -> dict:
    if name not in AVAILABLE:
        raise ValueError(f"name must be one of {sorted(AVAILABLE)}, got {name!r}")
    return json.loads((HERE / f"{name}.json").read_text())


def pretrained(name: str) -> torch.nn.Module:
    """The shipped model ``name`` in eval mode."""
    import torch

    from .. import models

    meta = provenance(name)
    model = getattr(models, AVAILABLE[name])(**meta.get("model", {}))
    model.load_state_dict(torch.load(HERE / f"{name}.pt", weights_only=True, map_location="cpu"))
    return model.eval()
