"""minddim.hub: the DDPM paper's models in diffusers' format, sampled with the course's sampler.

Offline: the checkpoints are built here, with random weights. One has the architecture of google/ddpm-cifar10-32
(DDPM's CIFAR-10 network, 35.7M parameters), the other is a tiny network of the same family (residual blocks,
attention at one resolution) whose time dependence is made stronger (its time projections scaled by 10) so that
a wrong time offset shows. Both are saved with save_pretrained as DDPMPipeline folders (model_index.json,
unet/, scheduler/) with google/ddpm-cifar10-32's scheduler config, loaded through minddim.hub, and sampled by
minddim.sampling.sample beside diffusers' own pipelines from the same x_T and the same noise.

Tolerances (absolute, in the model's [-1, 1] units, on every intermediate x_t and on x_0): TOL = 1e-4 for DDIM-10
and for the 100-step chain, TOL_DDPM = 3e-4 for DDPM-1000. diffusers keeps its schedule in float32, we keep ours
in float64 and cast at use, the likely source of the difference (not isolated). Over DDPM's 1000 steps it grows towards the end of the
walk (the largest gap is at t <= 10, where 1 - bar-alpha_t ~ 1e-3 to 1e-4 has only three or four significant
digits in float32). Handing the network t instead of t - 1 must move DDIM-10's result by more than 100 x TOL
(printed with `pytest -s`, as are the measured gaps).
"""

import json
import shutil
import sys

import numpy as np
import pytest
import torch

import minddim as md
from minddim.hub import DiffusersEps, is_diffusers, load_diffusers

# diffusers comes with the dev extra (pip install -e '.[dev]'), so the suite always runs these tests
from diffusers import DDIMPipeline, DDPMPipeline, DDPMScheduler, UNet2DModel  # noqa: E402

TOL = 1e-4
TOL_DDPM = 3e-4

# google/ddpm-cifar10-32's unet/config.json (DDPM's CIFAR-10 model: widths 128-256-256-256, two residual blocks
# per resolution, attention at 16x16, in the down and the up path); one attention head as in DDPM
CIFAR10_32 = dict(sample_size=32, in_channels=3, out_channels=3, layers_per_block=2,
                  block_out_channels=(128, 256, 256, 256),
                  down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                  downsample_padding=0, flip_sin_to_cos=False, freq_shift=1, norm_eps=1e-6, norm_num_groups=32,
                  act_fn="silu", center_input_sample=False, mid_block_scale_factor=1,
                  time_embedding_type="positional", attention_head_dim=None)
TINY = dict(CIFAR10_32, sample_size=8, layers_per_block=1, block_out_channels=(8, 16), norm_num_groups=4,
            down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"))
# google/ddpm-cifar10-32's scheduler/scheduler_config.json
GOOGLE_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                        variance_type="fixed_small", clip_sample=True)


def _save(folder, unet_config, seed=0, time_scale=1.0, **scheduler):
    torch.manual_seed(seed)
    unet = UNet2DModel(**unet_config)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "time_emb_proj" in name:
                p.mul_(time_scale)
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(**{**GOOGLE_SCHEDULER, **scheduler})).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def cifar_folder(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("ddpm-cifar10-32"), CIFAR10_32)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("tiny"), TINY, time_scale=10.0)


def _recorded(pipe):
    """The pipeline's scheduler, made to record every x_{t_prev} its step returns."""
    xs, step = [], pipe.scheduler.step

    def record(*args, **kwargs):
        out = step(*args, **kwargs)
        xs.append(out.prev_sample)
        return out

    pipe.scheduler.step = record
    pipe.set_progress_bar_config(disable=True)
    return xs


def _off_by_one(model):
    """The mistake the loader exists to avoid: the network handed our 1-based t as if it were diffusers' index."""
    return lambda x, t: model.unet(x, t).sample


# -- time and schedule ------------------------------------------------------------------------------------

