"""The course's benchmarks: every figure in benchmarks/README.md is measured by this script, on this machine,
in one run, and written with the command, the machine and the date.

    python benchmarks/run.py                       # everything (each section records how long it took)
    python benchmarks/run.py --only overhead,toy   # some sections; the others keep their last results
    python benchmarks/run.py --only few-step --threads 1   # torch threads (recorded with each section)

Sections (DESIGN.md, issue "Benchmarks"):
  sampling  DDPM-1000 against DDIM (S = 10, 20, 50, 100; eta = 0 and 1) with the shipped MNIST U-Net, batch 256:
            median wall-clock of --repeats runs, speed-up, MNIST FID and confidence of the 256 samples
  overhead  time per sampling step outside the network (a zero-cost model), ours against diffusers'
            DDIMScheduler.step on the same configuration, and the U-Net's forward time for scale
  training  U-Net training throughput (images/s) through md.train at batch 64 and 128: threads, channels-last,
            torch.compile, bf16 autocast; and fp32 against bf16 for a wider U-Net (base 32)
  toy       seconds of training until the toy MLP's epsilon loss is within 5% of the exact floor
  course    wall-clock of the unit tests and of each notebook under nbval, side by side (as `make test`
            runs them) and in one process
  few-step  DDIM (eta = 0) against the second-order sampler md.heun at 10, 20 and 50 network evaluations with
            the shipped MNIST U-Net: MNIST FID and the classifier's sure fraction of 1,000 samples for two seeds,
            wall-clock per 1,000 samples; first a 200-sample trial of the timestep kinds "uniform"/"trailing"
  distributed  `python -m minddim train --data mnist` (shipped U-Net configuration) on 1 process against 2 under
            torchrun (gloo, one thread each) and 1 process on 2 threads: images/s of the training steps
  unet      the shipped U-Net against this machine's own float32 matrix-multiply rate: forward passes at the course's
            batch sizes for each memory layout and thread count, one training step, the package's defaults
            (channels-last, chunks of md.UNet.chunk rows) against the plain network on DDIM-50 sampling of 1,000
            digits, torch.compile and bf16 autocast (in this process and with oneDNN capped at AVX2)
  guidance  the shipped class-conditional U-Net (issue 35): `python -m minddim evaluate --class all` over w with
            DDIM-50 (and w = 2 with DDIM-25), classifier guidance of mnist_unet with the noise-aware classifier,
            three seeds of 300 digits; the share read as asked, sure fraction, MNIST FID, within-class diversity
Repeated timings are interleaved (setting A, B, ..., then again) and summarized by their median, since the
machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import minddim as md  # noqa: E402
from minddim.metrics import classifier_features, sample_quality  # noqa: E402
from minddim.commands import machine  # noqa: E402

SECTIONS = ("sampling", "overhead", "training", "toy", "course", "few-step", "distributed", "unet", "guidance")


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_sampling(repeats: int, batch: int = 256) -> dict:
    """DDPM-1000 against DDIM with the shipped model; timings interleaved across settings."""
    from minddim.data import load_mnist, to_model_range

    model, classifier = md.pretrained("mnist_unet"), md.pretrained("mnist_classifier")
    schedule = md.Schedule.linear()
    test = to_model_range(load_mnist("test")[0])
    reference = classifier_features(classifier, test)
    settings = [(1000, 1.0)] + [(S, eta) for eta in (0.0, 1.0) for S in (10, 20, 50, 100)]
    rows = {}
    for S, eta in settings:       # first pass: quality (one run per setting, all from seed 0)
        r = sample_quality(model, schedule, S, eta, n=batch, reference=reference, seed=0, batch=batch,
                           classifier=classifier, progress=False)
        rows[S, eta] = {"S": S, "eta": eta, "fid": r["fid"], "confidence": r["confidence"], "seconds": [r["seconds"]]}
    floor = md.frechet_distance(classifier_features(classifier, to_model_range(load_mnist("train")[0][:batch])),
                                reference)
    x_T = torch.randn(batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    for _ in range(repeats - 1):  # more timed passes, interleaved
        for S, eta in settings:
            rows[S, eta]["seconds"].append(_median_time(
                lambda: md.sample(model, x_T, schedule, md.timesteps(1000, S), eta, clip_x0=1.0,
                                  generator=torch.Generator().manual_seed(0)), 1))
    ddpm = statistics.median(rows[1000, 1.0]["seconds"])
    out = []
    for (S, eta), row in rows.items():
        med = statistics.median(row["seconds"])
        out.append({**row, "median_seconds": round(med, 2), "speedup": round(ddpm / med, 1),
                    "fid_ratio_to_ddpm": round(row["fid"] / rows[1000, 1.0]["fid"], 3),
                    "seconds": [round(s, 2) for s in row["seconds"]]})
    return {"batch": batch, "repeats": repeats, "real_images_fid": round(floor, 2), "rows": out}


def bench_overhead(repeats: int, batch: int = 256, S: int = 50) -> dict:
    """Per-step time outside the network: a model that returns a precomputed tensor, for md.sample and for
    diffusers' DDIMScheduler (same linear schedule, same S, clipping of the predicted x_0 to [-1, 1])."""
    schedule = md.Schedule.linear()
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(batch, 1, 28, 28, generator=g)
    eps = torch.randn(batch, 1, 28, 28, generator=g) * 0.1

    def zero_cost(x, t):
        return eps

    result = {"batch": batch, "S": S, "repeats": repeats}
    unet = md.pretrained("mnist_unet")
    t_batch = torch.full((batch,), 500)
    with torch.no_grad():
        unet(x_T, t_batch)
        result["unet_forward_ms"] = round(1e3 * _median_time(lambda: unet(x_T, t_batch), repeats), 2)
    try:
        from diffusers import DDIMScheduler
    except ImportError:
        DDIMScheduler = None
        result["diffusers"] = "not installed (pip install -e '.[bench]')"
    for eta in (0.0, 1.0):
        ours = _median_time(lambda: md.sample(zero_cost, x_T, schedule, md.timesteps(1000, S), eta, clip_x0=1.0,
                                              generator=torch.Generator().manual_seed(1)), repeats) / S
        row = {"ours_us_per_step": round(1e6 * ours, 1),
               "ours_share_of_unet_forward": round(ours / (result["unet_forward_ms"] / 1e3), 4)}
        if DDIMScheduler is not None:
            import diffusers

            sched = DDIMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                                  clip_sample=True, set_alpha_to_one=True, steps_offset=0)
            sched.set_timesteps(S)

            def theirs_loop():
                x, gen = x_T, torch.Generator().manual_seed(1)
                for t in sched.timesteps:
                    x = sched.step(zero_cost(x, t), t, x, eta=eta, generator=gen).prev_sample
                return x

            theirs = _median_time(theirs_loop, repeats) / S
            row.update({"diffusers": diffusers.__version__, "diffusers_us_per_step": round(1e6 * theirs, 1),
                        "ours_over_diffusers": round(ours / theirs, 3)})
        result[f"eta={eta:g}"] = row
    return result


