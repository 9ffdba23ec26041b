"""The benchmarks' bookkeeping (benchmarks/run.py): the few-step section's steps per evaluation budget, the count checked
against the samplers themselves, the timestep-kind choice and the target's verdict; the guidance section's folding
of evaluate's records. Cheap: no sampling of MNIST, no benchmark run."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

import minddim as md

_spec = importlib.util.spec_from_file_location("benchmarks_run", Path(__file__).parents[1] / "benchmarks" / "run.py")
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)


def test_steps_within_budget():
    assert [run.steps_for("DDIM", b) for b in (10, 20, 50)] == [10, 20, 50]
    assert [run.steps_for("Heun", b) for b in (10, 20, 50)] == [5, 10, 25]
    assert [run.evaluations("Heun", run.steps_for("Heun", b)) for b in (10, 20, 50)] == [9, 19, 49]
    for budget in range(1, 60):            # Heun: the most steps that fit, 2S - 1 <= budget < 2(S + 1) - 1
        S = run.steps_for("Heun", budget)
        assert run.evaluations("Heun", S) <= budget < run.evaluations("Heun", S + 1)
    with pytest.raises(ValueError, match="sampler"):
        run.steps_for("Euler", 10)


@pytest.mark.parametrize("sampler", ["DDIM", "Heun"])
@pytest.mark.parametrize("S", [1, 5, 10])
def test_evaluations_counted_on_the_samplers(schedule, sampler, S):
    calls = []

    def model(x, t):
        calls.append(t)
        return torch.zeros_like(x)

    x_T = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    tau = md.timesteps(schedule.T, S)
    if sampler == "DDIM":
        md.sample(model, x_T, schedule, tau, 0.0)
    else:
        md.heun(model, x_T, schedule, tau)
    assert len(calls) == run.evaluations(sampler, S)


def _row(sampler, budget, S, fid, fid_spread, sure, sure_spread):
    return {"sampler": sampler, "budget": budget, "S": S, "nfe": run.evaluations(sampler, S),
            "fid": {"mean": fid, "spread": fid_spread}, "sure": {"mean": sure, "spread": sure_spread}}


def test_verdict_within_the_spread():
    ddim50 = _row("DDIM", 50, 50, 13.0, 0.4, 0.90, 0.005)
    close = _row("Heun", 20, 10, 13.5, 0.2, 0.897, 0.002)     # 0.5 worse, larger spread 0.4: not met
    assert not run.few_step_verdict([ddim50, close])["met"]
    inside = _row("Heun", 20, 10, 13.3, 0.2, 0.897, 0.002)    # 0.3 worse, inside 0.4; sure inside 0.005
    v = run.few_step_verdict([ddim50, inside])
    assert v["met"] and v["fid_met"] and v["sure_met"] and v["fid_tolerance"] == 0.4
    unsure = _row("Heun", 20, 10, 12.0, 0.2, 0.88, 0.002)     # better FID, fewer sure samples: not met
    assert not run.few_step_verdict([ddim50, unsure])["met"]


def test_kind_is_heuns_lower_mean_fid():
    trial = [{"kind": k, "sampler": s, "fid": f} for k, s, f in
             [("uniform", "Heun", 20.0), ("uniform", "Heun", 10.0), ("uniform", "DDIM", 99.0),
              ("trailing", "Heun", 14.0), ("trailing", "Heun", 15.0), ("trailing", "DDIM", 1.0)]]
    assert run.few_step_kind(trial) == "trailing"
    trial[0]["fid"] = 12.0
    assert run.few_step_kind(trial) == "uniform"


def test_the_benchmarks_readme_is_what_results_json_renders():
    """benchmarks/README.md is generated: every figure in it (section 8's shares of the matmul rate included) comes
    from results.json, none is typed by hand."""
    import json

    results = json.loads((Path(__file__).parents[1] / "benchmarks" / "results.json").read_text())
    assert "unet" in results
    assert run.render(results) == (Path(__file__).parents[1] / "benchmarks" / "README.md").read_text()


def test_guidance_summary_folds_each_seeds_records_and_renders_the_verdict(tmp_path):
    """Three seeds' evaluate records (as `evaluate --out` writes them) folded per setting, and section 9's verdict
    read from the mean accuracy at w = 2 with DDIM-50 (met at 97%, not met below)."""
    def record(seed, acc):
        rec = lambda a, nfe: {"accuracy": a, "sure": 0.9, "fid": 10.0 + seed, "diversity": 0.8, "seed": seed,  # noqa: E731
                              "n": 30, "network_evaluations_per_sample": nfe}
        return {"cfg50": {"command": f"cfg50 {seed}", "n": 30, "real_train_images": {"fid": 5.0, "sure": 0.97},
                          "DDIM-50 w=0": rec(acc - 0.2, 50), "DDIM-50 w=2": rec(acc, 100)},
                "cfg25": {"command": f"cfg25 {seed}", "DDIM-25 w=2": rec(acc, 50)},
                "cg50": {"command": f"cg50 {seed}", "DDIM-50 classifier s=1": rec(0.5, 50)}}
    for acc, verdict in ((0.98, "**met**"), (0.9, "**not met**")):
        for seed in (0, 1, 2):
            for stem, q in record(seed, acc).items():
                (tmp_path / f"{stem}_s{seed}.json").write_text(json.dumps({"quality": q}))
        r = run.guidance_summary(tmp_path)
        assert r["n"] == 30 and r["seeds"] == [0, 1, 2] and len(r["commands"]) == 9
        assert list(r["settings"]) == ["DDIM-50 w=0", "DDIM-50 w=2", "DDIM-25 w=2", "DDIM-50 classifier s=1 (mnist_unet)"]
        assert [x["seed"] for x in r["settings"]["DDIM-50 w=2"]] == [0, 1, 2]
        text = "\n".join(run._render_guidance(r))
        assert verdict in text and "| DDIM-50 w=2 | 100 |" in text and "11.0 ± 1.0" in text
