"""DDPM's progressive code (sec. 4.3, Algorithms 3-4, Fig. 5): with relative-entropy coding, a receiver that has
x_T, ..., x_t has been sent L_T + sum_{s > t} L_{s-1} nats (the rate) and can estimate x_0 from x_t by eq. 15's
x0_hat (the distortion).  The rate reads the bound's terms from :func:`minddim.bound.vlb_terms`."""

from __future__ import annotations

import torch

from ._validate import check_tensor
from .diffusion import predict_x0, q_sample
from .schedules import Schedule, as_schedule


def progressive_rate(terms: torch.Tensor) -> torch.Tensor:
    """The rate of DDPM's progressive code (sec. 4.3, Algorithms 3-4): from the bound's terms L_0..L_T
    (the last axis of :func:`vlb_terms`' output, index k holding L_k), the codelength received by the
    time x_t is decoded, rate[t] = L_T + sum_{s > t} L_{s-1} = sum_{k >= t} L_k, for t = 0..T.

    Sending x_T costs L_T (the prior term), then each x_{s-1} given x_s costs L_{s-1} with relative-entropy
    coding; rate[T] = L_T and rate[0] is the whole bound (x_0 itself, through the decoder L_0). Same shape
    and units as ``terms``."""
    check_tensor(terms, "terms")
    if terms.dim() < 1 or terms.shape[-1] < 2:
        raise ValueError(f"terms must have a last axis L_0..L_T of length T + 1 >= 2, got shape {tuple(terms.shape)}")
    return terms.flip(-1).cumsum(-1).flip(-1)


def progressive_distortion(model, x0: torch.Tensor, schedule: Schedule, ts, *, generator: torch.Generator | None = None,
                           clip_x0: float | None = None, scale: float = 127.5, per_image: bool = False) -> torch.Tensor:
    """The distortion of DDPM's progressive code (sec. 4.3, Fig. 5): at each t in ``ts``, the RMSE
    sqrt(||x_0 - x0_hat||^2 / D) of the receiver's estimate x0_hat = predict_x0(x_t, model(x_t, t)) from
    x_t ~ q(x_t | x_0), averaged over the batch in squares, on the scale of ``scale`` (127.5: data in [-1, 1]
    measured in gray levels of [0, 255]). At t = 0 the receiver has x_0 itself: distortion 0. Returns a
    float64 tensor of shape (len(ts),); one model evaluation per t.

    ``per_image=True`` keeps each image's own RMSE sqrt(||x_0 - x0_hat||^2 / D) instead (DDPM's distortion of
    one image), shape (len(ts), batch): the spread over images, e.g. for DDPM's Table 4 beside ours. The batch
    figure is the root of the mean of their squares, from the same draws."""
    schedule = as_schedule(schedule)
    check_tensor(x0, "x0")
    if not isinstance(per_image, bool):
        raise TypeError(f"per_image must be True or False, got {type(per_image).__name__}")
    B = x0.shape[0]
    out = []
    with torch.no_grad():
        for t in ts:
            t = int(t)
            if t == 0:
                out.append(torch.zeros(B, dtype=torch.float64))
                continue
            x_t = q_sample(x0, t, schedule, generator=generator)
            x0_hat = predict_x0(x_t, model(x_t, torch.full((B,), t, dtype=torch.long, device=x0.device)),
                                t, schedule)
            if clip_x0 is not None:
                x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
            out.append(((x0_hat - x0).double().cpu() * scale).square().reshape(B, -1).mean(1))   # (B,) squared
    squares = torch.stack(out) if out else torch.zeros(0, B, dtype=torch.float64)
    return squares.sqrt() if per_image else squares.mean(1).sqrt()
