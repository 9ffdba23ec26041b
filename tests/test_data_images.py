"""MNIST and CIFAR-10 loading, all offline: the real MNIST files, a small archive in CIFAR-10's own format
written here, checksums, interrupted downloads, archives that try to escape, and pickles that carry code."""

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import minddim.data as data

MNIST_HOME = os.environ.get("MINDDIM_DATA")
has_mnist = MNIST_HOME is not None and all((Path(MNIST_HOME) / "mnist" / f).exists() for f in data.MNIST_FILES)


@pytest.mark.skipif(not has_mnist, reason="the original MNIST files are not under $MINDDIM_DATA/mnist")
def test_mnist_from_the_real_files():
    x, y = data.load_mnist("train", download=False)
    assert x.shape == (60000, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.int64
    # the published class counts of MNIST's training and test sets
    assert y.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert (x.float() / 255).mean().item() == pytest.approx(0.1307, abs=1e-4)   # the usual normalization constant
    assert (x.float() / 255).std().item() == pytest.approx(0.3081, abs=1e-4)
    xt, yt = data.load_mnist("test", download=False)
    assert xt.shape == (10000, 28, 28)
    assert yt.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    scaled = data.to_model_range(xt[:10])
    assert scaled.shape == (10, 1, 28, 28) and scaled.min() == -1 and scaled.max() == 1
    assert torch.equal(data.to_pixels(scaled)[:, 0], xt[:10])


def test_offline_without_files_gives_one_clear_error(tmp_path):
    with pytest.raises(data.DataUnavailable) as info:
        data.load_mnist("train", root=tmp_path, download=False)
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path / "mnist") in msg and "MINDDIM_DATA" in msg


def test_a_file_with_the_wrong_checksum_is_refused_and_removed(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    bad = folder / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(b"not mnist")
    with pytest.raises(data.DataUnavailable, match="train-labels"):
        data.load_mnist("train", root=tmp_path, download=False)
    assert not bad.exists()


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_checks_md5_tries_mirrors_and_leaves_nothing_half_written(tmp_path):
    payload = b"x" * 100_000
    md5 = hashlib.md5(payload).hexdigest()
    calls = []

    def flaky(url):
        calls.append(url)
        if "first" in url:
            raise OSError("mirror down")
        return _Response(payload)

    path = data.download(["https://first/f", "https://second/f"], tmp_path / "f.bin", md5, opener=flaky)
    assert path.read_bytes() == payload and len(calls) == 2

    class Interrupted(_Response):
        def read(self, n=-1):
            if self.tell() > 50_000:
                raise ConnectionResetError("connection lost")
            return super().read(min(n, 10_000) if n and n > 0 else 10_000)

    with pytest.raises(data.DataUnavailable, match="connection lost"):
        data.download(["https://a/g"], tmp_path / "g.bin", md5, opener=lambda url: Interrupted(payload))
    with pytest.raises(data.DataUnavailable, match="checksum mismatch"):
        data.download(["https://a/h"], tmp_path / "h.bin", md5, opener=lambda url: _Response(payload[:-1] + b"y"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"], "no partial or corrupt file may remain"


def _cifar_archive(path: Path, n_train=4, n_test=3, extra_members=()):
    """A small tar.gz in CIFAR-10's own format: cifar-10-batches-py/data_batch_1..5 and test_batch, each a
    protocol-2 pickle of {b'data': uint8 (n, 3072), b'labels': [...]}, as the real archive has."""
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for name, n in [(f"data_batch_{i}", n_train) for i in range(1, 6)] + [("test_batch", n_test)]:
            d = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, n).tolist()}
            blob = pickle.dumps(d, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        for info, blob in extra_members:
            tar.addfile(info, io.BytesIO(blob) if blob is not None else None)
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_cifar10_loader_on_an_archive_in_cifars_format(tmp_path, monkeypatch):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    md5 = _cifar_archive(folder / data.CIFAR10_FILE)
    monkeypatch.setattr(data, "CIFAR10_MD5", md5)        # the synthetic archive's checksum, not the real one
    x, y = data.load_cifar10("train", root=tmp_path, download=False)
    assert x.shape == (20, 3, 32, 32) and x.dtype == torch.uint8 and y.shape == (20,) and y.dtype == torch.int64
    xt, yt = data.load_cifar10("test", root=tmp_path, download=False)
    assert xt.shape == (3, 3, 32, 32)
    assert data.to_model_range(xt).shape == (3, 3, 32, 32)


def test_an_archive_member_that_escapes_the_folder_is_refused(tmp_path):
    evil = tarfile.TarInfo("../escaped.txt")
    evil.size = 3
    archive = tmp_path / "a.tar.gz"
    _cifar_archive(archive, extra_members=[(evil, b"bad")])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(ValueError, match="outside"):
        data.safe_extract(archive, dest)
    assert not (tmp_path / "escaped.txt").exists() and not any(dest.iterdir())
    link = tarfile.TarInfo("cifar-10-batches-py/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    _cifar_archive(archive, extra_members=[(link, None)])
    with pytest.raises(ValueError, match="links"):
        data.safe_extract(archive, dest)


def test_pickled_code_in_a_batch_is_never_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        data._load_batch(path)
    assert not (tmp_path / "pwned").exists()


def test_bad_split_and_pixel_types():
    with pytest.raises(ValueError, match="split"):
        data.load_mnist("val")
    with pytest.raises(ValueError, match="split"):
        data.load_cifar10("validation")
    with pytest.raises(TypeError, match="uint8"):
        data.to_model_range(torch.zeros(2, 28, 28))


def test_available_says_whether_the_files_are_in_place(tmp_path):
    assert not data.available("mnist", root=tmp_path) and not data.available("cifar10", root=tmp_path)
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / data.CIFAR10_FILE).write_bytes(b"")
    assert data.available("cifar10", root=tmp_path)
    (tmp_path / "mnist").mkdir()
    for name in list(data.MNIST_FILES)[:3]:
        (tmp_path / "mnist" / name).write_bytes(b"")
    assert not data.available("mnist", root=tmp_path)             # all four files, or not available
    if has_mnist:
        assert data.available("mnist")
    with pytest.raises(ValueError, match="name"):
        data.available("imagenet")
