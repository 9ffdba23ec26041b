"""Training and sampling under torchrun: 2 CPU processes (gloo), launched for real, against 1 process.

The runs train a tiny U-Net (base 16, two levels) on a synthetic archive in CIFAR-10's format, launched as
``python -m torch.distributed.run --nproc_per_node=2 -m tests.minddim_on_a_synthetic_archive train ...``: that
module is ``python -m minddim`` with the synthetic archive's checksum accepted (and, for the failure test, one
rank made to raise). Base 16 rather than 8: with 8 channels and 8 groups every GroupNorm group is one channel,
so the biases in front of a GroupNorm get a gradient that is exactly zero in exact arithmetic; its rounding
noise differs between 1 and 2 processes and Adam scales any nonzero gradient to a step of size ~lr, so those
weights (which do not change the network's output) would differ by ~lr while everything else agrees to 1e-6.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

import minddim as md
from minddim import distributed
from minddim.__main__ import main
from tests.test_data_images import _cifar_archive

ROOT = Path(__file__).resolve().parents[1]
STEPS, FAIL_AT = 6, 5              # a 6-step run; the killed one dies in step 5, after the checkpoint of step 4
TOLERANCE = 1e-5                   # max abs difference of the weights, 2 processes against 1 (measured: ~1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A data root holding a synthetic CIFAR-10 archive (20 training images), and its MD5."""
    root = tmp_path_factory.mktemp("data")
    (root / "cifar10").mkdir()
    return root, _cifar_archive(root / "cifar10" / md.data.CIFAR10_FILE, n_train=4)


def _train_args(root, out, steps=STEPS, *extra):
    return ["train", "--data", "cifar10", "--root", str(root), "--out", str(out), "--steps", str(steps),
            "--batch-size", "4", "--base", "16", "--mults", "1,2", "--checkpoint-every", "2", *extra]


