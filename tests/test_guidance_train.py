"""Issue 35, the training and command-line part: class-conditional training with label dropout, fine-tuning from an
unconditional checkpoint, the noise-aware classifier, and `sample` / `evaluate` with --class and --guidance."""

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

import minddim as md
from minddim.__main__ import main
from minddim.guidance import class_log_prob_grad
from tests.test_data_images import has_mnist


class LabelSpy(nn.Module):
    """A class-conditional eps-model for 2-D data that records every label it is given."""

    num_classes = 4

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.seen = []

    def forward(self, x_t, t, y=None):
        self.seen.append(y.clone())
        return self.lin(torch.cat([x_t, t[:, None].float() / 1000], 1))


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0])
def test_label_dropout_share_is_p_uncond_within_monte_carlo_error(p):
    """200 steps of batch 64 (12,800 labels): the count of null labels is Binomial(12800, p); allowed: 4 standard
    deviations sqrt(n p (1 - p)) (two-sided, a false failure has probability about 6e-5); p = 0 and 1 exactly."""
    g = torch.Generator().manual_seed(0)
    data, labels = torch.randn(1000, 2, generator=g), torch.arange(1000) % 4
    spy = LabelSpy()
    md.train(spy, data, md.Schedule.linear(), steps=200, batch_size=64, seed=1, progress=False, labels=labels,
             p_uncond=p)
    y = torch.cat(spy.seen)
    n, nulls = y.numel(), int((y == 4).sum())
    assert n == 200 * 64
    assert abs(nulls - n * p) <= 4 * math.sqrt(n * p * (1 - p)), (nulls, n * p)
    kept = y[y != 4]
    if p < 1:                                        # the labels that stay are the data's, all four classes
        assert set(kept.tolist()) == {0, 1, 2, 3}


def test_label_dropout_bad_input():
    spy, data = LabelSpy(), torch.randn(10, 2)
    with pytest.raises(ValueError, match="p_uncond"):
        md.train(spy, data, md.Schedule.linear(), steps=1, labels=torch.zeros(10, dtype=torch.long), p_uncond=1.5,
                 progress=False)
    with pytest.raises(ValueError, match="labels"):
        md.train(spy, data, md.Schedule.linear(), steps=1, labels=torch.full((10,), 4), progress=False)
    with pytest.raises(ValueError, match="labels must have shape"):
        md.train(spy, data, md.Schedule.linear(), steps=1, labels=torch.zeros(9, dtype=torch.long), progress=False)
    with pytest.raises(TypeError, match="labels"):
        md.train(md.MLP(), data, md.Schedule.linear(), steps=1, labels=torch.zeros(10, dtype=torch.long),
                 progress=False)


def test_label_lr_moves_the_class_embedding_at_its_own_rate():
    """Adam's first step moves every parameter with a nonzero gradient by its learning rate times the gradient's sign
    (m-hat / sqrt(v-hat) = sign(g), up to eps): with label_lr = 50 lr the class embedding's rows that the minibatch
    used move by label_lr, every other weight by at most lr; the cosine decay scales both alike."""
    torch.manual_seed(0)
    model = md.UNet(1, 8, (1, 2), 1, num_classes=4)
    g = torch.Generator().manual_seed(0)
    data, labels = torch.rand(32, 1, 28, 28, generator=g) * 2 - 1, torch.arange(32) % 4
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lr, label_lr = 1e-4, 5e-3
    result = md.train(model, data, md.Schedule.linear(), steps=1, batch_size=16, lr=lr, seed=0, progress=False,
                      labels=labels, p_uncond=0.0, label_lr=label_lr, ema_decay=0.0)
    after = result.model.state_dict()
    moved = (after["label.weight"] - before["label.weight"]).abs()
    assert moved[:4].max() == pytest.approx(label_lr, rel=1e-3) and moved[4].max() == 0      # no null label drawn
    others = max((after[k] - before[k]).abs().max().item() for k in before if k != "label.weight")
    assert lr * 0.99 < others <= lr * 1.001
    with pytest.raises(ValueError, match="label_lr"):
        md.train(md.UNet(1, 8, (1, 2), 1, num_classes=4), data, md.Schedule.linear(), steps=1, progress=False,
                 labels=labels, label_lr=-1.0)
    with pytest.raises(ValueError, match="label_lr"):
        md.train(md.UNet(1, 8, (1, 2), 1), data, md.Schedule.linear(), steps=1, progress=False, label_lr=1e-3)


def test_label_lr_is_recorded_and_a_resume_must_repeat_it(tmp_path):
    from minddim.commands import resume_differences, run_config

    config = run_config("mnist", classes=10, p_uncond=0.1, label_lr=5e-3)
    assert config["label_lr"] == 5e-3 and "label_lr" not in run_config("mnist", classes=10)
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert resume_differences(tmp_path, config) == []
    assert resume_differences(tmp_path, run_config("mnist", classes=10, p_uncond=0.1)) == ["--label-lr 0.005 (given: None)"]
    with pytest.raises(ValueError, match="label_lr"):
        run_config("mnist", label_lr=5e-3)


