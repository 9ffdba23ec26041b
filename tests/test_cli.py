"""The command line as a user meets it: a mistake is one line naming the option, exit status 2, found before anything
runs or is written; `--help` is fast and plain; nothing a user made is replaced without being asked (a learner's
exercises, a run folder, the installed package's weights); `evaluate` works on the shipped model."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from minddim.grading import generator as exercises
from minddim.__main__ import build_parser, main
from minddim.cli_args import UsageError, resolve_weights
from minddim.commands import run_config

ROOT = Path(__file__).resolve().parents[1]
EXERCISE = str(ROOT / "exercises" / "01_forward_process.ipynb")
NO_CUDA = not torch.cuda.is_available()

# (command line, what the one-line message must contain); each runs in an empty folder, which must stay empty
BAD = [
    ("sample --weights mnist_unet --steps 0", "--steps must be an integer in 1..1000"),
    ("sample --weights mnist_unet --steps 1001", "--steps must be an integer in 1..1000"),
    ("sample --weights mnist_unet --eta abc", '--eta must be a number >= 0 or "sigma_hat", got \'abc\''),
    ("sample --weights mnist_unet --eta -1", "--eta must be a number >= 0"),
    ("sample --weights mnist_unet --n 0", "--n must be a positive integer, got 0"),
    ("sample --weights mnist_unet --n -3", "--n must be a positive integer, got -3"),
    ("sample --weights mnist_unet --num-samples 2.5", "--n must be a positive integer, got '2.5'"),
    ("sample --weights mnist_unet --batch 0", "--batch must be a positive integer"),
    ("sample --weights mnist_unet --seed -1", "--seed must be an integer >= 0"),
    ("sample --weights mnist_unet --kind zigzag", "--kind must be one of uniform, quadratic, trailing"),
    ("sample --weights mnist_unet --out x.jpg", "--out must be a .png file (one grid of all samples) or a folder"),
    ("sample --weights mnist_unet --device gpu", '--device must be "cpu", "cuda" or "cuda:N", got \'gpu\''),
    ("sample --weights mnist_classifier", "--weights mnist_classifier is a shipped model but not a U-Net"),
    ("sample --weights runs/mnist/ema.pt", "--weights runs/mnist/ema.pt: no such file or folder"),
    ("sample --weights mnist_unet.pt", "--weights mnist_unet.pt: no such file or folder"),
    ("sample --out s.png", "the following arguments are required: --weights"),
    ("evaluate --weights mnist_unet --n 0", "--n must be an integer >= 2 (an FID fits a covariance to the samples), "
                                            "got 0"),
    ("evaluate --weights mnist_unet --n 1", "--n must be an integer >= 2"),
    ("evaluate --weights mnist_unet --samplers ddim-0", "--samplers must be ddim-S or ddpm-S (S in 1..1000)"),
    ("evaluate --weights mnist_unet --samplers heun-10", "--samplers must be ddim-S or ddpm-S (S in 1..1000)"),
    ("evaluate --weights mnist_unet --out q.txt", "--out must be a .json file"),
    ("evaluate --weights google/ddpm-cifar10-32", "--weights google/ddpm-cifar10-32: no such file or folder"),
    ("train --steps 0", "--steps must be a positive integer, got 0"),
    ("train --steps", "--steps needs a value"),
    ("train --batch-size 0", "--batch-size must be a positive integer"),
    ("train --lr -1", "--lr must be a number > 0, got -1"),
    ("train --lr nan", "--lr must be a number > 0"),
    ("train --ema-decay 1", "--ema-decay must be a number in [0, 1)"),
    ("train --mults 1,x", "--mults must be positive integers separated by commas"),
    ("train --lr-decay linear", "--lr-decay must be one of constant, cosine, got 'linear'"),
    ("train --data svhn", "--data must be one of mnist, cifar10"),
    ("train --out run.json", "--out must be a folder (a path without a file extension), got run.json"),
    ("train --device gpu --out run", '--device must be "cpu", "cuda" or "cuda:N"'),
    ("train-classifier --epochs 0", "--epochs must be a positive integer"),
    ("train-classifier --out classifier.json", "--out must be a .pt file"),
    ("train-toy --steps 0", "--steps must be a positive integer"),
    ("train-toy --out toy.png", "--out must be a folder"),
    ("exercises --solutions nowhere", "--solutions nowhere: no such folder"),
    ("grade missing.ipynb", "missing.ipynb: no such file"),
    (f"grade {EXERCISE} --timeout 0", "--timeout must be a number > 0, got 0"),
    (f"grade {EXERCISE} --timeout -1", "--timeout must be a number > 0, got -1"),
    ("frobnicate", "COMMAND must be one of exercises, grade, train"),
]
if NO_CUDA:
    BAD += [("sample --weights mnist_unet --device cuda", "--device cuda: CUDA is not available here"),
            ("train --device cuda --out run", "--device cuda: CUDA is not available here"),
            ("evaluate --weights mnist_unet --device cuda", "--device cuda: CUDA is not available here")]


@pytest.mark.parametrize("line, message", BAD, ids=[b[0] for b in BAD])
def test_a_bad_command_line_is_one_line_naming_the_option_and_writes_nothing(line, message, tmp_path, monkeypatch,
                                                                             capsys):
    monkeypatch.chdir(tmp_path)
    started = time.perf_counter()
    with pytest.raises(SystemExit) as exit_:
        main(line.split())
    seconds = time.perf_counter() - started
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1 and err.startswith("python -m minddim") and len(err) < 260, err
    assert message in err, err
    assert list(tmp_path.iterdir()) == [], "nothing is written"
    assert seconds < 5


def test_help_is_fast_plain_and_loads_no_torch():
    """`python -m minddim --help` in a fresh interpreter: well under a second on an idle CPU, no torch, numpy or
    scipy loaded (the package's names load on first use), and every command's help in plain text."""
    code = ("import sys, time; t = time.perf_counter(); from minddim.__main__ import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('seconds', time.perf_counter() - t)\n"
            "heavy = {m.split('.')[0] for m in sys.modules} & {'torch', 'numpy', 'scipy', 'matplotlib'}\n"
            "print('heavy', sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert "heavy []" in out, out
    assert float(out.split("seconds ")[1].split()[0]) < 2.0          # 0.05 s on the course's CPU, idle
    assert "python -m minddim COMMAND --help" in out


def test_every_option_has_a_help_and_the_help_is_plain_text():
    parser, subs = build_parser()
    for name, sub in subs.items():
        text = sub.format_help()
        assert "``" not in text and ":func:" not in text and ":mod:" not in text, name
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings}: no help"
            if action.option_strings and action.default not in (None, False) and action.dest != "help":
                assert "default" in sub._get_formatter()._get_help_string(action), (name, action.dest)


def test_the_command_lines_lists_agree_with_the_package():
    import minddim.__main__ as cli
    from minddim import commands, data
    from minddim.sampling import TIMESTEP_KINDS
    from minddim.train import LR_DECAYS, PRECISIONS

    assert cli.DATASETS == commands.DATASETS and cli.TOY_SETS == data.TOY_SETS
    assert cli.LR_DECAYS == LR_DECAYS and cli.PRECISIONS == PRECISIONS and cli.KINDS == TIMESTEP_KINDS


def test_weights_name_what_they_are_and_a_mistyped_path_is_no_such_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "mnist"
    run.mkdir(parents=True)
    (run / "ema.pt").write_bytes(b"")
    (run / "ema.json").write_text("{}")
    hub = tmp_path / "ddpm"
    hub.mkdir()
    (hub / "config.json").write_text("{}")
    assert resolve_weights("mnist_unet") == ("mnist_unet", "the shipped model mnist_unet")
    assert resolve_weights("runs/mnist")[0] == str(Path("runs/mnist/ema.pt"))          # a run folder: its ema.pt
    assert "trained weights" in resolve_weights("runs/mnist/ema.pt")[1]
    assert resolve_weights("ddpm")[1] == "the diffusers checkpoint in the folder ddpm"
    assert "model hub" in resolve_weights("google/ddpm-cifar10-32")[1]
    for typo in ("runs/mnsit", "runs/mnist/ema.tp", "runs/mnist/ema", "./google/ddpm", "mnist_unte"):
        with pytest.raises(UsageError, match="no such file"):
            resolve_weights(typo)
    with pytest.raises(UsageError, match="diffusers checkpoint; this command takes the course's U-Nets"):
        resolve_weights("ddpm", diffusers=False)
    from minddim.hub import is_diffusers

    (run / "config.json").write_text("{}")                 # a run folder's config.json is no diffusers config
    assert not is_diffusers(run) and resolve_weights("runs/mnist")[0].endswith("ema.pt")
    (run / "checkpoint.pt").write_bytes(b"")
    (run / "ema.pt").unlink()
    with pytest.raises(UsageError, match="run folder without ema.pt yet"):
        resolve_weights("runs/mnist")
    (run / "ema.pt").write_bytes(b"")
    (run / "ema.json").unlink()
    with pytest.raises(UsageError, match="no ema.json beside it"):
        resolve_weights("runs/mnist/ema.pt")


# -- nothing a user made is replaced without being asked ----------------------------------------------------------
def _digests(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_train_refuses_an_existing_run_and_a_resume_names_each_setting_that_differs(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    config = run_config("mnist", steps=100, lr=5e-4, base=16, mults=(1, 2, 4))
    (run / "config.json").write_text(json.dumps({**config, "sessions": []}))
    (run / "checkpoint.pt").write_bytes(b"the run's checkpoint")
    (run / "loss.csv").write_text("step,loss\n1,1.0\n")
    before = _digests(run)

    def refused(*extra):
        with pytest.raises(SystemExit) as exit_:
            main(["train", "--out", str(run), "--steps", "200", *extra])
        assert exit_.value.code == 2 and _digests(run) == before
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        return err

    err = refused()
    assert "already holds a run (config.json, checkpoint.pt, loss.csv)" in err
    assert "--resume" in err and "--force" in err
    err = refused("--resume")
    assert "--lr 0.0005 (given: 0.0002)" in err and "--base 16 (given: 32)" in err
    assert "--mults 1,2,4 (given: 1,2,2)" in err
    assert "--seed" not in err and "--steps" not in err                      # the same, and allowed to grow
    assert "--data mnist (given: cifar10)" in refused("--resume", "--lr", "5e-4", "--base", "16", "--mults", "1,2,4",
                                                      "--data", "cifar10")
    assert "give one of them" in refused("--resume", "--force")
    # the same settings resume; --force replaces the run (its files deleted before anything else is written)
    calls = []
    monkeypatch.setattr("minddim.commands.train_images", lambda *a, **k: calls.append((a, k, sorted(os.listdir(run)))))
    assert main(["train", "--out", str(run), "--steps", "200", "--resume", "--lr", "5e-4", "--base", "16",
                 "--mults", "1,2,4"]) == 0
    assert calls[-1][1]["resume"] and calls[-1][2] == sorted(before)
    assert main(["train", "--out", str(run), "--force"]) == 0
    assert calls[-1][2] == [] and not calls[-1][1]["resume"]


def test_train_classifier_writes_nothing_into_the_package_by_default(tmp_path, monkeypatch, capsys):
    parser, subs = build_parser()
    default = subs["train-classifier"].get_default("out")
    assert not (ROOT / default).resolve().is_relative_to(ROOT / "minddim")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.pt").write_bytes(b"mine")
    with pytest.raises(SystemExit) as exit_:
        main(["train-classifier", "--out", "c.pt"])
    assert exit_.value.code == 2 and "--out c.pt exists" in capsys.readouterr().err
    assert (tmp_path / "c.pt").read_bytes() == b"mine"


def _solve(notebook: Path) -> str:
    """Answer exercise 01's first question in the notebook (the stub replaced by the solution's line) and save it,
    as JupyterLab would; returns the saved text."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if exercises.STUB in c.source)
    cell.source = cell.source.replace(exercises.STUB, "return torch.cumprod(1 - betas, dim=0)")
    nbformat.write(nb, notebook)
    return notebook.read_text()


