"""The shipped class-conditional MNIST U-Net (issue 35): its provenance, recorded by the package's own commands, and
a recorded figure that reproduces (kept short: 20 digits)."""

import pytest

import minddim as md
from minddim.weights import provenance
from tests.test_data_images import has_mnist

needs_mnist = pytest.mark.skipif(not has_mnist, reason="the original MNIST files are not under $MINDDIM_DATA/mnist")


def test_the_record_holds_the_training_and_the_guidance_sweep():
    meta = provenance("mnist_unet_cond")
    assert meta["command"].startswith("python -m minddim train --data mnist") and "--classes 10" in meta["command"]
    assert "--init-from mnist_unet" in meta["command"] and meta["label_lr"] == 10 * float(meta["command"].split(
        "--lr ")[1].split()[0])
    assert meta["steps"] == meta["sessions"][-1]["finished_step"] and meta["wall_clock_seconds"] > 0
    q = meta["quality"]
    assert q["seeds"] == [0, 1, 2] and all(c.startswith("python -m minddim evaluate") for c in q["commands"])
    for w in ("0", "0.5", "1", "2", "4"):
        recs = q["settings"][f"DDIM-50 w={w}"]
        assert [r["seed"] for r in recs] == [0, 1, 2] and all(r["n"] == q["n"] for r in recs)
        assert all(r["network_evaluations_per_sample"] == (50 if w == "0" else 100) for r in recs)
        assert all(0 <= r["accuracy"] <= 1 and r["fid"] > 0 and r["diversity"] > 0 for r in recs)
    mean = lambda name: sum(r["accuracy"] for r in q["settings"][name]) / 3  # noqa: E731
    assert mean("DDIM-50 w=2") > mean("DDIM-50 w=0")          # guidance raises the share read as asked
    model = md.pretrained("mnist_unet_cond")
    assert model.num_classes == 10 and not model.training


@needs_mnist
def test_the_recorded_check_of_20_digits_reproduces():
    """`evaluate --class all --guidance 2 --n 20 --samplers ddim-50 --seed 0` as recorded in the JSON's "check":
    two digits a class; eta = 0 draws nothing after x_T, so the same digits on any CPU up to float rounding: the
    same reading of every digit, the FID to 0.5%."""
    from minddim.commands import class_quality, class_rows, guided_model
    from minddim.metrics import classifier_features

    check = provenance("mnist_unet_cond")["quality"]["check"]
    model, classifier = md.pretrained("mnist_unet_cond"), md.pretrained("mnist_classifier")
    test_images, test_labels = md.data.load_mnist("test", download=False)
    reference = classifier_features(classifier, md.data.to_model_range(test_images))
    schedule = md.Schedule.linear()
    got = class_quality(lambda c: guided_model(model, c, guidance=2.0, schedule=schedule), schedule, 50, 0.0,
                        rows=class_rows("all", 20, 10), reference=reference, seed=0, batch=20,
                        mnist_classifier=classifier, reference_labels=test_labels)
    assert got["accuracy_per_class"] == check["accuracy_per_class"] and got["accuracy"] == check["accuracy"]
    assert got["fid"] == pytest.approx(check["fid"], rel=5e-3)
    assert got["diversity"] == pytest.approx(check["diversity"], rel=5e-3)