def _torchrun(args, md5, *options, **env):
    """``python -m minddim ARGS`` on 2 processes under torchrun (one torch thread each)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           *options, "-m", "tests.minddim_on_a_synthetic_archive", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MINDDIM_TEST_CIFAR10_MD5": md5, **env}
    env.pop("WORLD_SIZE", None)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def runs(archive, tmp_path_factory, monkeypatch_module):
    """The same 6-step run on 1 process (in this one) and on 2 processes (torchrun)."""
    root, md5 = archive
    folder = tmp_path_factory.mktemp("runs")
    monkeypatch_module.setattr(md.data, "CIFAR10_MD5", md5)
    assert main(_train_args(root, folder / "one", STEPS, "--resume")) == 0    # --resume in a fresh folder: a fresh run
    done = _torchrun(_train_args(root, folder / "two"), md5)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote") == 1, "rank 0 alone reports"
    return folder / "one", folder / "two"


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _checkpoint(run):
    return torch.load(run / "checkpoint.pt", weights_only=True)


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_two_processes_follow_the_single_process_run_on_the_same_global_batch(runs):
    one, two = runs
    c1, c2 = _checkpoint(one), _checkpoint(two)
    assert c1["step"] == c2["step"] == STEPS and len(c2["losses"]) == STEPS
    # the logged loss is the global batch's (the mean over the two processes' halves)
    assert c2["losses"] == pytest.approx(c1["losses"], abs=1e-6)
    assert _max_diff(c1["model"], c2["model"]) < TOLERANCE
    assert _max_diff(c1["ema"], c2["ema"]) < TOLERANCE
    e1, e2 = (torch.load(r / "ema.pt", weights_only=True) for r in runs)
    assert _max_diff(e1, e2) < TOLERANCE
    # the generator has made the same draws: both runs would continue on the same minibatches
    assert torch.equal(c1["data_rng"], c2["data_rng"])
    # rank 0 wrote every file, once; the JSON records the world size and the launch command
    meta = json.loads((two / "ema.json").read_text())
    assert meta["world_size"] == 2 and json.loads((one / "ema.json").read_text())["world_size"] == 1
    assert meta["command"].startswith("torchrun --nnodes 1 --nproc_per_node 2 -m minddim train --data cifar10")
    assert json.loads((two / "config.json").read_text())["sessions"][-1]["world_size"] == 2
    assert (two / "loss.csv").read_text() == (one / "loss.csv").read_text()
    assert sorted(p.name for p in two.iterdir()) == ["checkpoint.pt", "config.json", "ema.json", "ema.pt", "loss.csv"]


def test_a_failing_rank_stops_the_job_and_a_resumed_run_ends_where_the_uninterrupted_one_ends(
        archive, runs, tmp_path, monkeypatch):
    root, md5 = archive
    run = tmp_path / "killed"
    failed = _torchrun(_train_args(root, run), md5, MINDDIM_TEST_FAIL=f"1:{FAIL_AT}")
    assert failed.returncode != 0
    # torchrun's summary names the failed rank as the root cause, with the error and our note
    root_cause = failed.stderr.split("Root Cause")[-1]
    assert "rank      : 1 (local_rank: 1)" in root_cause, failed.stderr[-3000:]
    assert f"injected failure at step {FAIL_AT}" in root_cause and "(in the process of rank 1 of 2)" in root_cause
    # the checkpoint of step 4 is whole, nothing half-written beside it, no final weights
    assert _checkpoint(run)["step"] == FAIL_AT - 1
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "config.json", "loss.csv"]
    shutil.copytree(run, tmp_path / "copy")
    # resumed under torchrun (the same command with --resume), it ends where the uninterrupted run ends, bit for bit.
    # Not through torchrun --max-restarts: on this machine (torch 2.13, gloo) the restarted processes failed to
    # connect to each other in 7 of 11 tries (pytorch/pytorch#167288 reports the same with NCCL)
    resumed = _torchrun(_train_args(root, run, STEPS, "--resume"), md5)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight, again = _checkpoint(runs[1]), _checkpoint(run)
    assert again["losses"] == straight["losses"]
    for key in ("model", "ema"):
        assert all(torch.equal(straight[key][k], again[key][k]) for k in straight[key])
    assert [s["finished_step"] for s in json.loads((run / "config.json").read_text())["sessions"]] == [STEPS]
    # and on 1 process: the same global batches, so the same run up to rounding
    monkeypatch.setattr(md.data, "CIFAR10_MD5", md5)
    assert main(_train_args(root, tmp_path / "copy", STEPS, "--resume")) == 0
    alone = _checkpoint(tmp_path / "copy")
    assert alone["losses"] == pytest.approx(straight["losses"], abs=1e-6)
    assert _max_diff(alone["model"], straight["model"]) < TOLERANCE


@pytest.fixture
def one_thread():
    """torch on one thread in this process too, as in the launched ones (OMP_NUM_THREADS=1): the network's CPU
    kernels may round differently with another thread count, and the comparison below is pixel for pixel."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_sample_on_two_processes_returns_the_single_process_images(runs, tmp_path, one_thread):
    """5 images on 2 processes: rank 0 runs the network on rows 0-2, rank 1 on rows 3-4; the rows are gathered."""
    from minddim.commands import load_unet
    from minddim.plotting import save_image_grid

    weights = runs[0] / "ema.pt"
    # --num-samples, not --n: torchrun's own parser would take --n for an abbreviation of its options
    args = ["sample", "--weights", str(weights), "--num-samples", "5", "--steps", "3", "--eta", "1", "--seed", "5"]
    done = _torchrun(args + ["--out", str(tmp_path / "two.png")], "unused")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote") == 1
    two = plt.imread(tmp_path / "two.png")
    # one process drawing x_T and the noise as `sample` does, the network on the same two shards: pixel for pixel
    model, schedule = load_unet(weights), md.Schedule.linear()
    g = torch.Generator().manual_seed(5)
    x_T = torch.randn(5, 3, 32, 32, generator=g)
    after_x_T = g.get_state()
    shards = [md.sample(model, x_T, schedule, md.timesteps(schedule.T, 3), 1.0, clip_x0=1.0, rows=rows,
                        generator=torch.Generator().set_state(after_x_T)) for rows in (slice(0, 3), slice(3, 5))]
    save_image_grid(torch.cat(shards), tmp_path / "shards.png")
    assert (plt.imread(tmp_path / "shards.png") == two).all()
    # the whole batch on one process (the network on 5 rows at once): the same images up to rounding, which
    # moves a pixel by at most one level of 255 (the network's kernels depend on the batch size, 8e-6 here)
    assert main(args + ["--out", str(tmp_path / "one.png")]) == 0
    one = plt.imread(tmp_path / "one.png")
    assert one.shape == two.shape == (2 * 34 + 2, 3 * 34 + 2, 4)
    assert abs(one - two).max() <= 1.01 / 255 and (one == two).mean() > 0.999
    other = md.commands.sample_images(weights, tmp_path / "other.png", n=5, steps=3, eta=1.0, seed=6, progress=False)
    assert abs(plt.imread(tmp_path / "other.png") - one).max() > 0.1, "a different seed draws different images"
    assert other.shape == (5, 3, 32, 32)


# --- the pieces, in one process ---------------------------------------------------------------------------------

def test_each_rank_keeps_its_contiguous_share_of_the_global_batch(monkeypatch):
    monkeypatch.setattr(distributed, "world", lambda: distributed.World(1, 2, 1))
    assert distributed.shard(8) == slice(4, 8)
    with pytest.raises(ValueError, match=r"batch_size \(5\).*processes \(2\)"):
        distributed.shard(5)
    with pytest.raises(ValueError, match=r"batch_size \(5\).*processes \(2\)"):
        md.train(md.MLP(), torch.zeros(10, 2), md.Schedule.linear(), steps=1, batch_size=5, progress=False)
    # rows to sample: any batch, the first ranks one row more; together every row once, in order
    monkeypatch.setattr(distributed, "world", lambda: distributed.World(0, 3, 0))
    rows = [distributed.rows_of(7, r) for r in range(3)]
    assert rows == [slice(0, 3), slice(3, 5), slice(5, 7)]
    assert distributed.rows_of(7) == rows[0]