def bench_training(steps: int = 15) -> dict:
    """U-Net (shipped configuration) training images/s through ``md.train`` itself (minibatch draw, L_simple,
    Adam, EMA): the time between consecutive steps, median over ``steps`` steps after three warm-up steps.
    Then the same for a wider U-Net (base 32) in float32 and in bf16 autocast (``precision="bf16"``)."""
    from minddim.losses import objective

    config = md.weights.provenance("mnist_unet")["model"]
    wide = {**config, "base": 32}
    schedule = md.Schedule.linear()
    data = torch.rand(2048, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    rows = []
    default_threads = torch.get_num_threads()
    # variants: (name, threads, channels_last, torch.compile, precision); channels-last is md.train's default
    # for images. Each run prefixes a variant with the model's name and configuration and the batch size.
    variants = [("contiguous", default_threads, False, False, "fp32"),
                ("contiguous, 1 thread", 1, False, False, "fp32"),
                ("channels-last (training default)", default_threads, True, False, "fp32"),
                ("torch.compile", default_threads, False, True, "fp32"),
                ("channels-last, bf16 autocast", default_threads, True, False, "bf16")]
    runs = [("shipped", config, batch, *v) for batch in (64, 128) for v in variants]
    runs += [("base 32", wide, 128, *v) for v in variants if v[0].startswith("channels-last")]
    for model_name, model_config, batch, name, threads, channels_last, compiled, precision in runs:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        stamps, nets = [], {}

        def timed_objective(model, x0, schedule, g):
            stamps.append(time.perf_counter())
            if compiled and "net" not in nets:
                nets["net"] = torch.compile(model)   # shares the parameters md.train optimizes
            return objective(nets.get("net", model), x0, schedule, generator=g)

        try:
            start = time.perf_counter()
            md.train(md.UNet(**model_config), data, schedule, steps=steps + 4, batch_size=batch, lr=1e-4,
                     progress=False, loss_fn=timed_objective, channels_last=channels_last, precision=precision)
            seconds = statistics.median(b - a for a, b in zip(stamps[3:], stamps[4:]))
            rows.append({"model": model_name, "batch": batch, "variant": name, "threads": threads,
                         "images_per_second": round(batch / seconds, 1),
                         "first_step_seconds": round(stamps[1] - start, 1)})
        except Exception as err:  # torch.compile needs a C++ compiler; report, do not hide
            rows.append({"model": model_name, "batch": batch, "variant": name, "threads": threads,
                         "error": f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"})
        finally:
            torch.set_num_threads(default_threads)
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.exists() else set()
    return {"model": config, "wide_model": wide, "steps_timed": steps, "rows": rows,
            "cpu_bf16_flags": sorted(flags & {"amx_bf16", "avx512_bf16"})}


def bench_toy(stage: int = 250, max_steps: int = 4000) -> dict:
    """Train the toy MLP (md.train_toy's recipe) in stages, resuming from a checkpoint, and record the
    training seconds until the EMA model's L_simple on 20k fixed draws is within 5% of the exact floor."""
    schedule = md.Schedule.linear()
    mixture = md.GaussianMixtureDenoiser(*md.toy_mixture("eight_gaussians"), schedule)
    g = torch.Generator().manual_seed(123)
    x0 = mixture.sample_data(20_000, g)
    t = torch.randint(1, schedule.T + 1, (20_000,), generator=g)
    noise = torch.randn(20_000, 2, generator=g)
    with torch.no_grad():
        floor = md.epsilon_loss(mixture, x0, schedule, t=t, noise=noise).item()
    trace, seconds, reached = [], 0.0, None
    with tempfile.TemporaryDirectory() as tmp:
        for steps in range(stage, max_steps + 1, stage):
            start = time.perf_counter()
            result = md.train_toy("eight_gaussians", steps=steps, seed=0, progress=False,
                                  checkpoint=Path(tmp) / "ckpt.pt", resume=True)
            seconds += time.perf_counter() - start
            with torch.no_grad():
                ratio = md.epsilon_loss(result.ema, x0, schedule, t=t, noise=noise).item() / floor
            trace.append({"steps": steps, "seconds": round(seconds, 1), "loss_over_floor": round(ratio, 4)})
            if ratio < 1.05 and reached is None:
                reached = trace[-1]
                break
    return {"floor": round(floor, 4), "reached": reached, "trace": trace}


def _suite(*options: str) -> dict:
    """The test suite once (README's test command, plus ``options``), with per-file times from a JUnit XML
    report: a notebook's time is the sum of its cells', and under pytest-xdist a file runs on one worker."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "report.xml"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", f"--junitxml={xml}", "-p", "no:cacheprovider",
                               *options], cwd=ROOT, capture_output=True, text=True)
        total = time.perf_counter() - start
        per_file, outcome = {}, {"passed": 0, "failed": 0, "skipped": 0}
        for case in ET.parse(xml).getroot().iter("testcase"):
            name = case.get("classname", "")      # "tests.test_x" or "notebooks.01_forward_process.ipynb"
            key = name.replace(".", "/", 1) if name.endswith(".ipynb") else "unit tests (tests/)"
            per_file[key] = per_file.get(key, 0.0) + float(case.get("time", 0))
            kind = "failed" if case.find("failure") is not None or case.find("error") is not None else \
                "skipped" if case.find("skipped") is not None else "passed"
            outcome[kind] += 1
    return {"returncode": proc.returncode, "total_seconds": round(total, 1), "outcome": outcome,
            "seconds": {k: round(v, 1) for k, v in sorted(per_file.items())}}


COURSE_MODES = {"side by side": (), "one process": ("-n", "0")}   # pyproject's -n auto, and serial for comparison


def bench_course() -> dict:
    """The test suite as `make test` runs it (pytest-xdist, one file per core, one torch thread each), then the
    same suite in one process (``-n 0``, torch's default threads), for the ratio of the two."""
    runs = {mode: _suite(*options) for mode, options in COURSE_MODES.items()}
    return {"runs": runs, "threads": torch.get_num_threads(),
            "speedup": round(runs["one process"]["total_seconds"] / runs["side by side"]["total_seconds"], 2)}


FEW_STEP_NFE = (10, 20, 50)        # network-evaluation budgets of the few-step section
FEW_STEP_KINDS = ("uniform", "trailing")   # timestep kinds tried; the table uses the one few_step_kind picks
FEW_STEP_SAMPLERS = ("DDIM", "Heun")


def steps_for(sampler: str, nfe: int) -> int:
    """The most timesteps S a sampler can take within ``nfe`` network evaluations: DDIM (eta = 0) costs one
    evaluation per step, S = nfe; md.heun costs 2S - 1 (the last step, to t = 0, is an Euler step), so
    S = (nfe + 1) // 2, i.e. 5, 10, 25 steps (9, 19, 49 evaluations) for budgets 10, 20, 50."""
    if sampler == "DDIM":
        return nfe
    if sampler == "Heun":
        return (nfe + 1) // 2
    raise ValueError(f"sampler must be one of {FEW_STEP_SAMPLERS}, got {sampler!r}")


def evaluations(sampler: str, S: int) -> int:
    """Network evaluations of one walk over S timesteps: S for DDIM, 2S - 1 for md.heun."""
    return S if sampler == "DDIM" else 2 * S - 1


def _draw(model, schedule, sampler: str, S: int, kind: str, x_T: torch.Tensor, batch: int, bar=None):
    """Samples in [-1, 1] from x_T (in batches of ``batch``), with the sampling seconds; clip_x0=1.0 as
    md.metrics.sample_quality samples. ``bar`` (tqdm) advances by network evaluations x samples."""
    tau = md.timesteps(schedule.T, S, kind)
    out, seconds = [], 0.0
    for i in range(0, len(x_T), batch):
        start = time.perf_counter()
        if sampler == "DDIM":
            x0 = md.sample(model, x_T[i:i + batch], schedule, tau, 0.0, clip_x0=1.0)
        else:
            x0 = md.heun(model, x_T[i:i + batch], schedule, tau, clip_x0=1.0)
        seconds += time.perf_counter() - start
        out.append(x0.clamp(-1, 1))
        if bar is not None:
            bar.update(evaluations(sampler, S) * len(x0))
    return torch.cat(out), seconds


def _mean_spread(values) -> dict:
    """Mean of two seeds' values and the spread between them, half their difference (|a - b| / 2)."""
    a, b = values
    return {"values": [round(v, 4) for v in values], "mean": round((a + b) / 2, 4), "spread": round(abs(a - b) / 2, 4)}


def few_step_verdict(rows: list, nfe: int = 20, target: tuple = ("DDIM", 50)) -> dict:
    """The issue's target: the second-order sampler at ~``nfe`` evaluations at least as good as DDIM-50 within
    the spread between two seeds. Met when Heun's mean FID is at most DDIM-50's plus the larger of the two
    rows' spreads, and its mean sure fraction at least DDIM-50's minus the larger of theirs."""
    heun = next(r for r in rows if r["sampler"] == "Heun" and r["budget"] == nfe)
    ref = next(r for r in rows if r["sampler"] == target[0] and r["S"] == target[1])
    fid_tol = max(heun["fid"]["spread"], ref["fid"]["spread"])
    sure_tol = max(heun["sure"]["spread"], ref["sure"]["spread"])
    fid_ok = heun["fid"]["mean"] <= ref["fid"]["mean"] + fid_tol
    sure_ok = heun["sure"]["mean"] >= ref["sure"]["mean"] - sure_tol
    return {"heun": f"Heun S = {heun['S']} ({heun['nfe']} evaluations)", "target": f"{target[0]}-{target[1]}",
            "fid": [heun["fid"]["mean"], ref["fid"]["mean"]], "fid_tolerance": fid_tol, "fid_met": fid_ok,
            "sure": [heun["sure"]["mean"], ref["sure"]["mean"]], "sure_tolerance": sure_tol, "sure_met": sure_ok,
            "met": bool(fid_ok and sure_ok)}


def few_step_kind(trial: list) -> str:
    """The timestep kind for the table, from the trial: the one whose Heun rows have the lower mean FID over
    the budgets (the second-order sampler is the one the target is about; DDIM uses the same kind so that the
    two samplers visit the same kind of grid). Ties go to the first of FEW_STEP_KINDS."""
    def heun_fid(kind):
        fids = [r["fid"] for r in trial if r["kind"] == kind and r["sampler"] == "Heun"]
        return sum(fids) / len(fids)
    return min(FEW_STEP_KINDS, key=heun_fid)


def bench_few_step(n: int = 1000, seeds=(0, 1), batch: int = 500, trial_n: int = 200) -> dict:
    """DDIM (eta = 0) against md.heun at the budgets FEW_STEP_NFE with the shipped MNIST U-Net.

    First a trial of the timestep kinds ("uniform", "trailing") on ``trial_n`` samples of seed 0 (the same x_T
    for every row), which picks the kind (:func:`few_step_kind`); then, on that kind, ``n`` samples for each
    seed (seed k draws x_T as md.metrics.sample_quality does; both samplers start from the same x_T), scored as the
    course scores samples: MNIST FID against the 10,000 test digits' classifier features and the classifier's
    sure fraction (top probability > 0.9). The floor is
    ``n`` real *training* digits per seed (a seeded permutation, as minddim.commands.evaluate_unet draws them; test
    digits would be part of the reference). Spreads are half the difference between the two seeds."""
    from tqdm import tqdm

    from minddim.data import load_mnist, to_model_range

    if len(seeds) != 2:
        raise ValueError(f"seeds: the spread is half the difference of two seeds, got {seeds}")
    model, classifier = md.pretrained("mnist_unet"), md.pretrained("mnist_classifier")
    schedule = md.Schedule.linear()
    reference = classifier_features(classifier, to_model_range(load_mnist("test")[0]))
    train = to_model_range(load_mnist("train")[0])

    def score(images):
        return (md.frechet_distance(classifier_features(classifier, images), reference),
                md.classifier_sure_fraction(images, classifier))

    real = [score(train[torch.randperm(len(train), generator=torch.Generator().manual_seed(s))[:n]])
            for s in seeds]
    plan = [(sampler, nfe) for sampler in FEW_STEP_SAMPLERS for nfe in FEW_STEP_NFE]
    work = sum(evaluations(sp, steps_for(sp, nfe)) for sp, nfe in plan)
    load_before = os.getloadavg()

    trial = []
    x_T = torch.randn(trial_n, 1, 28, 28, generator=torch.Generator().manual_seed(seeds[0]))
    with torch.no_grad(), tqdm(total=2 * work * trial_n, desc="few-step: kind trial", unit="eval",
                               unit_scale=True) as bar:
        for k in FEW_STEP_KINDS:
            for sampler, nfe in plan:
                S = steps_for(sampler, nfe)
                images, _ = _draw(model, schedule, sampler, S, k, x_T, batch, bar)
                fid, sure = score(images)
                trial.append({"kind": k, "sampler": sampler, "S": S, "nfe": evaluations(sampler, S),
                              "tau": md.timesteps(schedule.T, S, k)[[0, 1, -1]].tolist(),
                              "fid": round(fid, 2), "sure": round(sure, 4)})
    kind = few_step_kind(trial)
    print(f"few-step: timestep kind {kind!r} (trial: Heun's mean FID over the budgets is lowest)", flush=True)
    runs = {}
    with torch.no_grad(), tqdm(total=len(seeds) * work * n, desc=f"few-step: {n} samples x {len(seeds)} seeds",
                               unit="eval", unit_scale=True) as bar:
        for seed in seeds:
            x_T = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
            for sampler, nfe in plan:
                S = steps_for(sampler, nfe)
                images, seconds = _draw(model, schedule, sampler, S, kind, x_T, batch, bar)
                runs[sampler, nfe, seed] = (*score(images), seconds * 1000 / n)
    rows = []
    for sampler, nfe in plan:
        S = steps_for(sampler, nfe)
        fid, sure, sec = zip(*(runs[sampler, nfe, s] for s in seeds))
        rows.append({"sampler": sampler, "budget": nfe, "S": S, "nfe": evaluations(sampler, S),
                     "fid": _mean_spread(fid), "sure": _mean_spread(sure), "seconds_per_1000": _mean_spread(sec)})
    ddim50 = [runs["DDIM", 50, s][0] for s in seeds]
    for row in rows:             # FID minus DDIM-50's at the same seed (same x_T): the paired difference
        row["fid_minus_ddim50"] = _mean_spread([runs[row["sampler"], row["budget"], s][0] - d
                                                for s, d in zip(seeds, ddim50)])
    fid, sure = zip(*real)
    return {"n": n, "seeds": list(seeds), "batch": batch, "kind": kind, "trial_n": trial_n,
            "reference": "MNIST test set (10,000 images)", "real_train_images": {"fid": _mean_spread(fid),
                                                                                 "sure": _mean_spread(sure)},
            "trial": trial, "rows": rows, "verdict": few_step_verdict(rows),
            "loadavg_1min": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]}


def bench_distributed(repeats: int = 2, batch: int = 128, short: int = 4, long: int = 24) -> dict:
    """Training images/s of ``python -m minddim train --data mnist`` (the shipped U-Net's configuration, global
    batch ``batch``) on 1 process with 1 thread, on 1 process with 2 threads, and on 2 processes under torchrun
    (gloo, 1 thread each: DistributedDataParallel, each process half of the batch). Each setting trains ``short``
    and ``long`` steps from scratch; the difference of the training wall-clocks recorded in ema.json, divided by
    ``long - short`` steps, is the time per step without the start-up (imports, loading MNIST, the process group).
    ``repeats`` rounds, the settings interleaved in each; the median per setting. Needs MNIST under
    $MINDDIM_DATA. The load average before each run is recorded (the machine is shared)."""
    import socket

    config = md.weights.provenance("mnist_unet")["model"]
    settings = [("1 process, 1 thread", 1, 1), ("1 process, 2 threads", 1, 2),
                ("2 processes (torchrun, gloo), 1 thread each", 2, 1)]
    model_args = ["--batch-size", str(batch), "--base", str(config["base"]), "--mults",
                  ",".join(map(str, config["mults"])), "--num-res", str(config["num_res"]),
                  "--checkpoint-every", "1000000"]     # past the run's end: the one checkpoint is written at the end

    def train_seconds(procs: int, threads: int, steps: int) -> float:
        with socket.socket() as sock:                # a free port for torchrun's rendezvous
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with tempfile.TemporaryDirectory() as out:
            launcher = ([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}",
                         f"--master_port={port}", "-m", "minddim"] if procs > 1 else [sys.executable, "-m", "minddim"])
            cmd = launcher + ["train", "--data", "mnist", "--out", out, "--steps", str(steps), *model_args]
            env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
            done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
            return json.loads((Path(out) / "ema.json").read_text())["wall_clock_seconds"]

    per_step = {name: [] for name, _, _ in settings}
    load = {name: [] for name, _, _ in settings}
    for _ in range(repeats):
        for name, procs, threads in settings:
            load[name].append(round(os.getloadavg()[0], 2))
            seconds = {steps: train_seconds(procs, threads, steps) for steps in (short, long)}
            per_step[name].append((seconds[long] - seconds[short]) / (long - short))
    rows = []
    for name, procs, threads in settings:
        seconds = statistics.median(per_step[name])
        rows.append({"setting": name, "processes": procs, "threads": threads,
                     "seconds_per_step": [round(v, 3) for v in per_step[name]],
                     "images_per_second": round(batch / seconds, 1), "load_average_before": load[name],
                     "command": f"OMP_NUM_THREADS={threads} " + (f"torchrun --nproc_per_node={procs} -m minddim"
                                if procs > 1 else "python -m minddim") + f" train --data mnist --out RUN --steps "
                                f"{short} (then {long}) " + " ".join(model_args)})
    return {"model": config, "batch": batch, "steps": [short, long], "repeats": repeats, "rows": rows}


UNET_BATCHES = (16, 32, 64, 128, 256, 500)   # the course's batches: notebooks 4-300 at once, evaluate and tests 500
UNET_CHUNKS = (64, 128, 256)                  # chunk sizes tried on a batch of 500
CAPPED = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


GUIDANCE_RUNS = {   # file stem -> evaluate's arguments (after --seed S --n N --batch N)
    "cfg50": "--weights mnist_unet_cond --class all --guidance 0,0.5,1,2,4 --samplers ddim-50",
    "cfg25": "--weights mnist_unet_cond --class all --guidance 2 --samplers ddim-25",
    "cg50": "--weights mnist_unet --class all --classifier mnist_noisy_classifier --classifier-guidance 1,4,16 "
            "--samplers ddim-50"}


def bench_guidance(n: int = 300, seeds=(0, 1, 2), folder=None) -> dict:
    """Run GUIDANCE_RUNS for each seed (one thread each, the seeds side by side) into ``folder`` (a temporary one by
    default) and fold their records: :func:`guidance_summary`. Needs MNIST under $MINDDIM_DATA."""
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(folder or tmp)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        procs = [subprocess.Popen(["bash", "-c", " && ".join(
            f"{sys.executable} -m minddim evaluate {args} --seed {s} --n {n} --batch {n} --out {folder}/{stem}_s{s}.json"
            for stem, args in GUIDANCE_RUNS.items())], env=env) for s in seeds]
        if any(p.wait() for p in procs):
            raise RuntimeError("an evaluate run failed")
        return guidance_summary(folder, seeds)


def guidance_summary(folder, seeds=(0, 1, 2)) -> dict:
    """The records of GUIDANCE_RUNS in ``folder`` (``{stem}_s{seed}.json``, as `evaluate --out` writes them) as one
    dict: per setting, the seeds' records; the real digits' records; the commands."""
    folder, settings, real, commands = Path(folder), {}, [], []
    for s in seeds:
        for stem in GUIDANCE_RUNS:
            q = json.loads((folder / f"{stem}_s{s}.json").read_text())["quality"]
            commands.append(q["command"])
            if stem == "cfg50":
                real.append(q["real_train_images"])
            for key, rec in q.items():
                if isinstance(rec, dict) and "accuracy" in rec:
                    settings.setdefault(key + (" (mnist_unet)" if stem == "cg50" else ""), []).append(rec)
    n = json.loads((folder / f"cfg50_s{seeds[0]}.json").read_text())["quality"]["n"]
    return {"n": n, "seeds": list(seeds), "settings": settings, "real_train_images": real, "commands": commands}


def matmul_rate(repeats: int, n: int = 2048) -> float:
    """GFLOP/s of an n x n float32 matrix product on torch's current threads, the best of ``repeats``: the
    practical limit of this CPU for dense float32 arithmetic, against which the U-Net's rate is read."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    a @ b
    return 2 * n**3 / min(_median_time(lambda: a @ b, 1) for _ in range(repeats)) / 1e9


def counted_flops(fn) -> int:
    """Floating-point operations of ``fn()`` as torch counts them (convolutions and matrix products, forward and
    backward; the elementwise work of GroupNorm, SiLU and the residual sums is not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def plain_unet(model: torch.nn.Module) -> torch.nn.Module:
    """The U-Net as the package ran it before issue 39: the same weights in the contiguous layout, whole batches."""
    import copy

    plain = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    plain.chunk = None
    return plain


def _interleaved(fns: dict, repeats: int, summary=statistics.median) -> dict:
    """``summary`` (the median, or ``min`` for the best) of each callable's seconds over ``repeats`` rounds, one
    call of each per round (after one warm-up call each), so that a slow spell of the shared machine falls on every
    setting alike."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_median_time(fn, 1))
    return {name: summary(ts) for name, ts in times.items()}


def _training_step(model, batch: int, precision: str = "fp32"):
    """One step of md.train's work on random images: L_simple's draw, forward (under bf16 autocast for
    ``precision="bf16"``), backward and Adam's update."""
    from minddim.losses import objective

    schedule = md.Schedule.linear()
    g = torch.Generator().manual_seed(0)
    x0 = (torch.rand(batch, 1, 28, 28, generator=g) * 2 - 1).contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-6, foreach=True)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = objective(model, x0, schedule, generator=g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def bf16_probe(repeats: int, batch: int = 128, train_batch: int = 64) -> dict:
    """The shipped U-Net's forward (batch ``batch``) and training step (``train_batch``) in float32 and under bf16
    autocast, on this process's kernels (run under CAPPED to see a CPU without native bfloat16)."""
    from minddim.train import native_bf16

    model = md.pretrained("mnist_unet")
    x, t = torch.randn(batch, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.full((batch,), 500)

    def forward(precision):
        def run():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                model(x, t)
        return run
    trainee = md.UNet(**md.weights.provenance("mnist_unet")["model"])
    med = _interleaved({"forward fp32": forward("fp32"), "forward bf16": forward("bf16"),
                        "training step fp32": _training_step(trainee, train_batch),
                        "training step bf16": _training_step(trainee, train_batch, "bf16")}, repeats, min)
    return {"native_bf16": native_bf16(), "capability": torch.backends.cpu.get_cpu_capability(), "batch": batch,
            "train_batch": train_batch, "threads": torch.get_num_threads(),
            **{f"{k} ms": round(1e3 * v, 1) for k, v in med.items()},
            "forward slowdown": round(med["forward bf16"] / med["forward fp32"], 2),
            "training step slowdown": round(med["training step bf16"] / med["training step fp32"], 2)}


def bench_unet(repeats: int = 3, n_sample: int = 1000, sample_batch: int = 500, sample_rounds: int = 2) -> dict:
    """The shipped U-Net against this machine's float32 matmul rate (issue 39), in one run:

    Timings are the best of ``repeats`` interleaved rounds.
    - forward passes (no gradients) at UNET_BATCHES on 1 thread (how the suite runs notebooks, side by side) and on
      all cores, in the contiguous and the channels-last layout, unchunked, and on 500 rows in chunks of UNET_CHUNKS;
    - one training step (forward, backward, Adam) at batch 64 and 128 on all cores, in both layouts;
    - DDIM-50 sampling of ``n_sample`` digits in batches of ``sample_batch`` (as ``evaluate`` samples), the package's
      defaults against :func:`plain_unet`, ``sample_rounds`` interleaved rounds, and how far their samples differ;
    - torch.compile of the channels-last network at batch 128: its compile time and its forward time;
    - bf16 autocast against float32 here and, in a subprocess, with torch's kernels capped at AVX2 (CAPPED)."""
    model = md.pretrained("mnist_unet")
    plain = plain_unet(model)
    flops = counted_flops(lambda: model(torch.zeros(1, 1, 28, 28), torch.full((1,), 500)))
    default_threads = torch.get_num_threads()
    rates, forward = {}, []
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        rates[threads] = matmul_rate(repeats)
        for batch in UNET_BATCHES:
            x, t = torch.randn(batch, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.full((batch,), 500)
            fns = {("contiguous", None): lambda: plain(x, t), ("channels-last", None): lambda: _in_chunks(model, x, t, None)}
            if batch == 128:             # torch.inference_mode in place of torch.no_grad
                fns[("channels-last, inference_mode", None)] = lambda: _inference(model, x, t)
            if batch == max(UNET_BATCHES):
                fns.update({("channels-last", c): (lambda c=c: _in_chunks(model, x, t, c)) for c in UNET_CHUNKS})
            with torch.no_grad():
                med = _interleaved(fns, repeats, min)
            for (layout, chunk), seconds in med.items():
                gflops = batch * flops / seconds / 1e9
                forward.append({"threads": threads, "batch": batch, "layout": layout, "chunk": chunk,
                                "ms": round(1e3 * seconds, 1), "images_per_second": round(batch / seconds),
                                "gflops": round(gflops, 1), "share_of_matmul": round(gflops / rates[threads], 3)})
    torch.set_num_threads(default_threads)
    training = []
    for batch in (64, 128):
        nets = {"contiguous": md.UNet(**model.config).to(memory_format=torch.contiguous_format),
                "channels-last": md.UNet(**model.config)}
        steps = {layout: _training_step(net, batch) for layout, net in nets.items()}
        step_flops = counted_flops(steps["channels-last"])
        for layout, seconds in _interleaved(steps, repeats, min).items():
            gflops = step_flops / seconds / 1e9
            training.append({"threads": default_threads, "batch": batch, "layout": layout,
                             "ms": round(1e3 * seconds, 1), "images_per_second": round(batch / seconds),
                             "gflops": round(gflops, 1), "share_of_matmul": round(gflops / rates[default_threads], 3)})
    # DDIM-50 of n_sample digits as `evaluate` draws them (x_T from seed 0, batches of sample_batch)
    schedule, tau = md.Schedule.linear(), md.timesteps(1000, 50)
    x_T = torch.randn(n_sample, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    samples, times = {}, {"plain network (before)": [], "package defaults": []}

    def draw(net, name):
        start = time.perf_counter()
        samples[name] = torch.cat([md.sample(net, x_T[i:i + sample_batch], schedule, tau, 0.0, clip_x0=1.0)
                                   for i in range(0, n_sample, sample_batch)])
        times[name].append(time.perf_counter() - start)
    for _ in range(sample_rounds):
        draw(plain, "plain network (before)")
        draw(model, "package defaults")
    before, after = (min(v) for v in times.values())
    sampling = {"n": n_sample, "batch": sample_batch, "S": 50, "threads": default_threads, "rounds": sample_rounds,
                "seconds": {k: [round(s, 1) for s in v] for k, v in times.items()},
                "speedup": round(before / after, 2),
                "max_abs_difference": float((samples["package defaults"] - samples["plain network (before)"])
                                            .abs().max())}
    return {"flops_per_image": flops, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "kernel_caps": {k: os.environ[k] for k in CAPPED if k in os.environ},
            "matmul_gflops": {str(k): round(v, 1) for k, v in rates.items()}, "chunk_default": md.UNet.chunk,
            "forward": forward, "training": training, "sampling": sampling, "compile": _compile_trial(model, repeats),
            "bf16": {"this process": bf16_probe(repeats), "capped at AVX2": _capped_bf16_probe(repeats)}}


def _in_chunks(model, x, t, chunk):
    """model(x, t) with ``model.chunk`` set to ``chunk`` for this call (None: the whole batch at once)."""
    saved, model.chunk = model.chunk, chunk
    try:
        return model(x, t)
    finally:
        model.chunk = saved


def _inference(model, x, t):
    with torch.inference_mode():
        return _in_chunks(model, x, t, None)


def _compile_trial(model, repeats: int, batch: int = 128) -> dict:
    """torch.compile of the (channels-last) U-Net: seconds of the first call (compilation) and the forward
    time after it, against the eager network's, at ``batch``."""
    x, t = torch.randn(batch, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.full((batch,), 500)
    try:
        with torch.no_grad():
            compiled = torch.compile(model)
            start = time.perf_counter()
            compiled(x, t)
            first = time.perf_counter() - start
            med = _interleaved({"eager": lambda: model(x, t), "compiled": lambda: compiled(x, t)}, repeats, min)
    except Exception as err:  # torch.compile needs a C++ compiler; report, do not hide
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"}
    saved = med["eager"] - med["compiled"]
    return {"batch": batch, "compile_seconds": round(first, 1), "eager_ms": round(1e3 * med["eager"], 1),
            "compiled_ms": round(1e3 * med["compiled"], 1), "speedup": round(med["eager"] / med["compiled"], 2),
            "forwards_to_repay": round(first / saved) if saved > 0 else None}


def _capped_bf16_probe(repeats: int) -> dict:
    """:func:`bf16_probe` in a fresh process with torch's kernels capped at AVX2 (no native bfloat16)."""
    proc = subprocess.run([sys.executable, __file__, "--bf16-probe", "--repeats", str(repeats)],
                          env={**os.environ, **CAPPED}, capture_output=True, text=True)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1][:200] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cpu_summary() -> dict:
    """lscpu's model name and which of the vector/matrix flags that matter to torch on a CPU it lists."""
    info = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        info["model"] = fields.get("Model name", "").strip()
        flags = set(fields.get("Flags", "").split())
    except (OSError, subprocess.CalledProcessError):
        flags = set()
    info["flags"] = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")
                     if f in flags]
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions per setting (median)")
    parser.add_argument("--results", default=str(HERE / "results.json"))
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own); on a shared machine 1 can be faster")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite README.md from --results without measuring anything")
    parser.add_argument("--bf16-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--guidance-from", default=None,
                        help="guidance: fold the records the same evaluate commands already wrote into this folder "
                             "(cfg50_s0.json, ...) instead of running them again")
    args = parser.parse_args(argv)
    if args.render_only:
        from minddim._io import atomic_path

        with atomic_path(HERE / "README.md") as tmp:
            tmp.write_text(render(json.loads(Path(args.results).read_text())))
        return 0
    if args.bf16_probe:                                # the unet section's subprocess under capped kernels
        print(json.dumps(bf16_probe(args.repeats)))
        return 0
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    only = args.only.split(",")
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"--only: unknown sections {unknown}; choose from {SECTIONS}")
    path = Path(args.results)
    results = json.loads(path.read_text()) if path.exists() else {}
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    for name in SECTIONS:
        if name not in only:
            continue
        print(f"[{name}] ...", flush=True)
        start = time.perf_counter()
        fn = {"sampling": lambda: bench_sampling(args.repeats), "overhead": lambda: bench_overhead(max(args.repeats, 5)),
              "training": bench_training, "toy": bench_toy, "course": bench_course, "few-step": bench_few_step,
              "distributed": lambda: bench_distributed(args.repeats),
              "unet": lambda: bench_unet(args.repeats),
              "guidance": lambda: (guidance_summary(args.guidance_from) if args.guidance_from else bench_guidance())}[name]
        value = fn()
        results[name] = {"command": command, "date": datetime.date.today().isoformat(), "machine": machine(),
                         "cpu": cpu_summary(), "section_seconds": round(time.perf_counter() - start, 1),
                         "results": value}
        print(json.dumps(value, indent=1)[:2000], flush=True)
        from minddim._io import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(results, indent=1))
        with atomic_path(HERE / "README.md") as tmp:
            tmp.write_text(render(results))
    return 0


def _throughput_line(row: dict, base, threads: bool) -> str:
    """One markdown row of a training-throughput table: images/s (or the error), its ratio to ``base``."""
    ips = row.get("images_per_second")
    cells = [row["batch"], row["variant"], *([row["threads"]] if threads else []), ips or row.get("error", ""),
             f"{ips / base:.2f}x" if ips and base else "", row.get("first_step_seconds", "")]
    return "| " + " | ".join(map(str, cells)) + " |"


def render(results: dict) -> str:
    """benchmarks/README.md from results.json: nothing in it is typed by hand."""
    lines = ["# Benchmarks", "",
             "Generated by `python benchmarks/run.py` from `results.json`; do not edit. Rerun everything with",
             "`make bench` (installs the optional `bench` extra, i.e. diffusers, then runs the script), or one",
             "section with `python benchmarks/run.py --only SECTION`. Each section lists the command, date and",
             "machine it was measured with, and how its figures are summarized (repeated timings: the median of",
             "interleaved repetitions; quality over seeds: mean and spread).", ""]

    def head(name, title):
        r = results[name]
        m = r["machine"]
        cpu = r.get("cpu", {})
        flags = ", ".join(cpu.get("flags", [])) or "none of avx2/avx512/amx"
        model = f" ({cpu['model']}; flags {flags})" if cpu.get("model") else ""
        lines.extend([f"## {title}", "", f"`{r['command']}` on {r['date']}: {m['processor']}{model}, {m['cpu_count']} "
                      f"cores, {m['threads']} torch threads, torch {m['torch']}, Python {m['python']} "
                      f"(section took {r['section_seconds']:.0f} s).", ""])
        return r["results"]

    if "sampling" in results:
        r = head("sampling", "1. DDIM against DDPM (shipped MNIST U-Net)")
        lines += [f"Batch of {r['batch']} samples from the same x_T; wall-clock is the median of {r['repeats']} runs; "
                  f"MNIST FID of the {r['batch']} samples against the 10,000 test digits ({r['batch']} real training "
                  f"digits score {r['real_images_fid']}).", "",
                  "| sampler | eta | median s | speed-up vs DDPM-1000 | MNIST FID | FID / DDPM's | confidence |",
                  "|---|---|---|---|---|---|---|"]
        for row in r["rows"]:
            name = "DDPM-1000" if row["S"] == 1000 else f"DDIM-{row['S']}"
            lines.append(f"| {name} | {row['eta']:g} | {row['median_seconds']:.1f} | {row['speedup']:.1f}x | "
                         f"{row['fid']:.1f} | {row['fid_ratio_to_ddpm']:.2f} | {row['confidence']:.3f} |")
        ddim50 = next(row for row in r["rows"] if row["S"] == 50 and row["eta"] == 0)
        ddpm = next(row for row in r["rows"] if row["S"] == 1000)
        lines += ["", f"Target: DDIM-50 at least 18x faster than DDPM-1000 with FID at most 1.1 times DDPM-1000's. "
                  f"Speed-up measured: {ddim50['speedup']:.1f}x ({'met' if ddim50['speedup'] >= 18 else 'not met'}). "
                  f"FID at N = {r['batch']}: ratio {ddim50['fid_ratio_to_ddpm']:.2f}, but at this N one draw's FID is "
                  f"mostly small-sample bias ({r['batch']} real digits score {r['real_images_fid']:.1f}, DDPM-1000 "
                  f"{ddpm['fid']:.1f}), so the quality half of the target is judged on the 1,000-sample record below.",
                  ""]
        quality = md.weights.provenance("mnist_unet").get("quality")
        if quality:   # the shipped weights' own record: 1,000 samples, so less seed noise than 256
            ratio = quality["DDIM-50"]["fid"] / quality["DDPM-1000"]["fid"]
            # a record made before `evaluate` took --samplers (it then always drew DDIM-50 and DDPM-1000)
            today = ("" if "--samplers" in quality["command"] else
                     "; `evaluate` now samples DDIM-50 alone by default, so the same figures need the recorded "
                     "command plus `--samplers ddim-50,ddpm-1000`")
            lines += [f"With more samples (`{quality['command']}`, N = {quality['n']}, recorded in "
                      f"`minddim/weights/mnist_unet.json`{today}): DDPM-1000 FID {quality['DDPM-1000']['fid']:.1f} "
                      f"({quality['DDPM-1000']['seconds']:.0f} s), DDIM-50 FID {quality['DDIM-50']['fid']:.1f} "
                      f"({quality['DDIM-50']['seconds']:.0f} s), ratio {ratio:.2f} "
                      f"({'met' if ratio <= 1.1 else 'not met'}); {quality['n']} real training digits score "
                      f"{quality['real_train_images']['fid']:.1f}. The classifier is sure (top probability > 0.9) "
                      f"of {quality['DDPM-1000']['sure']:.1%} of the DDPM-1000 samples, "
                      f"{quality['DDIM-50']['sure']:.1%} of the DDIM-50 ones and "
                      f"{quality['real_train_images']['sure']:.1%} of the real digits.", ""]
    if "overhead" in results:
        r = head("overhead", "2. Sampler overhead per step (zero-cost model)")
        lines += [f"Batch {r['batch']}, S = {r['S']}, median of {r['repeats']} runs. The U-Net's forward pass takes "
                  f"{r['unet_forward_ms']:.1f} ms at this batch.", "",
                  "| eta | ours (us/step) | diffusers DDIMScheduler.step (us/step) | ours / diffusers | ours / U-Net forward |",
                  "|---|---|---|---|---|"]
        for eta in ("0", "1"):
            row = r[f"eta={eta}"]
            lines.append(f"| {eta} | {row['ours_us_per_step']:.0f} | {row.get('diffusers_us_per_step', float('nan')):.0f} "
                         f"({row.get('diffusers', r.get('diffusers', ''))}) | {row.get('ours_over_diffusers', float('nan')):.2f} "
                         f"| {100 * row['ours_share_of_unet_forward']:.2f}% |")
        lines += ["", "Targets: ours no slower than diffusers, and under 2% of the U-Net's forward time.", ""]
    if "training" in results:
        r = head("training", "3. Training throughput on this CPU")
        lines += [f"The shipped U-Net's configuration ({r['model']}) trained by `md.train` (minibatch draw, L_simple, "
                  f"Adam, EMA update); images/s from the median of {r['steps_timed']} step times (from one step's "
                  f"start to the next's) after three warm-up steps; the first step includes setup and compilation.", "",
                  "| batch | variant | threads | images/s | vs contiguous | first step (s) |", "|---|---|---|---|---|---|"]
        shipped = [row for row in r["rows"] if row.get("model", "shipped") == "shipped"]
        for row in shipped:
            base = next((b.get("images_per_second") for b in shipped
                         if b["batch"] == row["batch"] and b["variant"] == "contiguous"), None)
            lines.append(_throughput_line(row, base, threads=True))
        lines += ["", "Kept as the training default: channels-last (`md.train(..., channels_last=None)` turns it on for "
                  "a tensor of images) and all cores. `torch.compile` is not the default; see its rows "
                  "(its first step includes compilation).", ""]
        wide = [row for row in r["rows"] if row.get("model") == "base 32"]
        if wide:
            fp32 = next((b.get("images_per_second") for b in wide if b["variant"].startswith("channels-last (")), None)
            flags = ", ".join(r.get("cpu_bf16_flags", [])) or "none"
            lines += [f"A wider U-Net ({r['wide_model']}), channels-last, float32 against `precision=\"bf16\"` "
                      f"(`python -m minddim train --precision bf16`: the forward pass under `torch.autocast` in "
                      f"bfloat16). This CPU's bfloat16 flags: {flags}.", "",
                      "| batch | variant | images/s | vs float32 | first step (s) |", "|---|---|---|---|---|"]
            lines += [_throughput_line(row, fp32, threads=False) for row in wide]
            lines += ["", "bf16 is not the default: for the shipped U-Net it is no faster than float32 channels-last (rows "
                      "above), and its gain depends on the CPU's bfloat16 units (the flags above), which this "
                      "benchmark does not vary.", ""]
    if "toy" in results:
        r = head("toy", "4. The toy model: training time to within 5% of the exact loss floor")
        reached = r["reached"]
        lines += [f"Eight Gaussians, `md.train_toy` recipe (batch 512, Adam 3e-3, EMA 0.995), EMA model's L_simple on "
                  f"20,000 fixed draws against the Bayes-optimal floor {r['floor']}.", "",
                  "| steps | training seconds | loss / floor |", "|---|---|---|"]
        lines += [f"| {row['steps']} | {row['seconds']:.1f} | {row['loss_over_floor']:.3f} |" for row in r["trace"]]
        lines += ["", f"Within 5% after {reached['steps']} steps, {reached['seconds']:.1f} s of training." if reached
                  else "Not within 5% in the steps tried.", ""]
    if "course" in results:
        r = head("course", "5. The course: unit tests and notebooks under nbval")
        runs = r["runs"]
        lines += ["README's test command without the install (`pytest`: pytest-xdist, one file per core, one torch "
                  "thread each), then the same suite in one process (`pytest -n 0`, "
                  f"{r['threads']} torch threads), one after the other:", ""]
        for mode, run in runs.items():
            o = run["outcome"]
            lines.append(f"- {mode}: {run['total_seconds']:.0f} s in all; {o['passed']} passed, {o['failed']} failed, "
                         f"{o['skipped']} skipped (exit code {run['returncode']})")
        lines += ["", f"Side by side is {r['speedup']:.2f}x as fast. Per file (a notebook's time is the sum of its "
                  "cells'; side by side, two files run at once):", "",
                  "| part | " + " | ".join(f"{mode} (s)" for mode in runs) + " |", "|---|" + "---|" * len(runs)]
        keys = sorted({k for run in runs.values() for k in run["seconds"]})
        lines += [f"| {k} | " + " | ".join(f"{run['seconds'].get(k, 0):.1f}" for run in runs.values()) + " |"
                  for k in keys]
        if results["course"]["date"] < "2026-12-05":
            lines += ["", "This run predates the course's renumbering and rewrite (issue 33): its rows carry today's "
                      "file names for the notebooks as they then were, and notebooks 06 and 08 then had other "
                      "numbers. README's \"Running the tests\" holds each notebook's time on 2026-12-05."]
        lines.append("")
    if "few-step" in results:
        r = head("few-step", "6. Few steps: DDIM against the second-order sampler (shipped MNIST U-Net)")
        lines += _render_few_step(r)
    if "distributed" in results:
        r = head("distributed", "7. Training on 2 processes under torchrun (gloo) on this CPU")
        lines += _render_distributed(r)
    if "unet" in results:
        r = head("unet", "8. The U-Net against this CPU's own matrix-multiply rate")
        lines += _render_unet(r)
    if "guidance" in results:
        r = head("guidance", "9. Guidance on MNIST (the shipped class-conditional U-Net)")
        lines += _render_guidance(r, folded="--guidance-from" in results["guidance"]["command"])
    return "\n".join(lines)


def _render_guidance(r: dict, folded: bool = False) -> list:
    """Section 9 of the README: the trade-off table over w and the target's verdict (``folded``: the section's run
    folded records the same commands had written, so its own time and threads are not the measurement's)."""
    def ms(values, scale=1.0, digits=1):
        v = [scale * x for x in values]
        mean = sum(v) / len(v)
        std = (sum((x - mean) ** 2 for x in v) / (len(v) - 1)) ** 0.5
        return f"{mean:.{digits}f} ± {std:.{digits}f}"

    lines = ([f"The figures are the records of the `evaluate` commands below, run on the machine named above on the date "
              f"above (each record holds its platform and threads, not the date or the CPU model), one torch thread each, the three seeds side by side (as `bench_guidance` runs them); this section's run folded "
              f"those records, so the time and threads above are the folding's.", ""] if folded else [])
    lines += [f"`python -m minddim evaluate --class all` (the commands below), {r['n']} digits per setting and seed "
             f"({r['n'] // 10} a class), seeds {', '.join(map(str, r['seeds']))}: mean ± std over the seeds. Accuracy: "
             f"the share the MNIST classifier reads as the class asked for; sure: its top probability above 0.9; "
             f"MNIST FID against the 10,000 test digits (biased upwards at this N: compare it with the real digits' "
             f"row); diversity: the within-class spread of the samples' classifier features over that of the test "
             f"digits of the same classes (`md.metrics.within_class_spread`; 1 = as varied as real digits). NFE: "
             f"U-Net evaluations per sample (classifier-free guidance costs two a step; classifier guidance one, "
             f"plus a pass of the noise-aware classifier, forward and backward). Diversity groups the samples by the "
             f"class asked for, including those the classifier reads as other digits (many, in the "
             f"classifier-guidance rows). The real digits are {r['n']} training digits drawn at random (not "
             f"{r['n'] // 10} a class, as the samples are), printed for scale, not as a floor.", "",
             "| setting | NFE | accuracy (%) | sure (%) | MNIST FID | diversity |", "|---|---|---|---|---|---|"]
    for name, recs in r["settings"].items():
        lines.append(f"| {name} | {recs[0]['network_evaluations_per_sample']} | "
                     f"{ms([x['accuracy'] for x in recs], 100)} | {ms([x['sure'] for x in recs], 100)} | "
                     f"{ms([x['fid'] for x in recs])} | {ms([x['diversity'] for x in recs], digits=3)} |")
    real = r["real_train_images"]
    lines.append(f"| {r['n']} real training digits | | | {ms([x['sure'] for x in real], 100)} | "
                 f"{ms([x['fid'] for x in real])} | |")
    w2 = [x["accuracy"] for x in r["settings"]["DDIM-50 w=2"]]
    met = sum(w2) / len(w2) >= 0.97
    lines += ["", f"Target (issue 35): at w = 2 with DDIM-50, at least 97% read as the class asked for, averaged over "
              f"the ten classes: {ms(w2, 100)}% (**{'met' if met else 'not met'}**), MNIST FID "
              f"{ms([x['fid'] for x in r['settings']['DDIM-50 w=2']])}. Notebook 09 (section 4) reads the same table "
              f"from the model's record, `minddim/weights/mnist_unet_cond.json`.", "", "Commands:", ""]
    lines += [f"- `{c}`" for c in r["commands"]]
    return lines + [""]


def _render_unet(r: dict) -> list:
    """Section 8 of the README: forward and training rates as shares of the matmul rate, the defaults' gain on
    sampling, torch.compile and bf16."""
    rates = r["matmul_gflops"]
    lines = [f"The shipped MNIST U-Net: {r['flops_per_image'] / 1e6:.1f} MFLOP per image per forward pass (counted by "
             f"`torch.utils.flop_counter.FlopCounterMode`: convolutions and matrix products). The CPU's practical "
             f"limit is a 2048 x 2048 float32 matrix product, best of the repeats: "
             + ", ".join(f"{v:.0f} GFLOP/s on {k} thread{'s' if k != '1' else ''}" for k, v in rates.items())
             + f". torch's kernels: {r['cpu_capability']}"
             + (f" (capped: {' '.join(f'{k}={v}' for k, v in r['kernel_caps'].items())})" if r.get("kernel_caps") else "")
             + ". Times are the best of interleaved repetitions (on a shared machine noise only adds); 'share' is "
             f"the U-Net's GFLOP/s over the matrix product's on the same threads. `layout` is the memory format of "
             f"the weights and activations; `chunk` splits a batch into passes of that many rows "
             f"(`md.UNet.chunk`, {r['chunk_default']} by default).", "",
             "**Forward passes** (no gradients):", "",
             "| threads | batch | layout | chunk | ms | images/s | GFLOP/s | share |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {row['threads']} | {row['batch']} | {row['layout']} | {row['chunk'] or '-'} | {row['ms']:.1f} | "
              f"{row['images_per_second']} | {row['gflops']:.1f} | {row['share_of_matmul']:.0%} |" for row in r["forward"]]
    best = {}
    for row in r["forward"]:
        if row["layout"] == "channels-last" and (row["chunk"] in (None, r["chunk_default"])):
            key = row["threads"], row["batch"]
            if row["batch"] <= r["chunk_default"] or row["chunk"] == r["chunk_default"] or key not in best:
                best[key] = row
    plain = {(row["threads"], row["batch"]): row for row in r["forward"] if row["layout"] == "contiguous"}
    lines += ["", "The package's defaults (channels-last; a batch over the chunk size in chunks) against the plain "
              "network (contiguous, whole batch), forward passes per second, from the table:", "",
              "| threads | batch | defaults' share | plain share | defaults / plain |", "|---|---|---|---|---|"]
    lines += [f"| {k[0]} | {k[1]} | {row['share_of_matmul']:.0%} | {plain[k]['share_of_matmul']:.0%} | "
              f"{row['images_per_second'] / plain[k]['images_per_second']:.2f}x |"
              for k, row in sorted(best.items()) if k in plain and k[1] in (128, 500)]
    inference = [(row["threads"], row["images_per_second"] / best[row["threads"], row["batch"]]["images_per_second"])
                 for row in r["forward"] if row["layout"].endswith("inference_mode")]
    if inference:
        lines += ["", "`torch.inference_mode` in place of `torch.no_grad` (channels-last, batch 128): "
                  + ", ".join(f"{ratio:.2f}x on {k} thread{'s' if k != 1 else ''}" for k, ratio in inference)
                  + ". The samplers keep `torch.no_grad`: a tensor made under inference mode can never enter autograd, "
                  "and a learner may well take a sample's gradient afterwards (a Langevin or guidance step)."]
    lines += ["", "**One training step** (L_simple's draw, forward, backward, Adam), FLOPs of forward and backward "
              "counted the same way:", "",
              "| threads | batch | layout | ms | images/s | GFLOP/s | share |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {row['threads']} | {row['batch']} | {row['layout']} | {row['ms']:.1f} | {row['images_per_second']} | "
              f"{row['gflops']:.1f} | {row['share_of_matmul']:.0%} |" for row in r["training"]]
    s = r["sampling"]
    (before_name, before), (after_name, after) = s["seconds"].items()
    lines += ["", f"**DDIM-50 sampling of {s['n']:,} digits** in batches of {s['batch']} (as `python -m minddim "
              f"evaluate` draws them, x_T from seed 0), {s['threads']} threads, {s['rounds']} interleaved rounds: the "
              f"{before_name} {', '.join(f'{v:.1f}' for v in before)} s, the {after_name} "
              f"{', '.join(f'{v:.1f}' for v in after)} s: **{s['speedup']:.2f}x** (ratio of the best rounds). The two "
              f"sets of samples differ by at most {s['max_abs_difference']:.1e} (images in [-1, 1]). Both compute the "
              f"same products, summed in another order, so we expect float32 rounding compounded over the 50 steps; "
              f"no run isolates it.", ""]
    c = r["compile"]
    if "error" in c:
        lines += [f"**torch.compile**: failed here ({c['error']}).", ""]
    else:
        repay = (f"it repays its compilation after about {c['forwards_to_repay']:,} forward passes of {c['batch']} rows"
                 if c["forwards_to_repay"] else "it is no faster, so it never repays its compilation")
        lines += [f"**torch.compile** of the channels-last network at batch {c['batch']}: the first call takes "
                  f"{c['compile_seconds']:.0f} s (compilation; less when torch's on-disk cache holds an earlier run's "
                  f"work, as it may here; no cold-cache time is recorded), then {c['compiled_ms']:.1f} ms per forward against "
                  f"{c['eager_ms']:.1f} ms eager ({c['speedup']:.2f}x); {repay}. A notebook makes a few hundred "
                  f"(DDIM-50 on a few batches), so the package does not compile; it would also recompile for every "
                  f"new batch shape.", ""]
    lines += ["**bf16 autocast** against float32 (`python -m minddim train --precision bf16`), forward at batch "
              "128 and one training step at batch 64:", "",
              "| kernels | native bfloat16 | forward fp32 ms | forward bf16 ms | slower by | step fp32 ms | step bf16 ms "
              "| slower by |", "|---|---|---|---|---|---|---|---|"]
    for name, b in r["bf16"].items():
        if "error" in b:
            lines.append(f"| {name} | | {b['error']} | | | | | |")
            continue
        lines.append(f"| {name} ({b['capability']}, {b['threads']} threads) | {'yes' if b['native_bf16'] else 'no'} | "
                     f"{b['forward fp32 ms']:.0f} | {b['forward bf16 ms']:.0f} | {b['forward slowdown']:.2f}x | "
                     f"{b['training step fp32 ms']:.0f} | {b['training step bf16 ms']:.0f} | "
                     f"{b['training step slowdown']:.2f}x |")
    lines += ["", "Without native bfloat16 (AMX or AVX-512 BF16, `from minddim.train import native_bf16`), `md.train` warns once when "
              "asked for bf16, quoting the capped row's slowdown.", ""]
    return lines


def _render_distributed(r: dict) -> list:
    """Section 7 of the README: images/s of the training command on 1 and 2 processes, and what that shows."""
    short, long = r["steps"]
    base = r["rows"][0]["images_per_second"]
    lines = [f"`python -m minddim train --data mnist` with the shipped U-Net's configuration ({r['model']}), global "
             f"batch {r['batch']}, trained for {short} and for {long} steps from scratch in each setting; images/s = "
             f"{r['batch']} x ({long} - {short}) / (difference of the two runs' training wall-clocks in ema.json), so "
             f"the start-up (imports, loading MNIST, joining the process group) is left out; the median of "
             f"{r['repeats']} rounds, the settings interleaved. Under torchrun each "
             f"process computes half of the batch and DistributedDataParallel all-reduces the gradients over gloo "
             f"(README, \"Training on several GPUs or machines\").", "",
             "| setting | images/s | vs 1 process, 1 thread | s per step (each round) | load average before each round |",
             "|---|---|---|---|---|"]
    lines += [f"| {row['setting']} | {row['images_per_second']} | {row['images_per_second'] / base:.2f}x | "
              f"{', '.join(map(str, row['seconds_per_step']))} | {', '.join(map(str, row['load_average_before']))} |"
              for row in r["rows"]]
    lines += ["", "Commands:", ""] + [f"- `{row['command']}`" for row in r["rows"]]
    rounds = range(len(r["rows"][0]["seconds_per_step"]))
    quiet = min(rounds, key=lambda k: max(row["load_average_before"][k] for row in r["rows"]))
    lines += ["", f"The machine is shared: a load average above 1 before a setting means another job held a core. "
              f"In the quietest round (round {quiet + 1}, load "
              f"average at most {max(row['load_average_before'][quiet] for row in r['rows'])} before each setting): "
              + "; ".join(f"{row['setting']} {r['batch'] / row['seconds_per_step'][quiet]:.0f} images/s"
                          for row in r["rows"]) + "."]
    lines += ["", "What this shows: on one 2-core CPU, the same global batch on 2 processes of 1 thread against 1 "
              "process of 1 and of 2 threads, i.e. what DDP's split and gloo's all-reduce cost or save next to "
              "torch's own threads on the same cores. What it does not show: a GPU figure. On GPUs each process has "
              "its own device and NCCL all-reduces over NVLink or the network (DDP overlaps the all-reduce with the "
              "backward pass on either backend); none of that is measured here (no GPU was at hand).", ""]
    return lines


def _pm(stat: dict, fmt: str) -> str:
    """'mean ± spread' of a _mean_spread record (the spread unsigned)."""
    return f"{stat['mean']:{fmt}} ± {stat['spread']:{fmt.lstrip('+')}}"


def _render_few_step(r: dict) -> list:
    """Section 6 of the README: the kind trial, the table, the floor and the target's verdict."""
    n, (s0, s1), real = r["n"], r["seeds"], r["real_train_images"]
    lines = [f"DDIM (`md.sample`, eta = 0) and Heun's method on the probability-flow ODE (`md.heun`, whose stages "
             f"are the DDIM step; S timesteps cost 2S - 1 network evaluations, the last step to t = 0 being an "
             f"Euler step) at budgets of {', '.join(str(b) for b in FEW_STEP_NFE)} evaluations: DDIM takes S = NFE "
             f"steps, Heun the most steps that fit, S = (NFE + 1) // 2. Both start from the same x_T (seed k draws "
             f"x_T as `md.metrics.sample_quality` does) and clip the predicted x_0 to [-1, 1]; batches of {r['batch']}.", "",
             f"**Timestep kind.** A trial on {r['trial_n']} samples (seed {s0}, the same x_T in every row), MNIST "
             f"FID (biased upwards at this N, so read it across rows only) and the classifier's sure fraction:", "",
             "| kind | tau_1, tau_2, tau_S | sampler | S | NFE | FID | sure |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {t['kind']} | {', '.join(map(str, t['tau']))} | {t['sampler']} | {t['S']} | {t['nfe']} | "
              f"{t['fid']:.1f} | {t['sure']:.1%} |" for t in r["trial"]]
    heun = {k: [t["fid"] for t in r["trial"] if t["kind"] == k and t["sampler"] == "Heun"] for k in FEW_STEP_KINDS}
    ab = md.Schedule.linear().alpha_bars                 # alpha-bar_t at index t (alpha-bar_0 = 1)
    tau = {(t["kind"], t["S"]): t["tau"] for t in r["trial"] if t["sampler"] == "Heun"}
    S_min = min(S for _, S in tau)
    first_uniform, last_trailing = tau["uniform", S_min][0], tau["trailing", S_min][0]
    start_uniform = min(t[-1] for (k, _), t in tau.items() if k == "uniform")
    lines += ["", f"Why the kind may matter for Heun (two hypotheses; no run here isolates either): its last step, "
              f"from tau_1 to t = 0, is an Euler (DDIM) step, since the network is not defined at t = 0, and it costs "
              f"one evaluation. On \"uniform\" tau_1 = {first_uniform} (alpha-bar = {ab[first_uniform]:.4f}): that "
              f"step may hardly move the sample, so its evaluation may be nearly spent for nothing, while every step "
              f"before it is second order; the walk starts at tau_S = {start_uniform} at S = {S_min} rather than T "
              f"(alpha-bar = {ab[start_uniform]:.4f} there, so starting from N(0, I) may cost little). On "
              f"\"trailing\" the S steps are spread evenly from T to 0, but the last one is a first-order step over "
              f"the low-noise end, tau_1 = {last_trailing} -> 0 at S = {S_min} (alpha-bar {ab[last_trailing]:.2f} "
              f"-> 1). The trial compares the kinds, not these effects: Heun's mean FID over the three budgets in the trial is "
              f"{sum(heun['uniform']) / 3:.1f} on uniform and {sum(heun['trailing']) / 3:.1f} on trailing, so the "
              f"table uses **{r['kind']}** for both samplers (`few_step_kind` picks the lower; at N = "
              f"{r['trial_n']} this is one draw, paired by x_T, with no spread of its own: the choice rests on it, "
              f"and the table's rows on the other kind were not measured at N = 1,000).", ""]
    lines += [
              f"**Results**, {n:,} samples per seed, seeds {s0} and {s1}; each figure is the mean of the two seeds ± "
              f"the spread between them, **half their difference**. MNIST FID against the {r['reference']}, "
              f"on the classifier's features as everywhere in the course; sure = the share of samples whose top "
              f"classifier probability exceeds 0.9 (`md.classifier_sure_fraction`); FID − DDIM-50's is paired seed by seed "
              f"(same x_T); wall-clock per 1,000 samples measured in this run.", "",
              "| sampler | S | NFE | MNIST FID | FID − DDIM-50's (paired) | sure | s per 1,000 samples |",
              "|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        sure = row["sure"]
        lines.append(f"| {row['sampler']}{' (target row)' if row['sampler'] == 'DDIM' and row['S'] == 50 else ''} | "
                     f"{row['S']} | {row['nfe']} | {_pm(row['fid'], '.2f')} | {_pm(row['fid_minus_ddim50'], '+.2f')} | "
                     f"{100 * sure['mean']:.1f}% ± {100 * sure['spread']:.1f}% | "
                     f"{_pm(row['seconds_per_1000'], '.1f')} |")
    sure = real["sure"]
    lines.append(f"| {n:,} real training digits (floor) | | | {_pm(real['fid'], '.2f')} | | "
                 f"{100 * sure['mean']:.1f}% ± {100 * sure['spread']:.1f}% | |")
    v = r["verdict"]
    paired = next(row for row in r["rows"] if row["sampler"] == "Heun" and row["budget"] == 20)["fid_minus_ddim50"]
    per_eval = [row["seconds_per_1000"]["mean"] / row["nfe"] for row in r["rows"]]
    lines += ["", f"The floor: {n:,} real *training* digits per seed (a seeded permutation, seeds {s0} and {s1}, as "
              f"`minddim.commands.evaluate_unet` draws them; test digits would be part of the reference). A model's FID at N = "
              f"{n:,} cannot be expected below it.", "",
              f"Target: the second-order sampler at ~20 evaluations at least as good as DDIM-50, tested as: within the "
              f"unpaired spread between two seeds: **{'met' if v['met'] else 'not met'}** on that test. {v['heun']}: FID {v['fid'][0]:.2f} "
              f"against DDIM-50's {v['fid'][1]:.2f} (allowed up to {v['fid'][1] + v['fid_tolerance']:.2f}, the larger "
              f"spread being {v['fid_tolerance']:.2f}: {'met' if v['fid_met'] else 'not met'}); sure "
              f"{v['sure'][0]:.1%} against {v['sure'][1]:.1%} (allowed down to "
              f"{v['sure'][1] - v['sure_tolerance']:.1%}: {'met' if v['sure_met'] else 'not met'}). Paired seed by "
              f"seed (same x_T), which cancels most of the draw-to-draw noise, its FID minus DDIM-50's is "
              f"{paired['values'][0]:+.2f} and {paired['values'][1]:+.2f} ({_pm(paired, '+.2f')}): "
              + ("consistently above DDIM-50's, by less than the unpaired spread the target allows: by the paired "
                 "comparison Heun is not quite as good as DDIM-50."
                 if min(paired["values"]) > 0 else "not consistently above DDIM-50's."), "",
              f"Wall-clock is of a shared 2-core machine (1-minute load average {r['loadavg_1min'][0]} before the "
              f"samples, {r['loadavg_1min'][1]} after), so it is inflated when others run. Per evaluation it is "
              f"{min(per_eval):.1f}-{max(per_eval):.1f} s per 1,000 samples across the rows (the load changed "
              f"during the run, a likely cause of the spread that no run isolates), so the wall-clock follows the number of evaluations, whichever the sampler.", ""]
    return lines



if __name__ == "__main__":
    sys.exit(main())
