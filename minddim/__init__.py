"""minddim: the DDPM and DDIM papers, built step by step (see README.md and DESIGN.md).

Time follows the DDPM paper: t = 0..T, x_0 is data, ``Schedule.alpha_bars[t]`` is DDPM's bar-alpha_t
(DDIM's alpha_t).  A model is any callable ``model(x_t, t) -> eps_hat``.
"""

from .analytic import GaussianDenoiser, GaussianMixtureDenoiser
from .bound import (bits_per_dim, discretized_gaussian_log_likelihood, normal_kl, prior_term, progressive_distortion,
                    progressive_rate, vlb, vlb_terms)
from .data import TOY_SETS, toy_data, toy_mixture
from .diffusion import p_mean, predict_eps, predict_x0, q_posterior, q_sample, q_sigma_posterior, q_step
from .losses import eps_from_mu, epsilon_loss, objective
from .metrics import (classifier_confidence, classifier_sure_fraction, commitment_times, frechet_distance, mmd,
                      mnist_fid, reference_spread, sliced_wasserstein)
from .models import MLP, Classifier, UNet, timestep_embedding
from .sampling import (Trajectory, ddim, ddim_sigma, ddim_step, ddpm, encode, heun, heun_step, inpaint, repaint_walk,
                       replace_known, sample, slerp, timesteps)
from .score import (annealed_langevin, dsm_loss, eps_from_score, euler_step, gaussian_flow_map,
                    gaussian_langevin_covariance, langevin, langevin_step, ode_sigma, pf_ode_solve, score_from_eps,
                    score_model, tweedie)
from .schedules import Schedule
from .commands import sample_images, train_images
from .train import EMA, TrainResult, train, train_toy

__version__ = "0.1.0"
from .weights import pretrained