def test_init_from_keeps_the_unconditional_predictions_bit_for_bit_at_step_0(tmp_path, monkeypatch):
    """`train --classes 10 --init-from mnist_unet`: the network handed to the training loop predicts exactly what
    the shipped unconditional U-Net predicts, for every label and for the null label; the run records it."""
    seen = {}

    def fake_train(model, data, schedule, **kw):
        seen["model"], seen["kw"] = model, kw
        raise SystemExit(0)

    monkeypatch.setattr(md.commands, "train", fake_train)
    monkeypatch.setattr(md.commands, "load_mnist", None, raising=False)
    fake_images = torch.zeros(20, 1, 28, 28, dtype=torch.uint8), torch.arange(20) % 10
    monkeypatch.setattr(md.data, "load_mnist", lambda split, root=None: fake_images)
    with pytest.raises(SystemExit):
        main(["train", "--out", str(tmp_path / "run"), "--classes", "10", "--init-from", "mnist_unet",
              "--steps", "5"])
    base, cond = md.pretrained("mnist_unet"), seen["model"].eval()
    assert cond.num_classes == 10 and cond.config == {**base.config, "num_classes": 10}
    assert seen["kw"]["p_uncond"] == 0.1 and torch.equal(seen["kw"]["labels"], fake_images[1])
    x = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([1, 50, 300, 700, 1000])
    with torch.no_grad():
        want = base(x, t)
        for y in (torch.tensor([0, 3, 5, 9, 10]), 7, None):
            assert torch.equal(cond(x, t, y) if y is not None else cond(x, t), want)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["classes"] == 10 and config["p_uncond"] == 0.1 and config["init_from"] == "mnist_unet"
    assert config["model"]["base"] == base.config["base"] and config["model"]["num_classes"] == 10


def test_noisy_classifier_gradient_matches_finite_differences():
    torch.manual_seed(0)
    clf = md.NoisyClassifier(base=8).double().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 28, 28, generator=g, dtype=torch.float64)
    t, y = torch.tensor([10, 600]), torch.tensor([3, 7])
    assert clf(x, t).shape == (2, 10)
    grad = class_log_prob_grad(clf, x, t, y)

    def log_p(z):
        return torch.log_softmax(clf(z, t), 1).gather(1, y[:, None]).sum()

    h = 1e-6
    for b, i, j in [(0, 14, 14), (0, 3, 20), (1, 10, 5), (1, 27, 27)]:
        e = torch.zeros_like(x)
        e[b, 0, i, j] = h
        with torch.no_grad():
            fd = (log_p(x + e) - log_p(x - e)) / (2 * h)
        assert abs(fd.item() - grad[b, 0, i, j].item()) <= 1e-6 * max(1.0, abs(fd.item()))
    # the time embedding matters: the same image at another t gets other logits
    assert not torch.allclose(clf(x, torch.tensor([10, 10])), clf(x, torch.tensor([900, 900])))