def test_the_network_is_handed_t_minus_1(tiny_folder):
    model, schedule = load_diffusers(tiny_folder)
    assert isinstance(model, DiffusersEps) and schedule.T == 1000 and model.image_shape == (3, 8, 8)
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([1, 500, 1000])
    with torch.no_grad():
        assert torch.equal(model(x, t), model.unet(x, t - 1).sample)
        assert (model(x, t) - model.unet(x, t).sample).abs().max() > 1e-2
    for bad in (0, 1001):
        with pytest.raises(ValueError, match=r"t must lie in 1\.\.1000"):
            model(x, torch.full((3,), bad))


def test_the_schedule_is_diffusers_alphas_cumprod_shifted_by_one(tiny_folder):
    """diffusers' alphas_cumprod[k] (k = 0..T-1) is our alpha_bars[k + 1]; alpha_bars[0] = 1."""
    model, schedule = load_diffusers(tiny_folder)
    theirs = DDPMScheduler(**GOOGLE_SCHEDULER).alphas_cumprod.double()
    assert schedule.alpha_bars[0] == 1
    torch.testing.assert_close(schedule.alpha_bars[1:], theirs, rtol=1e-5, atol=0)
    assert model.clip_x0 == 1.0 and model.variance_type == "fixed_small" and model.ddpm_eta == 1.0


# -- the samplers against diffusers' pipelines ------------------------------------------------------------

