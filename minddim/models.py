"""Networks eps_theta(x_t, t).  A model is any callable ``model(x_t, t) -> eps_hat`` with ``t`` an integer
tensor of shape ``(B,)`` holding values in 1..T."""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer time steps (Vaswani et al., 2017, sec. 3.5; DDPM appendix B):
    [sin(t w_0), ..., sin(t w_{h-1}), cos(t w_0), ..., cos(t w_{h-1})], w_i = max_period^(-i/h), h = dim // 2.
    Returns shape (B, dim) in float32 (an odd ``dim`` gets a zero last column)."""
    if dim < 2:
        raise ValueError(f"dim must be >= 2, got {dim}")
    t = torch.as_tensor(t).reshape(-1).float()
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None] * freqs[None]
    emb = torch.cat([args.sin(), args.cos()], 1)
    return nn.functional.pad(emb, (0, 1)) if dim % 2 else emb


class MLP(nn.Module):
    """eps_theta for low-dimensional data: an input layer, ``depth`` residual blocks that each add a
    projection of the time embedding, and a linear read-out.  About 70k parameters at the defaults."""

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, emb_dim: int = 64):
        super().__init__()
        self.emb_dim = emb_dim
        self.time = nn.Sequential(nn.Linear(emb_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"t": nn.Linear(hidden, hidden),
                           "f": nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))})
            for _ in range(depth))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time(timestep_embedding(t.to(x_t.device), self.emb_dim))
        if temb.shape[0] == 1 and x_t.shape[0] != 1:
            temb = temb.expand(x_t.shape[0], -1)
        h = self.inp(x_t.float())
        for block in self.blocks:
            h = h + block["f"](h + block["t"](temb))
        return self.out(h).to(x_t.dtype)
