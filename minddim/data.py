"""Data sets. Two-dimensional toy sets (seeded), where every distribution can be drawn.

Each toy set is scaled to variances between about 0.5 and 2 per coordinate (``toy_data(name, 100000).var(0)``:
0.55 for two_moons' second coordinate up to 2.04 for eight_gaussians'), O(1) like images in [-1, 1], so the
DDPM schedule (alpha-bar_T about 4e-5: ``Schedule.linear().alpha_bars[-1]``) destroys it completely.  ``eight_gaussians`` and ``gaussian`` are
exact mixtures: their parameters come from :func:`toy_mixture`, so :mod:`minddim.analytic` gives the
Bayes-optimal model for them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import pickle
import shutil
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import torch

from ._io import atomic_path
from ._validate import check_positive_int
from .analytic import sample_mixture

TOY_SETS = ("swiss_roll", "two_moons", "eight_gaussians", "checkerboard", "gaussian")


def toy_mixture(name: str):
    """(weights, means, covs) in float64 of the toy sets that are Gaussian mixtures.

    - ``"eight_gaussians"``: eight equally weighted components on a circle of radius 2, std 0.2 each;
    - ``"gaussian"``: one correlated Gaussian, mean (0.5, -0.5), covariance [[1, 0.8], [0.8, 1]].
    """
    if name == "eight_gaussians":
        angle = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        means = 2.0 * torch.stack([angle.cos(), angle.sin()], 1)
        covs = (0.2**2) * torch.eye(2, dtype=torch.float64).expand(8, 2, 2).clone()
        return torch.full((8,), 1 / 8, dtype=torch.float64), means, covs
    if name == "gaussian":
        return (torch.ones(1, dtype=torch.float64), torch.tensor([[0.5, -0.5]], dtype=torch.float64),
                torch.tensor([[[1.0, 0.8], [0.8, 1.0]]], dtype=torch.float64))
    raise ValueError(f"name must be one of the exact mixtures ('eight_gaussians', 'gaussian'), got {name!r}")


def toy_data(name: str, n: int, seed: int | None = 0, generator: torch.Generator | None = None,
             dtype=torch.float32) -> torch.Tensor:
    """``n`` points of the toy set ``name`` (one of ``TOY_SETS``), shape (n, 2).

    Seeded: the same ``seed`` gives the same points; pass ``generator`` instead to continue a stream.
    """
    n = check_positive_int(n, "n")
    if name not in TOY_SETS:
        raise ValueError(f"name must be one of {TOY_SETS}, got {name!r}")
    g = generator if generator is not None else torch.Generator().manual_seed(0 if seed is None else int(seed))
    return _MAKERS[name](n, g).to(dtype)


def _swiss_roll(n, g):
    u = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g, dtype=torch.float64))
    x = torch.stack([u * u.cos(), u * u.sin()], 1) / 5.0
    return x + 0.05 * torch.randn(n, 2, generator=g, dtype=torch.float64)


def _two_moons(n, g):
    upper = torch.rand(n, generator=g) < 0.5
    a = math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    x = torch.where(upper[:, None], torch.stack([a.cos(), a.sin()], 1),
                    torch.stack([1 - a.cos(), 0.5 - a.sin()], 1))
    x = x + 0.05 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return (x - torch.tensor([0.5, 0.25], dtype=torch.float64)) * 1.5


def _checkerboard(n, g):
    # 8 of the 16 unit squares of [-2, 2]^2, alternating like a chess board
    cell = torch.randint(0, 8, (n,), generator=g)
    row = cell // 2
    col = 2 * (cell % 2) + (row % 2)
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    return torch.stack([col + u[:, 0], row + u[:, 1]], 1) - 2.0


def _mixture(name):
    def make(n, g):
        return sample_mixture(*toy_mixture(name), n, g)
    return make


_MAKERS = {"swiss_roll": _swiss_roll, "two_moons": _two_moons, "checkerboard": _checkerboard,
           "eight_gaussians": _mixture("eight_gaussians"), "gaussian": _mixture("gaussian")}


# -- image data sets: MNIST and CIFAR-10 ------------------------------------------------------------------
# Root: the ``root`` argument, else $MINDDIM_DATA, else ~/.cache/minddim. Layout under the root:
#   mnist/train-images-idx3-ubyte.gz (and the other three original files)
#   cifar10/cifar-10-python.tar.gz  (extracted next to it into cifar10/cifar-10-batches-py/)
# A missing file is downloaded from the usual public mirrors to a temporary file, checked against the
# published MD5 and only then renamed into place, so an interrupted or corrupt download never leaves a
# file that looks valid.


MNIST_FILES = {  # published MD5s (as in torchvision and in ../shared/data/MD5SUMS)
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/")
CIFAR10_FILE, CIFAR10_MD5 = "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"
CIFAR10_MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
CIFAR10_DIR = "cifar-10-batches-py"


class DataUnavailable(FileNotFoundError):
    """Data files are missing and could not be downloaded; the message says what to put where."""


def data_root(root=None) -> Path:
    """The data folder: ``root``, else $MINDDIM_DATA, else ~/.cache/minddim."""
    if root is not None:
        return Path(root)
    env = os.environ.get("MINDDIM_DATA")
    return Path(env) if env else Path.home() / ".cache" / "minddim"


def available(name: str, root=None) -> bool:
    """Whether the files of data set ``name`` (``"mnist"`` or ``"cifar10"``) are under the data root (without
    downloading or checking them: the loaders do that)."""
    files = {"mnist": MNIST_FILES, "cifar10": {CIFAR10_FILE: CIFAR10_MD5}}
    if name not in files:
        raise ValueError(f"name must be one of {sorted(files)}, got {name!r}")
    return all((data_root(root) / name / f).is_file() for f in files[name])


def md5sum(path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(urls, dest, md5: str, opener=urllib.request.urlopen) -> Path:
    """Fetch ``dest`` from the first of ``urls`` that works: into a temporary file beside it, MD5-checked,
    then renamed into place. A wrong checksum or an interrupted transfer leaves no file at ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        try:
            with atomic_path(dest, ".part") as tmp:
                with open(tmp, "wb") as out, opener(url) as response:
                    shutil.copyfileobj(response, out)
                got = md5sum(tmp)
                if got != md5:
                    raise ValueError(f"checksum mismatch for {url}: MD5 {got}, expected {md5}")
            return dest
        except Exception as e:  # try the next mirror; atomic_path has removed the partial file
            errors.append(f"{url}: {type(e).__name__}: {e}")
    raise DataUnavailable(f"could not download {dest.name}:\n  " + "\n  ".join(errors))


