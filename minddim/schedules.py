"""Noise schedules in the DDPM paper's 1-based time.

``Schedule.betas`` has shape ``(T+1,)`` with ``betas[0] = 0``, so that index ``t`` is the paper's
``beta_t`` for ``t = 1..T``; ``alpha_bars[0] = 1`` and ``alpha_bars[t]`` is DDPM's bar-alpha_t, which is
what the DDIM paper calls ``alpha_t``.  A 0-based code base's ``alphas_cumprod[k]`` is our
``alpha_bars[k + 1]``.  Everything is stored in float64 and cast to the dtype of ``x`` at use.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import torch

from ._validate import as_time, check_batch, check_positive_int


@dataclass(frozen=True, eq=False)
class Schedule:
    """A variance schedule beta_1..beta_T (DDPM sec. 2), stored with a leading ``beta_0 = 0``.

    Build one with :meth:`linear`, :meth:`cosine` or :meth:`from_betas`; those validate the betas.
    """

    betas: torch.Tensor

    def __post_init__(self):
        b = self.betas
        if not isinstance(b, torch.Tensor) or b.dim() != 1 or b.numel() < 2:
            raise ValueError("betas must be a 1-D tensor of shape (T+1,) with T >= 1; use Schedule.from_betas")
        if b[0] != 0:
            raise ValueError("betas[0] must be 0 (1-based time); use Schedule.from_betas(beta_1..beta_T)")
        _check_betas(b[1:])
        object.__setattr__(self, "betas", b.detach().to(torch.float64).cpu())

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def from_betas(cls, betas) -> "Schedule":
        """From beta_1..beta_T (length T, each in (0, 1)); prepends beta_0 = 0."""
        b = torch.as_tensor(betas, dtype=torch.float64)
        if b.dim() != 1 or b.numel() < 1:
            raise ValueError(f"betas must be a non-empty 1-D sequence beta_1..beta_T, got shape {tuple(b.shape)}")
        _check_betas(b)
        return cls(torch.cat([b.new_zeros(1), b]))

    @classmethod
    def linear(cls, T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02) -> "Schedule":
        """DDPM sec. 4: betas increasing linearly from ``beta_1`` to ``beta_T`` (1e-4 to 0.02 over T = 1000).

        The endpoints are not rescaled with T: a shorter chain with the same endpoints destroys less of
        the data (check ``alpha_bars[-1]``)."""
        T = check_positive_int(T, "T")
        return cls.from_betas(torch.linspace(beta_1, beta_T, T, dtype=torch.float64))

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> "Schedule":
        """Nichol & Dhariwal (2021) eq. 17: alpha-bar_t = f(t)/f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi/2),
        beta_t = 1 - alpha-bar_t / alpha-bar_{t-1}, clipped at ``max_beta``."""
        T = check_positive_int(T, "T")
        t = torch.arange(T + 1, dtype=torch.float64)
        f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bars = f / f[0]
        betas = (1 - alpha_bars[1:] / alpha_bars[:-1]).clamp(max=max_beta)
        return cls.from_betas(betas)

    # -- derived quantities (DDPM sec. 2, eq. 4) ---------------------------------------------
    @property
    def T(self) -> int:
        return self.betas.numel() - 1

    @property
    def alphas(self) -> torch.Tensor:
        """alpha_t = 1 - beta_t (alpha_0 = 1)."""
        return 1 - self.betas

    @property
    def alpha_bars(self) -> torch.Tensor:
        """bar-alpha_t = prod_{s<=t} alpha_s (bar-alpha_0 = 1). DDIM writes this as alpha_t."""
        return torch.cumprod(self.alphas, 0)

    @property
    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio bar-alpha_t / (1 - bar-alpha_t) (Kingma et al., 2021); infinite at t = 0."""
        ab = self.alpha_bars
        return ab / (1 - ab)

    @property
    def beta_tildes(self) -> torch.Tensor:
        """Posterior variance tilde-beta_t = (1 - bar-alpha_{t-1}) / (1 - bar-alpha_t) beta_t (DDPM eq. 7);
        tilde-beta_1 = 0 and index 0 holds 0."""
        ab = self.alpha_bars
        out = torch.zeros_like(ab)
        out[1:] = (1 - ab[:-1]) / (1 - ab[1:]) * self.betas[1:]
        return out

    def __len__(self) -> int:
        return self.T

    def __repr__(self) -> str:
        return (f"Schedule(T={self.T}, beta_1={self.betas[1]:.3g}, beta_T={self.betas[-1]:.3g}, "
                f"alpha_bar_T={self.alpha_bars[-1]:.3g})")

    # -- indexing -----------------------------------------------------------------------------
    def at(self, values: torch.Tensor, t, x: torch.Tensor, name: str = "t", low: int = 1) -> torch.Tensor:
        """``values[t]`` cast to ``x``'s dtype and device, shaped to broadcast against ``x``.

        ``t`` is an int or an integer tensor of shape ``()`` or ``(B,)`` with entries in ``low..T``; a
        ``(B,)`` time gives shape ``(B, 1, ..., 1)``.
        """
        t = as_time(t, self.T, name, low)
        check_batch(t, x, name)
        v = values[t.cpu()].to(dtype=x.dtype, device=x.device)
        if t.dim() == 1:
            v = v.reshape(-1, *([1] * (x.dim() - 1)))
        return v


def _check_betas(b: torch.Tensor) -> None:
    if not torch.isfinite(b).all():
        raise ValueError("betas must be finite; got NaN or inf")
    if (b <= 0).any() or (b >= 1).any():
        raise ValueError(f"betas must lie in the open interval (0, 1); got min {b.min():.3g}, max {b.max():.3g}")


def as_schedule(schedule) -> Schedule:
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a minddim Schedule, got {type(schedule).__name__}")
    return schedule


__all__ = ["Schedule"]
