"""Bad input gets a ValueError or TypeError that names the argument, never a silent wrong answer."""

import pytest
import torch

import minddim as md

S = md.Schedule.linear(50, 1e-3, 0.2)
x = torch.zeros(4, 2)
eps = torch.zeros(4, 2)


@pytest.mark.parametrize("call,err,name", [
    # t outside 0..T / 1..T, wrong type, wrong batch
    (lambda: md.q_sample(x, 51, S), ValueError, "t"),
    (lambda: md.q_sample(x, -1, S), ValueError, "t"),
    (lambda: md.q_sample(x, torch.tensor([1, 2, 3]), S), ValueError, "t"),
    (lambda: md.q_sample(x, torch.tensor([1.0, 2, 3, 4]), S), TypeError, "t"),
    (lambda: md.q_sample(x, 2.5, S), TypeError, "t"),
    (lambda: md.q_sample(x, True, S), TypeError, "t"),
    (lambda: md.q_step(x, 0, S), ValueError, "t"),
    (lambda: md.q_posterior(x, x, 0, S), ValueError, "t"),
    (lambda: md.q_posterior(x, x, 51, S), ValueError, "t"),
    (lambda: md.predict_x0(x, eps, 0, S), ValueError, "t"),
    (lambda: md.ddim_step(x, eps, 10, 10, S), ValueError, "t_prev"),
    (lambda: md.ddim_step(x, eps, 10, -1, S), ValueError, "t_prev"),
    (lambda: md.q_sigma_posterior(x, x, 10, 5, 5.0, S), ValueError, "sigma"),
    (lambda: md.q_sigma_posterior(x, x, 10, 5, -0.1, S), ValueError, "sigma"),
    # noise and shapes
    (lambda: md.q_sample(x, 3, S, noise=torch.zeros(4, 3)), ValueError, "noise"),
    (lambda: md.q_step(x, 3, S, noise=torch.zeros(2)), ValueError, "noise"),
    (lambda: md.ddim_step(x, eps, 10, 5, S, eta=1.0, noise=torch.zeros(3, 2)), ValueError, "noise"),
    (lambda: md.ddim_step(x, torch.zeros(4, 3), 10, 5, S), ValueError, "eps"),
    (lambda: md.q_posterior(x, torch.zeros(4, 3), 3, S), ValueError, "x0"),
    (lambda: md.q_sample(x, 3, S, noise=torch.full((4, 2), float("nan"))), ValueError, "noise"),
    (lambda: md.q_sample(torch.full((4, 2), float("inf")), 3, S), ValueError, "x0"),
    (lambda: md.q_sample([[0.0]], 3, S), TypeError, "x0"),
    (lambda: md.q_sample(torch.zeros(4, 2, dtype=torch.long), 3, S), TypeError, "x0"),
    (lambda: md.q_sample(x, 3, "linear"), TypeError, "schedule"),
    # eta
    (lambda: md.ddim_step(x, eps, 10, 5, S, eta=-0.1), ValueError, "eta"),
    (lambda: md.ddim_step(x, eps, 10, 5, S, eta=float("nan")), ValueError, "eta"),
    (lambda: md.ddim_step(x, eps, 10, 5, S, eta="ddpm"), ValueError, "eta"),
    (lambda: md.ddim_sigma(S, 10, 5, -1), ValueError, "eta"),
    (lambda: md.sample(lambda a, b: a, x, S, [1, 2], eta=-1), ValueError, "eta"),
    # timesteps: S outside 1..T, unknown kinds, not strictly increasing, outside 1..T
    (lambda: md.timesteps(50, 0), ValueError, "S"),
    (lambda: md.timesteps(50, 51), ValueError, "S"),
    (lambda: md.timesteps(50, 10, "linear"), ValueError, "kind"),
    (lambda: md.timesteps(50, 2.0), TypeError, "S"),
    (lambda: md.sample(lambda a, b: a, x, S, [5, 3, 10]), ValueError, "timesteps"),
    (lambda: md.sample(lambda a, b: a, x, S, [3, 3, 10]), ValueError, "timesteps"),
    (lambda: md.sample(lambda a, b: a, x, S, [0, 3]), ValueError, "timesteps"),
    (lambda: md.sample(lambda a, b: a, x, S, [3, 51]), ValueError, "timesteps"),
    (lambda: md.sample(lambda a, b: a, x, S, []), ValueError, "timesteps"),
    (lambda: md.sample(lambda a, b: a, x, S, [1.5, 3]), TypeError, "timesteps"),
    (lambda: md.encode(lambda a, b: a, x, S, [4, 2]), ValueError, "timesteps"),
    # losses, bound, metrics, data
    (lambda: md.objective(lambda a, b: a, x, S, prediction="x_start"), ValueError, "prediction"),
    (lambda: md.objective(lambda a, b: a, x, S, weighting="vlb"), ValueError, "weighting"),
    (lambda: md.epsilon_loss(lambda a, b: a[:, :1], x, S), ValueError, "model"),
    (lambda: md.vlb(lambda a, b: a, x, S, decoder="laplace"), ValueError, "decoder"),
    (lambda: md.discretized_gaussian_log_likelihood(torch.full((3,), 2.0), 0.0, 1.0), ValueError, "x"),
    (lambda: md.sliced_wasserstein(torch.zeros(5, 2), torch.zeros(5, 3)), ValueError, "x and y"),
    (lambda: md.toy_data("spiral", 10), ValueError, "name"),
    (lambda: md.toy_data("two_moons", 0), ValueError, "n"),
    (lambda: md.train(md.MLP(), x, S, steps=0), ValueError, "steps"),
    (lambda: md.train(md.MLP(), "data", S, steps=1), TypeError, "data"),
    (lambda: md.slerp(x, x, 1.5), ValueError, "w"),
    (lambda: md.slerp(x, torch.zeros(4, 3), 0.5), ValueError, "z1"),
])
def test_bad_input_names_the_argument(call, err, name):
    with pytest.raises(err, match=rf"\b{name}\b"):
        call()


