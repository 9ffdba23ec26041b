"""Argument checks shared by the package: every bad input gets a ValueError or TypeError
that names the argument and the allowed range, before it reaches torch."""

from __future__ import annotations

import numbers

import torch


def as_time(t, T: int, name: str = "t", low: int = 1) -> torch.Tensor:
    """Return ``t`` as a long tensor after checking that it holds integers in ``low..T``.

    ``t`` may be a Python/numpy integer or an integer tensor of shape ``()`` or ``(B,)``.
    """
    t = _integer_tensor(t, name, f"integers in {low}..{T}", f" (time steps {low}..{T})", "")
    if t.numel() and (int(t.min()) < low or int(t.max()) > T):
        raise ValueError(f"{name} must lie in {low}..{T}, got values from {int(t.min())} to {int(t.max())}")
    return t


def check_batch(t: torch.Tensor, x: torch.Tensor, name: str = "t", x_name: str = "x") -> None:
    """A time tensor of shape (B,) must match the batch dimension of ``x``."""
    if t.dim() == 1 and (x.dim() == 0 or x.shape[0] != t.shape[0]):
        raise ValueError(
            f"{name} has shape {tuple(t.shape)} but {x_name} has shape {tuple(x.shape)}: "
            f"a per-sample {name} needs one entry per row of {x_name}"
        )


def check_tensor(x, name: str, finite: bool = True) -> torch.Tensor:
    """A floating-point tensor, optionally required to be finite."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if finite and not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_same_shape(a: torch.Tensor, b: torch.Tensor, a_name: str, b_name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{a_name} must have the shape of {b_name} {tuple(b.shape)}, got {tuple(a.shape)}")


def check_nonneg_real(v, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0, got {v!r}")
    v = float(v)
    if not v >= 0 or v != v or v == float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {v}")
    return v


def check_positive_int(v, name: str, high: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    v = int(v)
    if v < 1 or (high is not None and v > high):
        rng = f"1..{high}" if high is not None else ">= 1"
        raise ValueError(f"{name} must lie in {rng}, got {v}")
    return v


def check_finite_real(v, name: str) -> float:
    """A real number (not a bool) that is finite: a guidance weight or scale."""
    if isinstance(v, torch.Tensor) and v.numel() == 1 and v.dtype != torch.bool and v.dim() == 0:
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a finite real number, got {v!r}")
    v = float(v)
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be a finite real number, got {v}")
    return v


def check_labels(y, num_classes: int | None, name: str = "y", allow_null: bool = True) -> torch.Tensor:
    """Class labels as a long tensor of shape () or (batch,): integers in 0..K-1, or K (the null label, "no class",
    see :mod:`minddim.guidance`) when ``allow_null``.  ``y`` may be a Python integer or an integer
    tensor of shape () or (B,).  ``num_classes=None`` (not known yet, e.g. a classifier's) checks only that the
    labels are >= 0."""
    if num_classes is None:
        high, allowed = None, "0, 1, ... (class indices)"
    else:
        high = num_classes if allow_null else num_classes - 1
        allowed = f"0..{num_classes - 1}" + (f" (or {num_classes}, the null label)" if allow_null else "")
    of = f" of class labels {allowed}"
    y = _integer_tensor(y, name, f"class labels {allowed}", of, of)
    if y.numel() and (int(y.min()) < 0 or high is not None and int(y.max()) > high):
        raise ValueError(f"{name} must hold class labels {allowed}, got values from {int(y.min())} to {int(y.max())}")
    return y


def _integer_tensor(x, name: str, holds: str, of_dtype: str, of_type: str) -> torch.Tensor:
    """``x`` (a Python integer or an integer tensor of shape () or (B,)) as a long tensor; the messages say what
    it ``holds`` and, after "an integer tensor", what it is ``of``."""
    if isinstance(x, bool) or isinstance(x, torch.Tensor) and x.dtype == torch.bool:
        raise TypeError(f"{name} must hold {holds}, got a bool")
    if isinstance(x, numbers.Integral):
        return torch.tensor(int(x), dtype=torch.long)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be an int or an integer tensor{of_type}, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex():
        raise TypeError(f"{name} must be an integer tensor{of_dtype}, got dtype {x.dtype}")
    if x.dim() > 1:
        raise ValueError(f"{name} must have shape () or (batch,), got {tuple(x.shape)}")
    return x.long()


def labels_for(y: torch.Tensor, x: torch.Tensor, name: str = "y", x_name: str = "x_t") -> torch.Tensor:
    """Checked labels of shape () or (B,) as a (B,) tensor on x's device, one per row of ``x``."""
    B = x.shape[0]
    if y.dim() == 0:
        return y.to(x.device).expand(B)
    if y.shape[0] != B:
        raise ValueError(f"{name} has shape {tuple(y.shape)} but {x_name} has shape {tuple(x.shape)}: "
                         f"{name} needs one label per row of {x_name} (or a single label for all rows)")
    return y.to(x.device)