def test_one_process_is_the_plain_single_process_path():
    assert not distributed.launched() and distributed.world() == (0, 1, 0) and distributed.is_writer()
    assert distributed.shard(5) == slice(0, 5)
    assert distributed.launch_command("python -m minddim train") == "python -m minddim train"
    with distributed.process_group("cpu") as device:
        assert device == torch.device("cpu") and not torch.distributed.is_initialized()
    x = torch.randn(3, 2)
    assert distributed.gather_rows(x, 3) is x and distributed.mean_over_processes(x) is x


def _samples(model, x_T, eta, rows=None):
    s = md.Schedule.linear()
    return md.sample(model, x_T, s, md.timesteps(s.T, 4), eta, generator=torch.Generator().manual_seed(2),
                     clip_x0=1.0, rows=rows)


@pytest.mark.parametrize("eta", [0.0, 1.0, "sigma_hat"])
def test_the_rows_of_a_batch_sampled_apart_are_the_whole_batch_bit_for_bit(eta):
    x_T = torch.randn(7, 1, 28, 28, generator=torch.Generator().manual_seed(1))

    def rowwise(x, t):                               # a network that computes every row on its own
        return torch.tanh(x) * (t.float() / 1000).reshape(-1, 1, 1, 1)

    whole = _samples(rowwise, x_T, eta)
    parts = [_samples(rowwise, x_T, eta, slice(a, b)) for a, b in [(0, 3), (3, 5), (5, 7)]]
    assert torch.equal(torch.cat(parts), whole)
    # the U-Net, on equal halves: on this CPU each row comes out as in the full batch
    torch.manual_seed(0)
    net = md.UNet(1, base=16, mults=(1, 2), num_res=1, groups=4).eval()
    x_T = x_T[:6].repeat(2, 1, 1, 1)[:8]
    assert torch.equal(torch.cat([_samples(net, x_T, eta, slice(0, 4)), _samples(net, x_T, eta, slice(4, 8))]),
                       _samples(net, x_T, eta))
    with pytest.raises(TypeError, match="rows"):
        _samples(rowwise, x_T, eta, [0, 1])


def test_sample_to_a_folder_under_torchrun_takes_this_ranks_batches(runs, tmp_path, monkeypatch):
    """`sample --out FOLDER` splits whole batches round-robin (minddim.sample_folder) with the rank and world size
    that torchrun puts in the environment; no process group is needed, so the environment is set here."""
    args = ["sample", "--weights", str(runs[0] / "ema.pt"), "--num-samples", "5", "--batch", "2", "--steps", "2",
            "--eta", "1"]
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    for rank in (1, 0):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        assert main(args + ["--out", str(tmp_path / "two")]) == 0
        if rank == 1:                                      # batch 1 of 0..2: images 2 and 3
            assert sorted(p.name for p in (tmp_path / "two").glob("*.png")) == ["00002.png", "00003.png"]
    one, two = (sorted((tmp_path / d).glob("*.png")) for d in ("one", "two"))
    assert [p.name for p in one] == [p.name for p in two] == [f"0000{i}.png" for i in range(5)]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(one, two))


def test_sample_and_evaluate_take_the_device_that_holds_network_x_T_and_generator(runs, tmp_path):
    """--device: the network, x_T and the noise's generator live there (a GPU's generator draws other numbers than
    the CPU's, so only the CPU case can be pinned here): "cpu" given explicitly is the default draw, bit for bit;
    a device torch does not know is refused by name before anything is written."""
    from minddim.commands import sample_images
    from minddim.metrics import classifier_features, sample_quality

    weights = runs[0] / "ema.pt"
    default = sample_images(weights, tmp_path / "a.png", n=3, steps=2, eta=1.0, seed=1, progress=False)
    on_cpu = sample_images(weights, tmp_path / "b.png", n=3, steps=2, eta=1.0, seed=1, progress=False, device="cpu")
    assert torch.equal(default, on_cpu)
    with pytest.raises(RuntimeError, match="gpu"):
        sample_images(weights, tmp_path / "c.png", n=3, steps=2, seed=1, progress=False, device="gpu")
    assert not (tmp_path / "c.png").exists()
    # sample_quality (what evaluate runs): the same figures with device="cpu" as without
    mnist = md.UNet(1, 8, (1, 2), 1).eval()
    reference = classifier_features(md.pretrained("mnist_classifier"), torch.rand(50, 1, 28, 28) * 2 - 1)
    runs_ = [sample_quality(mnist, md.Schedule.linear(), 2, 1.0, n=20, batch=10, reference=reference, seed=3,
                            progress=False, **kw) for kw in ({}, {"device": "cpu"})]
    assert torch.equal(runs_[0].pop("images"), runs_[1].pop("images"))
    assert {k: v for k, v in runs_[0].items() if k != "seconds"} == {k: v for k, v in runs_[1].items() if k != "seconds"}
