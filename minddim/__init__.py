"""minddim: the DDPM and DDIM papers, built step by step (README.md at the repository's root; python -m minddim
--help for the command line).

Time follows the DDPM paper: t = 0..T, x_0 is data, ``Schedule.alpha_bars[t]`` is DDPM's bar-alpha_t
(DDIM's alpha_t).  A model is any callable ``model(x_t, t) -> eps_hat``.

The names below are imported on first use (PEP 562), so that ``python -m minddim --help`` answers without
loading torch; ``import minddim as md; md.q_sample`` works as if they were imported here.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "analytic": ("ConditionalMixtureDenoiser", "GaussianDenoiser", "GaussianMixtureDenoiser"),
    "bound": ("bits_per_dim", "ddim_gamma", "discretized_gaussian_log_likelihood", "normal_kl", "prior_term", "vlb",
              "vlb_terms"),
    "finite_data": ("data_entropy", "data_posterior", "marginal_vlb_terms", "reverse_log_prob"),
    "data": ("TOY_SETS", "toy_data", "toy_mixture"),
    "diffusion": ("p_mean", "predict_eps", "predict_x0", "q_posterior", "q_sample", "q_sigma_posterior", "q_step"),
    "guidance": ("class_log_prob_grad", "classifier_free", "classifier_guidance", "is_conditional", "null_label"),
    "losses": ("eps_from_mu", "epsilon_loss", "objective"),
    "metrics": ("classifier_confidence", "classifier_sure_fraction", "commitment_times", "frechet_distance", "mmd",
                "mnist_fid", "reference_spread", "sliced_wasserstein"),
    "models": ("MLP", "Classifier", "NoisyClassifier", "UNet", "timestep_embedding"),
    "sampling": ("Trajectory", "ddim", "ddim_sigma", "ddim_step", "ddpm", "encode", "heun", "heun_step", "inpaint",
                 "repaint_walk", "replace_known", "sample", "slerp", "timesteps"),
    "score": ("annealed_langevin", "dsm_loss", "eps_from_score", "euler_step", "gaussian_flow_map",
              "gaussian_langevin_covariance", "langevin", "langevin_step", "ode_sigma", "pf_euler_step", "pf_ode_solve",
              "score_from_eps", "score_model", "tweedie"),
    "parameterization": ("as_eps_model", "error_weight", "from_eps", "split_variance", "to_eps", "v_target"),
    "progressive": ("progressive_distortion", "progressive_rate"),
    "schedules": ("Schedule",),
    "tables": ("mean_spread", "table"),
    "commands": ("sample_images", "train_images"),
    "train": ("EMA", "TrainResult", "train", "train_toy"),
    "weights": ("pretrained",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    elif not name.startswith("__"):
        try:                                        # a submodule: md.data, md.metrics, ...
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package's module object: when the import system records the submodule ``minddim.train`` on the
    package, ``md.train`` stays the training loop (the function), as an eager ``from .train import train`` made it."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _WHERE.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