def _ensure(folder: Path, files: dict, mirrors, download_ok: bool, what: str, opener=urllib.request.urlopen):
    """Make sure every file of ``files`` (name -> MD5) is in ``folder`` with the right checksum."""
    missing = []
    for name, md5 in files.items():
        path = folder / name
        if path.exists() and md5sum(path) != md5:
            path.unlink()                      # a corrupt file is removed, never used
        if not path.exists():
            missing.append(name)
    if missing and download_ok:
        for name in list(missing):
            try:
                download([m + name for m in mirrors], folder / name, files[name], opener)
                missing.remove(name)
            except DataUnavailable:
                pass
    if missing:
        raise DataUnavailable(
            f"{what} files missing in {folder}: {', '.join(missing)}. Download them from {mirrors[0]} and put them "
            f"there, or set MINDDIM_DATA to a folder that holds {folder.name}/ with these files.")


def _read_idx(path: Path, magic: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        raise ValueError(f"{path.name} is not an IDX file of the expected kind (magic {got}, expected {magic})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(split: str = "train", root=None, download: bool = True, opener=urllib.request.urlopen):
    """MNIST as ``(images, labels)``: uint8 tensors of shape (N, 28, 28) and int64 labels (N,);
    N = 60000 for ``split="train"``, 10000 for ``"test"``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = data_root(root) / "mnist"
    _ensure(folder, MNIST_FILES, MNIST_MIRRORS, download, "MNIST", opener)
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(folder / f"{prefix}-images-idx3-ubyte.gz", 2051)
    labels = _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", 2049)
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def safe_extract(archive, dest) -> None:
    """Extract a tar archive into ``dest``, refusing absolute paths, '..', links and special files, so no
    member can land outside ``dest``; on refusal nothing is extracted."""
    dest = Path(dest).resolve()
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for m in members:
            target = (dest / m.name).resolve()
            if not (m.isfile() or m.isdir()):
                raise ValueError(f"refusing to extract {m.name!r}: links and special files are not allowed")
            if target != dest and dest not in target.parents:
                raise ValueError(f"refusing to extract {m.name!r}: it would land outside {dest}")
        for m in members:
            target = dest / m.name
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            with tar.extractfile(m) as src, atomic_path(target) as tmp, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)          # renamed into place whole: an interrupted run leaves no part


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles CIFAR-10's batches (dicts of bytes, lists and numpy arrays) and nothing else: any other
    global is refused, so no pickled code is ever executed."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"),
               ("_codecs", "encode")}  # how Python 3 writes bytes in protocol-2 pickles; a plain string codec

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _load_batch(path: Path):
    with open(path, "rb") as f:
        d = _ArrayUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    data = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return data, np.asarray(d[b"labels"], dtype=np.int64)


def load_cifar10(split: str = "train", root=None, download: bool = True, opener=urllib.request.urlopen):
    """CIFAR-10 as ``(images, labels)``: uint8 (N, 3, 32, 32) and int64 labels (N,); N = 50000 for
    ``split="train"``, 10000 for ``"test"``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = data_root(root) / "cifar10"
    _ensure(folder, {CIFAR10_FILE: CIFAR10_MD5}, CIFAR10_MIRRORS, download, "CIFAR-10", opener)
    batches = folder / CIFAR10_DIR
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    if not all((batches / n).exists() for n in names):
        safe_extract(folder / CIFAR10_FILE, folder)
    parts = [_load_batch(batches / n) for n in names]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(images), torch.from_numpy(labels)


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels 0..255 -> float32 in [-1, 1] (DDPM sec. 3.3: data scaled linearly to [-1, 1]), with a channel
    dimension: (N, 28, 28) becomes (N, 1, 28, 28)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8, got {images.dtype}")
    x = images.float() / 127.5 - 1
    return x.unsqueeze(1) if x.dim() == 3 else x


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] -> uint8 pixels 0..255 (clamped and rounded)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
