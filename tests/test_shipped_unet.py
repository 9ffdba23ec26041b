"""The shipped MNIST U-Net: provenance recorded by the package's commands, figures that reproduce, digits a
classifier reads as digits, and the `sample` command on it."""

import matplotlib.pyplot as plt
import pytest
import torch

import minddim as md
from minddim.__main__ import main
from minddim.metrics import classifier_features, sample_quality
from minddim.weights import provenance
from tests.test_data_images import has_mnist

# recorded by `evaluate` in mnist_unet.json ("sure"): the classifier's top probability exceeds 0.9 on 89.8% of
# the 1000 DDIM-50 samples, 92.3% of the DDPM-1000 ones, 97.3% of 1000 real training digits
SURE_FRACTION = 0.88
needs_mnist = pytest.mark.skipif(not has_mnist, reason="the original MNIST files are not under $MINDDIM_DATA/mnist")


def test_provenance_records_the_commands_machine_and_quality():
    meta = provenance("mnist_unet")
    assert meta["command"].startswith("python -m minddim train --data mnist")
    assert meta["steps"] == meta["sessions"][-1]["finished_step"] and meta["wall_clock_seconds"] > 0
    assert meta["machine"]["cpu_count"] >= 1 and meta["model"]["channels"] == 1
    q = meta["quality"]
    assert q["command"].startswith("python -m minddim evaluate") and q["n"] >= 1000
    for name in ("DDIM-50", "DDPM-1000", "real_train_images"):
        assert q[name]["fid"] > 0 and 0.1 < q[name]["confidence"] <= 1 and 0 <= q[name]["sure"] <= 1
    assert q["DDIM-50"]["sure"] >= SURE_FRACTION and q["real_train_images"]["sure"] > q["DDIM-50"]["sure"]
    assert q["DDPM-1000"]["steps"] == 1000 and q["DDPM-1000"]["eta"] == 1 and q["DDIM-50"]["eta"] == 0
    model = md.pretrained("mnist_unet")
    assert sum(p.numel() for p in model.parameters()) < 2_000_000 and not model.training


@needs_mnist
def test_the_recorded_ddim50_figures_reproduce_and_the_samples_are_digits():
    """Re-draw the 1000 DDIM-50 samples `evaluate` scored (same seed and batch): same FID, confidence and sure
    fraction; and nearly every sample is a digit the classifier is sure of, with every class drawn."""
    q = provenance("mnist_unet")["quality"]
    model, classifier = md.pretrained("mnist_unet"), md.pretrained("mnist_classifier")
    test = md.data.to_model_range(md.data.load_mnist("test")[0])
    r = sample_quality(model, md.Schedule.linear(), 50, 0.0, n=q["n"], reference=classifier_features(classifier, test),
                       seed=q["seed"], batch=q["batch"], classifier=classifier, progress=False)
    assert r["fid"] == pytest.approx(q["DDIM-50"]["fid"], rel=0.02)
    assert r["confidence"] == pytest.approx(q["DDIM-50"]["confidence"], abs=0.005)
    assert r["sure"] == pytest.approx(q["DDIM-50"]["sure"], abs=0.005) and r["sure"] >= SURE_FRACTION, r["sure"]
    with torch.no_grad():
        counts = torch.bincount(classifier(r["images"]).argmax(1), minlength=10)
    assert (counts >= 0.04 * q["n"]).all(), counts.tolist()          # all ten digits, none rare


def test_the_samples_the_classifier_is_unsure_of_settle_their_digit_late():
    """Read every predicted x_0 of 200 DDIM-20 walks with the classifier: the samples it is sure of at the end
    settled on their digit early in the walk, the unsure ones late (measured: mean commitment time 641 against
    319 of 1000, 20 unsure samples) - they were still switching between two digits."""
    model, classifier = md.pretrained("mnist_unet"), md.pretrained("mnist_classifier")
    x_T = torch.randn(200, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    traj = md.sample(model, x_T, md.Schedule.linear(), md.timesteps(1000, 20), 0.0, clip_x0=1.0, trajectory=True)
    commit = md.commitment_times(traj, classifier).float()
    sure = md.metrics.top_probability(traj.x0.clamp(-1, 1), classifier) > md.metrics.SURE
    assert 10 <= int((~sure).sum()) <= 40
    assert commit[~sure].mean() < commit[sure].mean() - 150, (commit[sure].mean(), commit[~sure].mean())


def test_sample_command_accepts_the_shipped_name(tmp_path):
    assert main(["sample", "--weights", "mnist_unet", "--out", str(tmp_path / "s.png"), "--n", "4", "--steps", "3"]) == 0
    img = plt.imread(tmp_path / "s.png")
    assert img.shape[:2] == (2 * 30 + 2, 2 * 30 + 2)
    with pytest.raises(ValueError, match="weights"):
        main(["sample", "--weights", "mnist_vae", "--out", str(tmp_path / "t.png")])
