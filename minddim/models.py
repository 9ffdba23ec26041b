"""Networks eps_theta(x_t, t).  A model is any callable ``model(x_t, t) -> eps_hat`` with ``t`` an integer
tensor of shape ``(B,)`` holding values in 1..T."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validate import check_labels, labels_for


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer time steps (DDPM appendix B: "the Transformer sinusoidal position
    embedding"): Vaswani et al.'s (2017, sec. 3.5) sines and cosines, here in two blocks rather than alternating
    columns, [sin(t w_0), ..., sin(t w_{h-1}), cos(t w_0), ..., cos(t w_{h-1})], w_i = max_period^(-i/h), h = dim // 2.
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
    projection of the time embedding, and a linear read-out.  174,082 parameters at the defaults
    (``sum(p.numel() for p in MLP().parameters())``).  ``learned_variance=True`` doubles the read-out's outputs to
    ``2 * dim`` columns, the prediction and log sigma_theta^2 (DDPM sec. 4.2's learned diagonal Sigma;
    :func:`minddim.parameterization.split_variance`)."""

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, emb_dim: int = 64,
                 learned_variance: bool = False):
        super().__init__()
        self.emb_dim = emb_dim
        self.time = nn.Sequential(nn.Linear(emb_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"t": nn.Linear(hidden, hidden),
                           "f": nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))})
            for _ in range(depth))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * dim if learned_variance else dim))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time(timestep_embedding(t.to(x_t.device), self.emb_dim))
        if temb.shape[0] == 1 and x_t.shape[0] != 1:
            temb = temb.expand(x_t.shape[0], -1)
        h = self.inp(x_t.float())
        for block in self.blocks:
            h = h + block["f"](h + block["t"](temb))
        return self.out(h).to(x_t.dtype)


