"""The course's benchmarks: every figure in benchmarks/README.md is measured by this script, on this machine,
in one run, and written with the command, the machine and the date.

    python benchmarks/run.py                       # everything (each section records how long it took)
    python benchmarks/run.py --only overhead,toy   # some sections; the others keep their last results

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
Repeated timings are interleaved (setting A, B, ..., then again) and summarized by their median, since the
machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import datetime
import json
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
from minddim.train import machine  # noqa: E402

SECTIONS = ("sampling", "overhead", "training", "toy", "course")


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions per setting (median)")
    parser.add_argument("--results", default=str(HERE / "results.json"))
    args = parser.parse_args(argv)
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
              "training": bench_training, "toy": bench_toy, "course": bench_course}[name]
        value = fn()
        results[name] = {"command": command, "date": datetime.date.today().isoformat(), "machine": machine(),
                         "section_seconds": round(time.perf_counter() - start, 1), "results": value}
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
             "machine it was measured with; timings are medians of interleaved repetitions.", ""]

    def head(name, title):
        r = results[name]
        m = r["machine"]
        lines.extend([f"## {title}", "", f"`{r['command']}` on {r['date']}: {m['processor']}, {m['cpu_count']} cores, "
                      f"{m['threads']} torch threads, torch {m['torch']}, Python {m['python']} "
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
                  f"mostly sampling noise ({r['batch']} real digits score {r['real_images_fid']:.1f}, DDPM-1000 "
                  f"{ddpm['fid']:.1f}), so the quality half of the target is judged on the 1,000-sample record below.",
                  ""]
        quality = md.weights.provenance("mnist_unet").get("quality")
        if quality:   # the shipped weights' own record: 1,000 samples, so less seed noise than 256
            ratio = quality["DDIM-50"]["fid"] / quality["DDPM-1000"]["fid"]
            lines += [f"With more samples (`{quality['command']}`, N = {quality['n']}, recorded in "
                      f"`minddim/weights/mnist_unet.json`): DDPM-1000 FID {quality['DDPM-1000']['fid']:.1f} "
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
        lines.append("")
    return "\n".join(lines)



if __name__ == "__main__":
    sys.exit(main())
