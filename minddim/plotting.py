"""Figures the notebooks share: 2-D scatter panels, reverse trajectories, animations, image grids; and
:func:`below`, how the notebooks print a quantity that is zero up to rounding."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


def below(value: float, bound: float = 1e-12) -> str:
    """``value`` (a difference that is zero up to rounding) as text that reads the same on every CPU: ``"< 1e-12"``
    when ``|value| < bound``. Rounding noise differs from one CPU's kernels to another's (AVX2, AVX-512, ARM sum in
    different orders), so its digits are never printed; a value at or above ``bound`` is printed with its digits and
    "NOT below", so that a real discrepancy shows (and no longer matches a stored output)."""
    value, bound = abs(float(value)), float(bound)
    if not bound > 0:
        raise ValueError(f"bound must be positive, got {bound}")
    text = f"{bound:.0e}".replace("e-0", "e-")
    return f"< {text}" if value < bound else f"{value:.1e} (NOT below {text})"


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _square_axes(ax, lim: float, ylabel: bool = True):
    """Equal 2-D axes on [-lim, lim]^2 with three ticks and the coordinates named as in the notebooks."""
    tick = float(np.floor(0.9 * lim))
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[-tick, 0, tick], yticks=[-tick, 0, tick], aspect="equal")
    ax.tick_params(labelsize=7)
    ax.set_xlabel("$x^{(1)}$", fontsize=8)
    if ylabel:
        ax.set_ylabel("$x^{(2)}$", fontsize=8)


def scatter_panels(points, titles=None, lim: float = 3.5, size: float = 2.2, s: float = 1.0, color="C0",
                   reference=None, suptitle: str | None = None):
    """One square scatter panel per entry of ``points`` (each (n, 2)), side by side, on the same labelled
    axes; ``reference`` (n, 2) is drawn in light grey behind every panel. Returns the figure."""
    n = len(points)
    fig, axes = plt.subplots(1, n, figsize=(size * n, size), squeeze=False, sharey=True)
    for i, (ax, p) in enumerate(zip(axes[0], points)):
        if reference is not None:
            r = _np(reference)
            ax.scatter(r[:, 0], r[:, 1], s=s, color="0.85", rasterized=True)
        p = _np(p)
        ax.scatter(p[:, 0], p[:, 1], s=s, color=color, rasterized=True)
        _square_axes(ax, lim, ylabel=i == 0)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def trajectories(xs, ax=None, n: int = 30, lim: float = 3.5, reference=None, title: str | None = None):
    """Draw the paths of ``n`` samples through a trajectory ``xs`` of shape (steps, batch, 2): start
    (x_T) in grey, end (x_0) in red. Returns the axes."""
    xs = _np(xs)[:, :n]
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    if reference is not None:
        r = _np(reference)
        ax.scatter(r[:, 0], r[:, 1], s=1, color="0.85", rasterized=True)
    for k in range(xs.shape[1]):
        ax.plot(xs[:, k, 0], xs[:, k, 1], lw=0.6, color="C0", alpha=0.7)
    ax.scatter(xs[0, :, 0], xs[0, :, 1], s=6, color="0.4", label="$x_T$", zorder=3)
    ax.scatter(xs[-1, :, 0], xs[-1, :, 1], s=6, color="C3", label="$x_0$", zorder=3)
    _square_axes(ax, lim)
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=7, markerscale=2)
    return ax


def animate_points(frames, titles=None, lim: float = 3.5, interval: int = 120, size: float = 3.0):
    """An animation of 2-D point clouds (one (n, 2) array per frame) as a matplotlib ``FuncAnimation``;
    show it in a notebook with ``IPython.display.HTML(anim.to_jshtml())``."""
    from matplotlib import animation

    frames = [_np(f) for f in frames]
    fig, ax = plt.subplots(figsize=(size, size))
    sc = ax.scatter(frames[0][:, 0], frames[0][:, 1], s=1)
    _square_axes(ax, lim)
    title = ax.set_title(titles[0] if titles else "", fontsize=9)

    def update(i):
        sc.set_offsets(frames[i])
        if titles:
            title.set_text(titles[i])
        return sc, title

    anim = animation.FuncAnimation(fig, update, frames=len(frames), interval=interval, blit=False)
    plt.close(fig)
    return anim


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """Images (N, C, H, W) in [-1, 1] tiled into one uint8 array (rows, cols, C) with ``pad`` pixels between."""
    x = ((images.detach().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    N, C, H, W = x.shape
    nrow = nrow or int(np.ceil(np.sqrt(N)))
    ncol = int(np.ceil(N / nrow))
    grid = np.full((ncol * (H + pad) + pad, nrow * (W + pad) + pad, C), 255, dtype=np.uint8)
    for k in range(N):
        r, c = divmod(k, nrow)
        grid[pad + r * (H + pad): pad + r * (H + pad) + H, pad + c * (W + pad): pad + c * (W + pad) + W] = \
            x[k].permute(1, 2, 0).numpy()
    return grid


def show_images(images: torch.Tensor, title: str, nrow: int | None = None, ax=None):
    """Draw :func:`image_grid` of images (N, C, H, W) in [-1, 1] on ``ax`` (a new 4x4-inch figure when omitted):
    gray levels 0..255 for one channel, RGB for three; ``title`` above, no axes (pixels have no units). Returns
    the axes."""
    grid = image_grid(images, nrow)
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    if grid.shape[-1] == 1:
        ax.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(grid)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return ax


def save_image_grid(images: torch.Tensor, path, nrow: int | None = None) -> None:
    """Write :func:`image_grid` as a PNG (via a temporary file renamed into place)."""
    from ._io import atomic_path

    grid = image_grid(images, nrow)
    with atomic_path(path, ".png") as tmp:
        plt.imsave(tmp, grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray" if grid.shape[-1] == 1 else None,
                   vmin=0, vmax=255)