class ResidualBlock(nn.Module):
    """DDPM's residual block: GroupNorm, SiLU, 3x3 conv, plus a projection of the time embedding, then
    GroupNorm, SiLU, dropout, 3x3 conv; a 1x1 conv on the skip path when the width changes."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(min(groups, c_in), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(min(groups, c_out), c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        h = h + self.emb(nn.functional.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(nn.functional.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the spatial positions, with a residual connection (DDPM appendix B)."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(min(groups, channels), channels)
        self.qkv, self.proj = nn.Conv2d(channels, 3 * channels, 1), nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).unbind(1)
        attn = torch.softmax(q.transpose(1, 2) @ k / C**0.5, dim=-1)           # (B, HW, HW)
        return x + self.proj((v @ attn.transpose(1, 2)).reshape(B, C, H, W))


class UNet(nn.Module):
    """eps_theta for images: DDPM's U-Net (appendix B) scaled for a CPU.

    ``base`` channels, multiplied by ``mults`` at each resolution (one downsampling by 2 between levels),
    ``num_res`` residual blocks per level, self-attention at the lowest resolution, a sinusoidal time
    embedding through a 2-layer MLP. Works for 1 or 3 channels and 28x28 or 32x32 images (28 -> 14 -> 7
    with the default three levels).

    Speed, as measured by ``python benchmarks/run.py --only unet`` (benchmarks/README.md, section 8): the weights
    and activations live in the channels-last memory layout, in which the forward pass ran faster at batch 128 (1 thread:
    360 against 300 img/s; at batch 16 it was slower, 303 against 330); and in eval mode without gradients (sampling, encoding, scoring) a batch of
    more than ``chunk`` rows is pushed through the network ``chunk`` rows at a time, since per image a pass over a
    large batch was slower than over small ones (1 thread, batch 500: 339 img/s whole against 371 in chunks of 128;
    a likely cause, that a large batch's activations no longer fit in the CPU's caches, no run isolates). Neither changes what a row
    computes: the network treats every row on its own (GroupNorm normalizes within an image), so the output is the
    same up to float32 rounding, and nothing random happens inside it. ``chunk = None`` turns the splitting off.

    Classes: ``num_classes=K`` makes it a class-conditional eps-model ``model(x_t, t, y)`` (:mod:`minddim.guidance`)
    with ``y`` a (B,) integer tensor (or one int) of classes 0..K-1, or K, the null label ("no class", what label
    dropout trains, Ho & Salimans 2022, sec. 3.2); ``model(x_t, t)`` is ``y = K``.  A class embedding ``label``
    (an ``nn.Embedding`` of K + 1 rows, the last the null label's) is added to the time embedding after its MLP,
    so that every residual block sees it through its projection of the embedding (the simplest form; Dhariwal &
    Nichol 2021, sec. 3.1, feed the class into their normalization layers instead). It is initialised to
    **zero**, so an unconditional checkpoint loaded into it (:meth:`load_unconditional_state_dict`) predicts
    exactly what it predicted before, for every label, and fine-tuning starts from the unconditional model.
    ``num_classes=None`` (the default) is the unconditional U-Net, unchanged (the shipped ``mnist_unet``).
    """

    chunk: int | None = 128

    def __init__(self, channels: int = 1, base: int = 32, mults=(1, 2, 2), num_res: int = 1, groups: int = 8,
                 dropout: float = 0.0, num_classes: int | None = None):
        super().__init__()
        self.config = {"channels": channels, "base": base, "mults": list(mults), "num_res": num_res,
                       "groups": groups, "dropout": dropout}
        emb_dim = 4 * base
        self.base = base
        self.time = nn.Sequential(nn.Linear(base, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.num_classes = None
        if num_classes is not None:
            if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
                raise ValueError(f"num_classes must be an int >= 1 (or None: unconditional), got {num_classes!r}")
            self.num_classes = num_classes
            self.config["num_classes"] = num_classes
            self.label = nn.Embedding(num_classes + 1, emb_dim)
            nn.init.zeros_(self.label.weight)
        self.inp = nn.Conv2d(channels, base, 3, padding=1)
        widths = [base * m for m in mults]
        self.down, skips, c = nn.ModuleList(), [base], base
        for level, w in enumerate(widths):
            for _ in range(num_res):
                self.down.append(ResidualBlock(c, w, emb_dim, groups, dropout))
                c = w
                skips.append(c)
            if level < len(widths) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([ResidualBlock(c, c, emb_dim, groups, dropout), SelfAttention(c, groups),
                                  ResidualBlock(c, c, emb_dim, groups, dropout)])
        self.up = nn.ModuleList()
        for level, w in reversed(list(enumerate(widths))):
            for _ in range(num_res + 1):
                self.up.append(ResidualBlock(c + skips.pop(), w, emb_dim, groups, dropout))
                c = w
            if level > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)))
        self.out = nn.Sequential(nn.GroupNorm(min(groups, c), c), nn.SiLU(), nn.Conv2d(c, channels, 3, padding=1))
        self.to(memory_format=torch.channels_last)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, y=None) -> torch.Tensor:
        B, chunk = x_t.shape[0], self.chunk
        if self.num_classes is None:
            if y is not None:
                raise ValueError("y: this UNet is unconditional (built without num_classes), it takes no class "
                                 "labels; build UNet(..., num_classes=K) for a class-conditional model")
        else:
            y = labels_for(check_labels(self.num_classes if y is None else y, self.num_classes, "y"), x_t)
        if chunk is None or B <= chunk or self.training or torch.is_grad_enabled():
            return self._forward(x_t, t, y)
        t = torch.as_tensor(t, device=x_t.device).reshape(-1)
        t = t.expand(B) if t.numel() == 1 else t
        return torch.cat([self._forward(x_t[i:i + chunk], t[i:i + chunk], None if y is None else y[i:i + chunk])
                          for i in range(0, B, chunk)])

    def load_unconditional_state_dict(self, state_dict) -> None:
        """Load an unconditional U-Net's ``state_dict`` (same config, no ``num_classes``) into this conditional one:
        every weight but the class embedding, which is set to zero, so that the model predicts exactly what the
        unconditional one did, whatever the label. Any other missing or unexpected key is an error."""
        if self.num_classes is None:
            raise ValueError("load_unconditional_state_dict is for a UNet built with num_classes; "
                             "use load_state_dict for an unconditional one")
        try:
            result = self.load_state_dict(state_dict, strict=False)
        except RuntimeError as e:                       # shapes that differ: another config
            raise ValueError(f"state_dict must be an unconditional UNet's of the same config: {e}") from None
        if list(result.missing_keys) != ["label.weight"] or result.unexpected_keys:
            raise ValueError(f"state_dict must be an unconditional UNet's of the same config: missing "
                             f"{result.missing_keys}, unexpected {result.unexpected_keys} (expected only "
                             f"'label.weight' missing)")
        with torch.no_grad():
            self.label.weight.zero_()

    def _forward(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time(timestep_embedding(t.to(x_t.device), self.base))
        if emb.shape[0] == 1 and x_t.shape[0] != 1:
            emb = emb.expand(x_t.shape[0], -1)
        if y is not None:
            emb = emb + self.label(y)
        h = self.inp(x_t.float())          # channels-last weights give channels-last activations
        hs = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ResidualBlock) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, emb) if isinstance(layer, ResidualBlock) else layer(h)
        for layer in self.up:
            if isinstance(layer, ResidualBlock):
                skip = hs.pop()
                if skip.shape[-2:] != h.shape[-2:]:      # 7 -> 14 upsampling of odd sizes
                    h = nn.functional.interpolate(h, size=skip.shape[-2:], mode="nearest")
                h = layer(torch.cat([h, skip], 1), emb)
            else:
                h = layer(h)
        return self.out(h).to(x_t.dtype, memory_format=torch.contiguous_format)


class Classifier(nn.Module):
    """A small MNIST classifier whose penultimate layer gives the features of the "MNIST FID": two 3x3 conv
    blocks (32 and 64 channels, each followed by 2x2 max-pooling), a 128-unit hidden layer (the features) and
    a linear read-out to 10 classes. Input: images in [-1, 1] of shape (N, 1, 28, 28)."""

    def __init__(self, features: int = 128):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, features), nn.ReLU())
        self.head = nn.Linear(features, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class NoisyClassifier(nn.Module):
    """A noise-aware classifier ``classifier(x_t, t) -> logits`` for classifier guidance (Dhariwal & Nichol 2021,
    sec. 4, which trains a classifier p_phi(y | x_t, t) on noisy images x_t; :func:`minddim.classifier_guidance`).

    Three 3x3 conv blocks (``base``, 2 ``base``, 2 ``base`` channels; GroupNorm, SiLU, each adding a projection of
    the sinusoidal time embedding as the U-Net's residual blocks do), 2x2 average pooling after the first two
    (28 -> 14 -> 7), global average pooling and a linear read-out to ``num_classes`` logits. Smooth throughout
    (SiLU and average pooling, no ReLU or max-pooling), so that grad_x log p(y | x_t, t), which guidance adds to
    the score, is a smooth field. Input: x_t on the scale of :func:`minddim.q_sample` of images in [-1, 1], shape
    (N, C, H, W), and integer t in 1..T. Trained by ``python -m minddim train-classifier --noisy``
    (:func:`minddim.commands.train_noisy_classifier`)."""

    def __init__(self, channels: int = 1, num_classes: int = 10, base: int = 32, groups: int = 8):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
        self.config = {"channels": channels, "num_classes": num_classes, "base": base, "groups": groups}
        self.num_classes = num_classes
        self.base = base
        emb_dim = 4 * base
        self.time = nn.Sequential(nn.Linear(base, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        widths = [base, 2 * base, 2 * base]
        self.convs, self.embs, self.norms = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        c = channels
        for w in widths:
            self.convs.append(nn.Conv2d(c, w, 3, padding=1))
            self.embs.append(nn.Linear(emb_dim, w))
            self.norms.append(nn.GroupNorm(min(groups, w), w))
            c = w
        self.head = nn.Linear(c, num_classes)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = timestep_embedding(torch.as_tensor(t).to(x_t.device), self.base).to(self.time[0].weight.dtype)
        emb = nn.functional.silu(self.time(emb))
        if emb.shape[0] == 1 and x_t.shape[0] != 1:
            emb = emb.expand(x_t.shape[0], -1)
        h = x_t.to(self.head.weight.dtype)
        for i, (conv, proj, norm) in enumerate(zip(self.convs, self.embs, self.norms)):
            h = conv(h) + proj(emb).to(h.dtype)[:, :, None, None]
            h = nn.functional.silu(norm(h))
            if i < len(self.convs) - 1:
                h = nn.functional.avg_pool2d(h, 2)
        return self.head(h.mean((2, 3)))
