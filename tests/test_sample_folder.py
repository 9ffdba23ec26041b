"""minddim.sample_folder: samples as a folder of PNGs for the FID tools; exact round trip, resume after a kill,
shards that add up to one process's files, nothing half-written, clear errors."""

import os

import pytest
import torch

import minddim as md
from minddim.__main__ import main
from minddim.sample_folder import batch_generator, read_png, write_png, write_samples

SCHEDULE = md.Schedule.linear()
SHAPE = (3, 6, 5)


def eps_model(x, t):
    """A cheap stand-in for a network: smooth in x, different at every t."""
    return torch.tanh(x) * 0.5 + 1e-3 * t.reshape(-1, 1, 1, 1)


class KilledAfter:
    """eps_model that dies at its ``calls``-th evaluation, as a process killed in the middle of a batch."""

    def __init__(self, calls):
        self.left = calls

    def __call__(self, x, t):
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt
        return eps_model(x, t)


def _write(out, model=eps_model, **kw):
    args = dict(n=10, image_shape=SHAPE, batch=4, steps=5, eta=1.0, seed=7, progress=False)
    return write_samples(model, SCHEDULE, out, **{**args, **kw})


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _temporaries(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_png_round_trip_is_exact_for_gray_and_rgb(tmp_path):
    g = torch.Generator().manual_seed(0)
    for shape in ((1, 5, 7), (3, 8, 6)):
        image = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
        write_png(image, tmp_path / "a.png")
        assert torch.equal(read_png(tmp_path / "a.png"), image)
    from PIL import Image

    with Image.open(tmp_path / "a.png") as im:
        assert im.mode == "RGB" and im.size == (6, 8)   # PIL's size is (width, height)
    for bad in (torch.zeros(3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.uint8), torch.zeros(4, 4, dtype=torch.uint8)):
        with pytest.raises(ValueError, match="image must be a uint8 tensor"):
            write_png(bad, tmp_path / "b.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_files_are_the_samples_of_each_batch_from_its_own_generator(tmp_path):
    written = _write(tmp_path)
    assert [p.name for p in written] == [f"{i:05d}.png" for i in range(10)]
    assert sorted(os.listdir(tmp_path)) == [f"{i:05d}.png" for i in range(10)] + ["settings.json"]
    # batch 1 = images 4..7, redrawn here: x_T then the noise, from the generator of (seed 7, batch 1)
    g = batch_generator(7, 1)
    x = md.sample(eps_model, torch.randn((4, *SHAPE), generator=g), SCHEDULE, md.timesteps(1000, 5), 1.0, generator=g,
                  clip_x0=1.0)
    for k in range(4):
        assert torch.equal(read_png(tmp_path / f"{4 + k:05d}.png"), md.data.to_pixels(x[k]))
    # the last batch holds the remaining 2 images; batches differ
    assert not torch.equal(read_png(tmp_path / "00000.png"), read_png(tmp_path / "00004.png"))


def test_a_killed_run_resumes_to_the_same_files_and_leaves_no_temporary_file(tmp_path):
    reference = tmp_path / "whole"
    _write(reference)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):          # dies in batch 2 (images 8, 9) after batches 0 and 1 (5 steps each)
        _write(out, KilledAfter(12))
    assert sorted(p.name for p in out.glob("*.png")) == [f"{i:05d}.png" for i in range(8)]
    assert _temporaries(out) == []
    # what a SIGKILL in the middle of a write leaves, and a lost file of batch 0
    (out / ".00009.png.x1y2z3.tmp").write_bytes(b"\x89PNG half")
    (out / "00001.png").unlink()
    calls = []
    counting = lambda x, t: calls.append(1) or eps_model(x, t)   # noqa: E731
    written = _write(out, counting)
    assert [p.name for p in written] == ["00001.png", "00008.png", "00009.png"]
    assert len(calls) == 2 * 5                        # batches 0 and 2 sampled again, batch 1 skipped
    assert _files(out) == _files(reference) and _temporaries(out) == []
    assert _write(out, KilledAfter(0)) == []          # complete: nothing is sampled


def test_two_shards_write_what_one_process_writes(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    _write(one, n=11, batch=3)
    rank0 = _write(two, n=11, batch=3, rank=0, world=2)
    rank1 = _write(two, n=11, batch=3, rank=1, world=2)
    assert [p.name for p in rank0] == [f"{i:05d}.png" for i in (0, 1, 2, 6, 7, 8)]
    assert [p.name for p in rank1] == [f"{i:05d}.png" for i in (3, 4, 5, 9, 10)]
    assert _files(two) == _files(one)
    # a stale temporary of rank 1's batch survives rank 0's start and is removed by rank 1's
    (two / ".00004.png.abc.tmp").write_bytes(b"")
    _write(two, n=11, batch=3, rank=0, world=2)
    assert _temporaries(two) == [".00004.png.abc.tmp"]
    _write(two, n=11, batch=3, rank=1, world=2)
    assert _temporaries(two) == []


def test_bad_arguments_and_other_settings_are_refused(tmp_path):
    for kw, message in (({"n": 0}, "n must lie in"), ({"batch": 0}, "batch must lie in"),
                        ({"steps": 1001}, r"steps must lie in 1\.\.1000"), ({"eta": -1.0}, "eta must be"),
                        ({"rank": 2, "world": 2}, r"rank must be an int in 0\.\.1"),
                        ({"kind": "cubic"}, "kind must be one of")):
        with pytest.raises(ValueError, match=message):
            _write(tmp_path / "bad", **kw)
    with pytest.raises(ValueError, match="out must be a folder"):
        _write(tmp_path / "grid.png")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="out must be a folder"):
        _write(tmp_path / "file")
    _write(tmp_path / "run")
    with pytest.raises(ValueError, match=r"other settings \(eta, steps differ"):
        _write(tmp_path / "run", eta=0.0, steps=10)


def test_the_sample_command_writes_a_folder_from_the_shipped_mnist_unet(tmp_path, capsys):
    out = tmp_path / "mnist"
    assert main(["sample", "--weights", "mnist_unet", "--out", str(out), "--n", "3", "--batch", "2", "--steps", "2",
                 "--eta", "1", "--kind", "quadratic", "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["00000.png", "00001.png", "00002.png"]
    assert read_png(out / "00002.png").shape == (1, 28, 28)
    assert "wrote 3 PNG files" in capsys.readouterr().out