def test_error_messages_state_the_allowed_range():
    with pytest.raises(ValueError, match=r"1\.\.50"):
        md.q_step(x, 0, S)
    with pytest.raises(ValueError, match=r"0, 1"):
        md.Schedule.from_betas([0.5, 1.5])
    with pytest.raises(ValueError, match=r"1\.\.50"):
        md.timesteps(50, 60)


def test_train_toy_writes_a_run_folder_and_refuses_to_replace_one(tmp_path, capsys):
    """`python -m minddim train-toy`: ema.pt (loadable as an MLP), ema.json with the command and quality, loss.csv;
    a second run into the same folder is refused (nothing replaced) unless --force; bad --steps names the option."""
    import json

    import torch

    from minddim.__main__ import main

    out = tmp_path / "toy"
    assert main(["train-toy", "--out", str(out), "--steps", "20", "--seed", "1"]) == 0
    meta = json.loads((out / "ema.json").read_text())
    assert meta["steps"] == 20 and meta["seed"] == 1 and "--steps 20" in meta["command"]
    assert set(meta["quality"]) == {"draws", "seed", "l_simple", "exact_floor", "ratio_to_floor"}
    assert len((out / "loss.csv").read_text().splitlines()) == 21
    md.MLP().load_state_dict(torch.load(out / "ema.pt", weights_only=True))
    before = (out / "ema.pt").read_bytes()
    with pytest.raises(SystemExit) as exit_:
        main(["train-toy", "--out", str(out), "--steps", "20", "--seed", "2"])
    assert exit_.value.code == 2 and "--force" in capsys.readouterr().err
    assert (out / "ema.pt").read_bytes() == before
    assert main(["train-toy", "--out", str(out), "--steps", "20", "--seed", "2", "--force"]) == 0
    assert (out / "ema.pt").read_bytes() != before
    with pytest.raises(SystemExit):
        main(["train-toy", "--out", str(tmp_path / "bad"), "--steps", "0"])
    assert "--steps must be a positive integer" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_only_a_shipped_unet_is_loaded_as_one():
    from minddim.commands import load_unet

    assert type(load_unet("mnist_unet")).__name__ == "UNet" and load_unet("mnist_unet_cond").num_classes == 10
    for name in ("eight_gaussians_mlp", "mnist_classifier", "mnist_noisy_classifier"):
        with pytest.raises(ValueError, match="one of \\['mnist_unet', 'mnist_unet_cond'\\]"):
            load_unet(name)