def test_a_learners_answers_survive_the_staleness_check_and_regeneration(tmp_path):
    """Solve an exercise, run the suite's staleness check, regenerate (as README's command line does): the answer
    survives, the check does not ask to regenerate, and the generator says it kept the notebook; an untouched but
    stale exercise is regenerated; --force replaces the edited one."""
    sol, ex = tmp_path / "solutions", tmp_path / "exercises"
    sol.mkdir()
    for name in ("01_forward_process.py", "02_posterior_and_bound.py"):
        (sol / name).write_text((ROOT / "solutions" / name).read_text())
    exercises.make_exercises(sol, ex)
    assert set(exercises.status(sol / "01_forward_process.py", ex).values()) == {"current"}
    answer = _solve(ex / "01_forward_process.ipynb")
    assert exercises.status(sol / "01_forward_process.py", ex) == {"01_forward_process.py": "current",
                                                                    "01_forward_process.ipynb": "edited"}
    # an instructor changes both solutions: 02 (untouched) is regenerated, 01 (solved) is kept
    for name in ("01_forward_process.py", "02_posterior_and_bound.py"):
        (sol / name).write_text((sol / name).read_text() + "\n# %% [markdown]\n# One more note.\n")
    assert exercises.status(sol / "02_posterior_and_bound.py", ex)["02_posterior_and_bound.py"] == "stale"
    done = subprocess.run([sys.executable, "-m", "minddim", "exercises", "--solutions", str(sol), "--out", str(ex)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1, done
    assert (ex / "01_forward_process.ipynb").read_text() == answer
    assert "One more note" not in (ex / "01_forward_process.py").read_text()        # the pair stays together
    assert "One more note" in (ex / "02_posterior_and_bound.ipynb").read_text()
    assert "kept" in done.stderr and "01_forward_process.ipynb changed since" in done.stderr
    assert "--force" in done.stderr
    written, kept = exercises.make_exercises(sol, ex, force=True)
    assert not kept and "One more note" in (ex / "01_forward_process.ipynb").read_text()


def test_the_grader_exits_non_zero_on_an_unreadable_notebook_and_wraps_its_reasons(tmp_path, capsys):
    from minddim.grading import format_report

    bad = tmp_path / "01_forward_process.ipynb"
    bad.write_text("{ not json")
    assert main(["grade", str(bad)]) == 1
    assert "cannot read the notebook" in capsys.readouterr().out
    reason = "expected a tensor of shape (4,) " + "word " * 60 + "hint: the last words of the hint"
    table = format_report([{"notebook": "n.ipynb", "assignment": "01", "score": 0, "max_score": 1, "errors": [],
                             "questions": [{"name": "q", "points": 0, "max_points": 1, "reason": reason}]}])
    assert " ".join(table.split()).count(reason.strip()) == 1
    assert max(len(line) for line in table.splitlines()) <= 110


# -- evaluate on the shipped model ----------------------------------------------------------------------------------
has_mnist = __import__("minddim.data", fromlist=["available"]).available("mnist")


@pytest.mark.skipif(not has_mnist, reason="the original MNIST files are not under $MINDDIM_DATA/mnist")
def test_evaluate_scores_the_shipped_model_and_records_outside_the_package(tmp_path, monkeypatch, capsys):
    """`evaluate --weights mnist_unet` at a small --n: warns that the FID means little, runs the chosen sampler only,
    prints the figures and writes them to NAME_quality.json in the current folder, never into the package; a run
    that fails after the first sampler keeps what it measured."""
    import functools

    from minddim import data, metrics
    from minddim.weights import HERE

    shipped = _digests(HERE)
    monkeypatch.setattr(data, "load_mnist", functools.cache(data.load_mnist))      # read once for both runs
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--weights", "mnist_unet", "--n", "6", "--batch", "6", "--samplers", "ddim-3"]) == 0
    out, err = capsys.readouterr()
    assert "warning: --n 6 is too few samples" in err and "weights: the shipped model mnist_unet" in err
    record = json.loads((tmp_path / "mnist_unet_quality.json").read_text())
    q = record["quality"]
    assert record["weights"] == "mnist_unet" and json.loads(out[:out.rindex("}") + 1]) == q
    assert set(q) >= {"real_train_images", "DDIM-3"} and "DDPM-1000" not in q and q["DDIM-3"]["n"] == 6
    assert q["DDIM-3"]["steps"] == 3 and q["DDIM-3"]["eta"] == 0 and q["DDIM-3"]["fid"] > 0
    assert _digests(HERE) == shipped
    # the second sampler fails: the first one's figures are in the file already
    real = metrics.sample_quality
    calls = []

    def failing(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return real(*a, **k)

    monkeypatch.setattr(metrics, "sample_quality", failing)
    with pytest.raises(RuntimeError, match="out of memory"):
        main(["evaluate", "--weights", "mnist_unet", "--n", "6", "--batch", "6", "--samplers", "ddim-2,ddpm-2",
              "--out", "two.json"])
    kept = json.loads((tmp_path / "two.json").read_text())["quality"]
    assert "real_train_images" in kept and kept["DDIM-2"]["n"] == 6 and "DDPM-2" not in kept


def test_a_hub_id_that_cannot_be_fetched_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    huggingface_hub = pytest.importorskip("huggingface_hub")

    def offline(*a, **k):
        raise OSError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    monkeypatch.chdir(tmp_path)
    assert main(["sample", "--weights", "google/ddpm-cifar10-32", "--out", "samples", "--n", "1"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("weights: the model hub's checkpoint google/ddpm-cifar10-32")
    assert len(err) == 2 and "fetching it from the Hugging Face hub failed (OSError)" in err[1]
    assert list(tmp_path.iterdir()) == []