def test_ddim10_matches_diffusers_ddim_pipeline_on_the_cifar10_architecture(cifar_folder):
    """DDIM-10, eta = 0, on google/ddpm-cifar10-32's architecture. Time grid: diffusers' DDIMScheduler with
    "leading" spacing and steps_offset 0 (the checkpoint's config has none) visits k = 900, 800, ..., 0 and steps
    from k = 0 to bar-alpha = 1 (set_alpha_to_one); minddim.timesteps(1000, 10) is tau = 1, 101, ..., 901 and
    walks 901 -> ... -> 1 -> 0: the same grid, t = k + 1. Clipping: the config's clip_sample clamps the predicted
    x_0 to [-1, 1]; our step recomputes eps from the clipped x_0, which is diffusers' use_clipped_model_output."""
    model, schedule = load_diffusers(cifar_folder)
    assert sum(p.numel() for p in model.parameters()) == 35_746_307   # DDPM appendix B: "35.7 million parameters"
    tau = md.timesteps(schedule.T, 10)
    pipe = DDIMPipeline.from_pretrained(cifar_folder)
    pipe.scheduler.set_timesteps(10)
    assert pipe.scheduler.config.steps_offset == 0
    assert pipe.scheduler.timesteps.tolist() == (tau - 1).flip(0).tolist()
    xs = _recorded(pipe)
    theirs = pipe(batch_size=1, generator=torch.Generator().manual_seed(1), eta=0.0, num_inference_steps=10,
                  use_clipped_model_output=True, output_type="np").images
    x_T = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))   # the pipeline's first draw
    ours = md.sample(model, x_T, schedule, tau, 0.0, clip_x0=model.clip_x0, trajectory=True)
    along = (ours.xs[1:] - torch.stack(xs)).abs().max().item()
    images = np.abs((ours.x0 / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy() - theirs).max() * 2
    wrong = md.sample(_off_by_one(model), x_T, schedule, tau, 0.0, clip_x0=model.clip_x0)
    off = (wrong - ours.x0).abs().max().item()
    print(f"DDIM-10 eta 0, CIFAR-10 architecture: max |ours - diffusers| along the walk {along:.2e}, "
          f"on the images {images:.2e}; handing t instead of t - 1: {off:.2e}")
    assert along < TOL and images < TOL
    assert off > 100 * TOL


def test_ddpm1000_matches_diffusers_ddpm_pipeline(tiny_folder):
    """DDPM-1000 (Algorithm 2): our eta = 1 over all T steps against DDPMPipeline with variance_type fixed_small
    (sigma_t^2 = tilde-beta_t, DDIM eq. 16 at eta = 1). Same generator, same order of draws: x_T first, then one
    noise per step from t = 1000 down to t = 2; neither adds noise on the last step (tilde-beta_1 = 0 for us,
    `if t > 0` for diffusers). DDPM's mean (eq. 7) with the clipped x_0 is our step with eps recomputed from it."""
    model, schedule = load_diffusers(tiny_folder)
    pipe = DDPMPipeline.from_pretrained(tiny_folder)
    xs = _recorded(pipe)
    theirs = pipe(batch_size=2, generator=torch.Generator().manual_seed(2), num_inference_steps=1000,
                  output_type="np").images
    g = torch.Generator().manual_seed(2)
    x_T = torch.randn(2, 3, 8, 8, generator=g)
    ours = md.sample(model, x_T, schedule, md.timesteps(1000, 1000), model.ddpm_eta, clip_x0=model.clip_x0,
                     generator=g, trajectory=True)
    along = (ours.xs[1:] - torch.stack(xs)).abs().max().item()
    images = np.abs((ours.x0 / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy() - theirs).max() * 2
    print(f"DDPM-1000 eta 1 (fixed_small), tiny network: max |ours - diffusers| along the walk {along:.2e}, "
          f"on the images {images:.2e}")
    assert along < TOL_DDPM and images < TOL_DDPM


def test_fixed_large_is_sigma_hat(tmp_path):
    """DDPM's larger variance sigma_t^2 = beta_t (variance_type fixed_large) is our eta="sigma_hat", here on the
    100-step strided chain DDPMPipeline runs with num_inference_steps=100 ("leading": k = 990, ..., 0, i.e.
    minddim.timesteps(1000, 100)), where its variance is 1 - bar-alpha_t / bar-alpha_prev as ours is."""
    folder = _save(tmp_path / "large", TINY, time_scale=10.0, variance_type="fixed_large")
    model, schedule = load_diffusers(folder)
    assert model.ddpm_eta == "sigma_hat"
    pipe = DDPMPipeline.from_pretrained(folder)
    xs = _recorded(pipe)
    pipe(batch_size=2, generator=torch.Generator().manual_seed(3), num_inference_steps=100, output_type="np")
    g = torch.Generator().manual_seed(3)
    x_T = torch.randn(2, 3, 8, 8, generator=g)
    ours = md.sample(model, x_T, schedule, md.timesteps(1000, 100), model.ddpm_eta, clip_x0=model.clip_x0,
                     generator=g, trajectory=True)
    along = (ours.xs[1:] - torch.stack(xs)).abs().max().item()
    g = torch.Generator().manual_seed(3)
    x_T = torch.randn(2, 3, 8, 8, generator=g)
    small = md.sample(model, x_T, schedule, md.timesteps(1000, 100), 1.0, clip_x0=model.clip_x0, generator=g)
    print(f"fixed_large, 100 steps: max |ours - diffusers| along the walk {along:.2e}")
    assert along < TOL
    assert (small - ours.x0).abs().max() > 10 * TOL   # the variance matters: eta = 1 is another sampler


# -- layouts and refusals ---------------------------------------------------------------------------------

def test_the_hub_layout_with_everything_at_the_root_loads_the_same_model(tiny_folder, tmp_path):
    """google/ddpm-cifar10-32 was uploaded with config.json, the weights and scheduler_config.json at the root."""
    root = tmp_path / "flat"
    shutil.copytree(tiny_folder / "unet", root)
    shutil.copy(tiny_folder / "scheduler" / "scheduler_config.json", root)
    assert is_diffusers(root) and is_diffusers(tiny_folder)
    a, _ = load_diffusers(tiny_folder)
    b, _ = load_diffusers(root)
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([3, 700])
    with torch.no_grad():
        assert torch.equal(a(x, t), b(x, t))


@pytest.mark.parametrize("field, value", [
    ("beta_schedule", "squaredcos_cap_v2"), ("beta_schedule", "scaled_linear"), ("prediction_type", "v_prediction"),
    ("prediction_type", "sample"), ("variance_type", "learned_range"), ("thresholding", True),
    ("trained_betas", [0.1, 0.2]), ("rescale_betas_zero_snr", True), ("num_train_timesteps", 0)])
def test_unsupported_scheduler_configs_are_refused_naming_the_field(tiny_folder, tmp_path, field, value):
    folder = tmp_path / "bad"
    shutil.copytree(tiny_folder, folder)
    path = folder / "scheduler" / "scheduler_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), field: value}))
    with pytest.raises(ValueError, match=rf"{field}={value!r}".replace("[", r"\[").replace("]", r"\]")):
        load_diffusers(folder)


@pytest.mark.parametrize("change, message", [
    ({"out_channels": 6}, "out_channels=6"), ({"num_class_embeds": 10}, "class-conditional")])
def test_networks_other_than_an_unconditional_eps_model_are_refused(tmp_path, change, message):
    folder = _save(tmp_path / "net", {**TINY, **change})
    with pytest.raises(ValueError, match=message):
        load_diffusers(folder)


def test_bad_paths_and_a_missing_diffusers_give_clear_errors(tiny_folder, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="not a diffusers DDPM folder: no unet/config.json"):
        load_diffusers(tmp_path)
    (tmp_path / "unet").mkdir()
    shutil.copy(tiny_folder / "unet" / "config.json", tmp_path / "unet")
    with pytest.raises(ValueError, match="no scheduler/scheduler_config.json"):
        load_diffusers(tmp_path)
    with pytest.raises(ValueError, match="must be a diffusers folder or a hub id"):
        load_diffusers(tmp_path / "nowhere" / "at_all")
    config = json.loads((tiny_folder / "unet" / "config.json").read_text())
    flat = tmp_path / "vae"
    shutil.copytree(tiny_folder, flat)
    (flat / "unet" / "config.json").write_text(json.dumps({**config, "_class_name": "UNet2DConditionModel"}))
    with pytest.raises(ValueError, match="_class_name is 'UNet2DConditionModel'"):
        load_diffusers(flat)
    assert is_diffusers("google/ddpm-cifar10-32") and not is_diffusers("runs/mnist/ema.pt")
    assert not is_diffusers("mnist_unet") and not is_diffusers(tmp_path / "nowhere")
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(ImportError, match=r"pip install -c constraints.txt -e '\.\[hub\]'"):
        load_diffusers(tiny_folder)


def test_the_sample_command_writes_a_diffusers_checkpoints_samples_to_a_folder(tiny_folder, tmp_path):
    """`python -m minddim sample --weights <diffusers folder> --out <folder>`: the checkpoint's own size and
    clip_sample, the files of :func:`minddim.sample_folder.write_samples`."""
    from minddim.__main__ import main
    from minddim.sample_folder import read_png, write_samples

    out = tmp_path / "samples"
    assert main(["sample", "--weights", str(tiny_folder), "--out", str(out), "--n", "3", "--batch", "2",
                 "--steps", "4", "--kind", "quadratic", "--seed", "5"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["00000.png", "00001.png", "00002.png"]
    model, schedule = load_diffusers(tiny_folder)
    again = tmp_path / "again"
    write_samples(model, schedule, again, n=3, image_shape=model.image_shape, batch=2, steps=4, kind="quadratic",
                  seed=5, clip_x0=model.clip_x0, progress=False)
    for name in ("00000.png", "00002.png"):
        image = read_png(out / name)
        assert image.shape == (3, 8, 8) and torch.equal(image, read_png(again / name))
    with pytest.raises(SystemExit):                   # the grid mode takes the course's U-Nets only
        main(["sample", "--weights", str(tiny_folder), "--out", str(tmp_path / "grid.png")])