def _conditional_weights(folder: Path, num_classes=10) -> Path:
    """An ema.pt + ema.json of a small class-conditional U-Net (untrained)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = md.UNet(base=8, mults=(1, 2), num_classes=num_classes)
    torch.save(net.state_dict(), folder / "ema.pt")
    (folder / "ema.json").write_text(json.dumps({"model": net.config}))
    return folder / "ema.pt"


def _noisy_classifier(folder: Path, kind="NoisyClassifier") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    clf = md.NoisyClassifier(base=8)
    torch.save(clf.state_dict(), folder / "noisy.pt")
    (folder / "noisy.json").write_text(json.dumps({"kind": kind, "model": clf.config}))
    return folder / "noisy.pt"


BAD = [
    ("sample --weights mnist_unet --class 3 --guidance 2", "--guidance: --weights mnist_unet is an unconditional"),
    ("sample --weights mnist_unet --class 3", "--class: --weights mnist_unet is an unconditional model"),
    ("sample --weights mnist_unet --guidance 2", "--guidance needs --class"),
    ("sample --weights COND --class 10", '--class must be a class in 0..9 or "all" (the model has 10 classes), '
                                         'got 10'),
    ("sample --weights COND --class -1", '--class must be a class 0, 1, ... or "all", got -1'),
    ("sample --weights COND --class seven", '--class must be a class 0, 1, ... or "all", got \'seven\''),
    ("sample --weights COND --class 3 --guidance nan", "--guidance must be a finite number, got nan"),
    ("sample --weights COND --class 3 --guidance inf", "--guidance must be a finite number, got inf"),
    ("sample --weights COND --class 3 --classifier-guidance 1", "--classifier-guidance needs --classifier"),
    ("sample --weights COND --class 3 --classifier-guidance 1 --classifier PLAIN",
     "is not a noise-aware classifier"),
    ("sample --weights COND --class 3 --out folder", "--class: guided sampling writes a grid"),
    ("evaluate --weights COND --class all --guidance 0,nan", "--guidance must be finite numbers separated by commas"),
    ("evaluate --weights mnist_unet --class all --guidance 1", "--guidance: --weights mnist_unet is an unconditional"),
    ("evaluate --weights COND --class 12", '--class must be a class in 0..9 or "all"'),
    ("train --p-uncond 0.1", "--p-uncond is for a class-conditional run: give --classes too"),
    ("train --init-from mnist_unet", "--init-from is for a class-conditional run"),
    ("train --classes 10 --p-uncond 1.5", "--p-uncond must be a number in [0, 1], got 1.5"),
    ("train --classes 0", "--classes must be a positive integer, got 0"),
    ("train --label-lr 5e-3", "--label-lr is for a class-conditional run: give --classes too"),
    ("train --classes 10 --label-lr 0", "--label-lr must be a number > 0, got 0"),
    ("train --classes 10 --init-from nowhere.pt", "--init-from nowhere.pt: no such file or folder"),
    ("train --classes 10 --init-from mnist_unet --base 32", "--base 32: --init-from mnist_unet has --base 16"),
    ("train --classes 10 --init-from COND", "is already class-conditional"),
]


@pytest.mark.parametrize("line, message", BAD, ids=[b[0] for b in BAD])
def test_a_bad_guidance_command_line_is_one_line_naming_the_option(line, message, tmp_path, monkeypatch, capsys):
    cond = _conditional_weights(tmp_path / "cond")
    plain = _noisy_classifier(tmp_path / "plain", kind="Classifier")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(SystemExit) as exit_:
        main(line.replace("COND", str(cond)).replace("PLAIN", str(plain)).split())
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1 and err.startswith("python -m minddim"), err
    assert message in err, err
    assert list(work.iterdir()) == [], "nothing is written"


@pytest.mark.skipif(not has_mnist, reason="the original MNIST files are not under $MINDDIM_DATA/mnist")
def test_tiny_end_to_end_train_sample_and_evaluate_with_classes(tmp_path, monkeypatch):
    """A few steps of a small class-conditional U-Net and of the noisy classifier, then sample --class --guidance
    and evaluate on a tiny n: the files and records are what the help says (no quality claim at this size)."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--out", "run", "--steps", "3", "--batch-size", "4", "--base", "8", "--mults", "1,2",
                 "--classes", "10", "--p-uncond", "0.2"]) == 0
    meta = json.loads(Path("run/ema.json").read_text())
    assert meta["classes"] == 10 and meta["p_uncond"] == 0.2 and meta["init_from"] is None
    assert meta["model"]["num_classes"] == 10 and "--classes 10 --p-uncond 0.2" in meta["command"]
    model, acc = md.commands.train_noisy_classifier("noisy.pt", max_steps=3, eval_n=50, progress=False)
    clf = json.loads(Path("noisy.json").read_text())
    assert clf["kind"] == "NoisyClassifier" and clf["steps"] == 3 and set(clf["test_accuracy"]) >= {"t=1", "t_uniform"}
    assert main(["sample", "--weights", "run", "--class", "all", "--guidance", "2", "--steps", "2", "--n", "20",
                 "--out", "all.png"]) == 0
    img = plt.imread("all.png")
    assert img.shape[:2] == (10 * 30 + 2, 2 * 30 + 2)          # ten rows (one per class) of two
    assert main(["sample", "--weights", "run", "--class", "3", "--classifier-guidance", "1", "--classifier",
                 "noisy.pt", "--steps", "2", "--n", "4", "--out", "three.png"]) == 0
    line = ["evaluate", "--weights", "run", "--class", "all", "--guidance", "0,2", "--classifier-guidance", "1",
            "--classifier", "noisy.pt", "--n", "20", "--batch", "10", "--samplers", "ddim-2"]
    assert main(line) == 0
    q = json.loads(Path("run/ema.json").read_text())["quality"]
    assert set(q) >= {"DDIM-2 w=0", "DDIM-2 w=2", "DDIM-2 classifier s=1"}
    for key, nfe in (("DDIM-2 w=0", 2), ("DDIM-2 w=2", 4), ("DDIM-2 classifier s=1", 2)):
        r = q[key]
        assert r["n"] == 20 and r["classes"] == list(range(10)) and 0 <= r["accuracy"] <= 1 and 0 <= r["sure"] <= 1
        assert r["diversity"] > 0                               # two samples a class: a within-class spread
        assert r["network_evaluations_per_sample"] == nfe and len(r["accuracy_per_class"]) == 10
        assert r["fid"] > q["real_train_images"]["fid"]
    assert q["DDIM-2 w=2"]["guidance"] == 2.0 and q["DDIM-2 classifier s=1"]["classifier_guidance"] == 1.0
