"""The U-Net, checkpointed training that resumes exactly, and the train / sample commands on tiny configs."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

import minddim as md
from minddim.__main__ import main
from tests.test_data_images import _cifar_archive, has_mnist

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_unet_shapes_and_time_dependence(channels, size):
    torch.manual_seed(0)
    net = md.UNet(channels, base=8, mults=(1, 2, 2), num_res=1, groups=4)
    x = torch.randn(2, channels, size, size)
    a, b = net(x, torch.tensor([1, 1])), net(x, torch.tensor([900, 900]))
    assert a.shape == x.shape and not torch.allclose(a, b)
    assert net(x.double(), torch.tensor([5, 5])).dtype == torch.float64


def test_default_unet_size():
    assert 0.9e6 < sum(p.numel() for p in md.UNet(1).parameters()) < 1.2e6   # 4.2 MB of float32 weights


def _tiny(seed=0):
    torch.manual_seed(seed)
    return md.UNet(1, base=8, mults=(1, 2), num_res=1, groups=4)


@pytest.mark.parametrize("lr_decay,precision", [("constant", "fp32"), ("cosine", "fp32"), ("constant", "bf16")])
def test_a_killed_run_resumes_exactly_where_an_uninterrupted_run_ends(tmp_path, lr_decay, precision):
    data = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    s = md.Schedule.linear()
    kw = dict(steps=6, batch_size=4, lr=1e-3, ema_decay=0.9, seed=3, progress=False, lr_decay=lr_decay,
              precision=precision)
    straight = md.train(_tiny(), data, s, **kw)
    assert len(straight.losses) == 6

    calls = {"n": 0}

    def dies_at_step_5(model, x0, schedule, g):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("killed")
        return md.objective(model, x0, schedule, generator=g)

    ck = tmp_path / "run" / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        md.train(_tiny(), data, s, **kw, loss_fn=dies_at_step_5, checkpoint=ck, checkpoint_every=2)
    assert torch.load(ck, weights_only=True)["step"] == 4
    assert [p.name for p in ck.parent.iterdir()] == ["checkpoint.pt"], "no temporary files left behind"
    resumed = md.train(_tiny(seed=99), data, s, **kw, checkpoint=ck, checkpoint_every=2, resume=True,
                       log_csv=tmp_path / "run" / "loss.csv")
    assert resumed.losses == straight.losses
    for a, b in zip(resumed.ema.state_dict().values(), straight.ema.state_dict().values()):
        assert torch.equal(a, b)
    assert (tmp_path / "run" / "loss.csv").read_text().splitlines()[0] == "step,loss"
    with pytest.raises(ValueError, match="checkpoint"):
        md.train(_tiny(), data, s, **kw, resume=True)


def test_learning_rate_is_constant_or_a_cosine_from_lr_to_zero():
    from minddim.train import learning_rate

    assert [learning_rate(2e-4, t, 10) for t in range(10)] == [2e-4] * 10
    cos = [learning_rate(1e-3, t, 100, "cosine") for t in range(100)]
    assert cos[0] == 1e-3 and cos[50] == pytest.approx(5e-4, rel=1e-12)       # half way: half the rate
    assert cos[99] == pytest.approx(1e-3 * (1 + math.cos(math.pi * 0.99)) / 2) and 0 < cos[99] < 1e-6
    assert all(a > b for a, b in zip(cos, cos[1:]))
    assert [learning_rate(1e-3, t, 100, "cosine") + learning_rate(1e-3, 100 - t, 100, "cosine")
            for t in range(1, 100)] == pytest.approx([1e-3] * 99)         # symmetric about the middle
    with pytest.raises(ValueError, match="lr_decay"):
        learning_rate(1e-3, 0, 10, "linear")
    with pytest.raises(ValueError, match="lr_decay"):
        md.train(_tiny(), torch.zeros(4, 1, 8, 8), md.Schedule.linear(), steps=2, lr_decay="step", progress=False)


def test_training_sets_each_adam_step_to_the_schedules_rate(monkeypatch):
    seen, step = [], torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    data = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    from minddim.train import learning_rate

    for decay in ("constant", "cosine"):
        seen.clear()
        md.train(_tiny(), data, md.Schedule.linear(), steps=5, batch_size=2, lr=1e-3, progress=False, lr_decay=decay)
        assert seen == [learning_rate(1e-3, t, 5, decay) for t in range(5)]
    assert seen[0] == 1e-3 > seen[1] > seen[4] > 0


def test_image_training_runs_in_channels_last_and_returns_the_layout_it_was_given():
    """The training default kept from benchmarks sections 3 and 8: weights and images channels-last while training
    (3 channels, so the layouts differ), the same losses up to rounding. md.UNet is channels-last from the start and
    comes back so; a network handed over in the usual layout (here a U-Net converted back) comes back in it."""
    data = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    s = md.Schedule.linear()
    seen = []

    def spy(model, x0, schedule, g):
        seen.append((x0.is_contiguous(memory_format=torch.channels_last), x0.is_contiguous(),
                     model.inp.weight.is_contiguous(memory_format=torch.channels_last)))
        return md.objective(model, x0, schedule, generator=g)

    kw = dict(steps=4, batch_size=4, lr=1e-3, ema_decay=0.9, seed=1, progress=False)
    def unet():
        torch.manual_seed(0)
        return md.UNet(3, base=8, mults=(1, 2), num_res=1, groups=4)

    def channels_last(net):
        return all(p.is_contiguous(memory_format=torch.channels_last) for p in net.parameters() if p.dim() == 4)

    assert channels_last(unet())
    default = md.train(unet(), data, s, **kw, loss_fn=spy)
    assert seen == [(True, False, True)] * 4
    seen.clear()
    plain = md.train(unet().to(memory_format=torch.contiguous_format), data, s, **kw, loss_fn=spy,
                     channels_last=False)
    assert seen == [(False, True, False)] * 4
    assert default.losses == pytest.approx(plain.losses, rel=1e-4)
    assert all(channels_last(net) for net in (default.model, default.ema))
    for net in (plain.model, plain.ema):
        assert all(p.is_contiguous() for p in net.parameters()) and not channels_last(net)
    converted = md.train(unet().to(memory_format=torch.contiguous_format), data, s, **kw)
    assert all(p.is_contiguous() for net in converted[:2] for p in net.parameters())
    assert not any(channels_last(net) for net in converted[:2])
    # Adam moves a weight by at most lr = 1e-3 per step (4e-3 in all); rounding differences in tiny gradients
    # get normalized by Adam, so weights agree to 1e-4, 1/40 of the largest possible move
    for a, b in zip(default.ema.state_dict().values(), plain.ema.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4)


def test_bf16_training_runs_the_forward_pass_in_bfloat16_and_keeps_float32_weights():
    """precision="bf16": the network's convolutions run in bfloat16 under autocast, while the weights, the EMA
    and the loss stay float32, and the losses follow the float32 run's to within bfloat16's rounding."""
    data = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    s = md.Schedule.linear()
    seen = []

    def spy(model, x0, schedule, g):
        h = model.inp(x0)                                        # the first convolution, as the forward pass runs it
        loss = md.objective(model, x0, schedule, generator=g)
        seen.append((h.dtype, loss.dtype))
        return loss

    kw = dict(steps=20, batch_size=16, lr=1e-3, ema_decay=0.9, seed=1, progress=False)
    bf16 = md.train(_tiny(), data, s, **kw, loss_fn=spy, precision="bf16")
    assert seen == [(torch.bfloat16, torch.float32)] * 20
    assert all(p.dtype == torch.float32 for net in (bf16.model, bf16.ema) for p in net.parameters())
    seen.clear()
    fp32 = md.train(_tiny(), data, s, **kw, loss_fn=spy)
    assert seen == [(torch.float32, torch.float32)] * 20
    # bfloat16 keeps 8 significant bits (relative rounding 2^-9): the losses differ, but by little (measured:
    # at most 0.08% over the 20 steps on the same minibatches)
    assert bf16.losses != fp32.losses
    assert bf16.losses == pytest.approx(fp32.losses, rel=0.01)
    with pytest.raises(ValueError, match="precision"):
        md.train(_tiny(), data, s, **kw, precision="fp16")


def _cifar10_train_args(tmp_path, monkeypatch, steps):
    """A run folder and `train` arguments for a tiny U-Net on a synthetic archive in CIFAR-10's format; the
    value of ``--out`` is ``args[6]`` and that of ``--steps`` is ``args[8]``."""
    folder = tmp_path / "data" / "cifar10"
    folder.mkdir(parents=True)
    monkeypatch.setattr(md.data, "CIFAR10_MD5", _cifar_archive(folder / md.data.CIFAR10_FILE, n_train=4))
    run = tmp_path / "run"
    return run, ["train", "--data", "cifar10", "--root", str(tmp_path / "data"), "--out", str(run), "--steps",
                 str(steps), "--batch-size", "2", "--base", "8", "--mults", "1,2"]


def test_train_and_sample_commands_on_a_synthetic_cifar10_archive(tmp_path, monkeypatch):
    run, args = _cifar10_train_args(tmp_path, monkeypatch, steps=3)
    args += ["--checkpoint-every", "2"]
    assert main(args) == 0
    meta = json.loads((run / "ema.json").read_text())
    assert meta["steps"] == 3 and meta["command"].startswith("python -m minddim train --data cifar10")
    assert meta["model"]["channels"] == 3 and meta["machine"]["cpu_count"] >= 1
    assert len((run / "loss.csv").read_text().splitlines()) == 4
    assert main(args[:8] + ["6"] + args[9:] + ["--resume"]) == 0            # extend the run to 6 steps
    assert json.loads((run / "ema.json").read_text())["steps"] == 6
    assert len(json.loads((run / "config.json").read_text())["sessions"]) == 2
    assert main(["sample", "--weights", str(run / "ema.pt"), "--out", str(tmp_path / "s.png"), "--n", "4",
                 "--steps", "2", "--eta", "1"]) == 0
    img = plt.imread(tmp_path / "s.png")
    assert img.shape[0] == img.shape[1] == 2 * 34 + 2


def test_train_command_records_the_lr_decay_and_precision_and_resumes_only_with_the_same_ones(tmp_path, monkeypatch,
                                                                                             capsys):
    run, args = _cifar10_train_args(tmp_path, monkeypatch, steps=2)
    assert main(args + ["--lr-decay", "cosine"]) == 0
    assert json.loads((run / "config.json").read_text())["lr_decay"] == "cosine"
    assert "--lr-decay cosine" in json.loads((run / "ema.json").read_text())["command"]
    assert "device" not in json.loads((run / "ema.json").read_text())["machine"]      # trained on the CPU
    with pytest.raises(SystemExit):
        main(args[:8] + ["3"] + args[9:] + ["--resume"])                           # constant: not this run's
    assert "--lr-decay cosine (given: constant)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(args + ["--lr-decay", "linear"])                                        # argparse names the choices
    # the precision likewise: recorded, in the command, and a resume must keep it
    bf16 = tmp_path / "bf16"
    assert main(args[:6] + [str(bf16)] + args[7:] + ["--precision", "bf16"]) == 0
    assert json.loads((bf16 / "config.json").read_text())["precision"] == "bf16"
    assert "--precision bf16" in json.loads((bf16 / "ema.json").read_text())["command"]
    with pytest.raises(SystemExit):
        main(args[:6] + [str(bf16)] + args[7:8] + ["3"] + args[9:] + ["--resume"])   # fp32: not this run's
    assert "--precision bf16 (given: fp32)" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"other settings: --precision bf16 \(given: fp32\)"):   # the library too
        md.commands.train_images("cifar10", bf16, steps=3, batch_size=2, base=8, mults=(1, 2), resume=True,
                                 root=tmp_path / "data", progress=False)
    assert main(args[:6] + [str(bf16)] + args[7:8] + ["3"] + args[9:] + ["--precision", "bf16", "--resume"]) == 0
    with pytest.raises(SystemExit):
        main(args + ["--precision", "fp16"])
    # a run folder written before --lr-decay and --precision existed has neither: it was constant and fp32,
    # and resumes as such
    old = tmp_path / "old"
    assert main(args[:6] + [str(old)] + args[7:]) == 0
    config = json.loads((old / "config.json").read_text())
    del config["lr_decay"], config["precision"]
    (old / "config.json").write_text(json.dumps(config))
    assert main(args[:6] + [str(old)] + args[7:8] + ["3"] + args[9:] + ["--resume"]) == 0
    assert json.loads((old / "ema.json").read_text())["steps"] == 3


@pytest.mark.skipif(not has_mnist, reason="the original MNIST files are not under $MINDDIM_DATA/mnist")
def test_train_command_runs_on_mnist_as_a_subprocess(tmp_path):
    run = tmp_path / "mnist"
    cmd = [sys.executable, "-m", "minddim", "train", "--data", "mnist", "--out", str(run), "--steps", "2",
           "--batch-size", "2", "--base", "8", "--mults", "1,2"]
    subprocess.run(cmd, check=True, cwd=ROOT, env=os.environ, capture_output=True)
    from minddim.commands import load_unet

    model = load_unet(run / "ema.pt")
    assert model(torch.zeros(1, 1, 28, 28), torch.tensor([10])).shape == (1, 1, 28, 28)
    # `evaluate` adds the measured quality to the JSON beside the weights, keeping what was there
    before = json.loads((run / "ema.json").read_text())
    line = ["evaluate", "--weights", str(run / "ema.pt"), "--n", "4", "--batch", "4", "--samplers", "ddim-50,ddpm-1000"]
    assert main(line) == 0
    meta = json.loads((run / "ema.json").read_text())
    assert {k: meta[k] for k in before} == before
    q = meta["quality"]
    assert q["command"] == "python -m minddim " + " ".join(line)
    assert q["n"] == 4 and q["reference"] == "MNIST test set (10000 images)"
    assert q["DDIM-50"]["steps"] == 50 and q["DDIM-50"]["eta"] == 0 and q["DDPM-1000"]["steps"] == 1000
    assert q["DDPM-1000"]["eta"] == 1 and q["DDPM-1000"]["seconds"] > q["DDIM-50"]["seconds"] > 0
    # a model trained for 2 steps draws noise: farther from the test set than as many real images
    assert q["DDIM-50"]["fid"] > q["real_train_images"]["fid"] and q["DDPM-1000"]["fid"] > q["real_train_images"]["fid"]
    assert 0.1 <= q["DDIM-50"]["confidence"] <= 1 and 0 <= q["DDIM-50"]["sure"] <= 1
    assert q["real_train_images"]["sure"] >= q["DDIM-50"]["sure"]
    with pytest.raises(ValueError, match="weights"):
        load_unet(run / "missing.pt")


def test_the_unet_goes_through_a_large_batch_in_chunks_only_without_gradients():
    """md.UNet.chunk (benchmarks/README.md, section 8): in eval mode without gradients a batch of more than
    ``chunk`` rows goes through the network ``chunk`` rows at a time. Each row is computed on its own, so the
    output is the whole batch's up to float32 rounding (measured: within 4e-7; allowed: 1e-5), with one t per
    row or one t for all; with gradients, or in training mode, the batch goes through whole."""
    torch.manual_seed(0)
    net = md.UNet(1, base=8, mults=(1, 2), num_res=1, groups=4).eval()
    g = torch.Generator().manual_seed(1)
    x, t = torch.randn(11, 1, 28, 28, generator=g), torch.randint(1, 1001, (11,), generator=g)
    rows = []
    net.inp.register_forward_hook(lambda module, inputs, output: rows.append(inputs[0].shape[0]))
    net.chunk = 4
    with torch.no_grad():
        chunked, chunked_one_t = net(x, t), net(x, t[:1])
    assert rows == [4, 4, 3] * 2
    net.chunk = None
    with torch.no_grad():
        whole, whole_one_t = net(x, t), net(x, t[:1].expand(11))
    assert rows[6:] == [11, 11]
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-5)
    torch.testing.assert_close(chunked_one_t, whole_one_t, rtol=0, atol=1e-5)
    assert chunked.is_contiguous() and chunked.shape == x.shape
    rows.clear()
    net.chunk = 4
    net(x, t).sum().backward()                    # gradients: one pass, so backward sees the batch it came from
    net.train()
    with torch.no_grad():
        net(x, t)
    assert rows == [11, 11]
    assert md.UNet.chunk == 128 and md.pretrained("mnist_unet").chunk == 128


def test_bf16_without_native_bfloat16_warns_once_with_the_measured_slowdown(monkeypatch):
    """`precision="bf16"` on a CPU that emulates bfloat16 (benchmarks/README.md, section 8: a training step several
    times slower than float32 with oneDNN capped at AVX2) warns once per process, naming the slowdown that section
    records and the way out; where the CPU has native bfloat16 it does not warn."""
    import importlib
    import warnings

    train_module = importlib.import_module("minddim.train")
    data = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    kw = dict(steps=1, batch_size=4, lr=1e-3, progress=False, precision="bf16")
    assert train_module.native_bf16() in (True, False)
    monkeypatch.setattr(train_module, "_WARNED_BF16", False)
    monkeypatch.setattr(train_module, "native_bf16", lambda: False)
    with pytest.warns(UserWarning, match=r"without native bfloat16.*slower.*precision='fp32'") as caught:
        md.train(_tiny(), data, md.Schedule.linear(), **kw)
    recorded = json.loads((Path(__file__).parents[1] / "benchmarks" / "results.json").read_text())
    capped = recorded["unet"]["results"]["bf16"]["capped at AVX2"]
    assert not capped["native_bf16"]
    assert f"about {round(capped['training step slowdown'])}x slower" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        md.train(_tiny(), data, md.Schedule.linear(), **kw)                 # once per process
        monkeypatch.setattr(train_module, "_WARNED_BF16", False)
        monkeypatch.setattr(train_module, "native_bf16", lambda: True)
        md.train(_tiny(), data, md.Schedule.linear(), **kw)                 # native: no warning
