"""Diffusion schedules, forward noising, posteriors, DDPM/DDIM steps and the denoising loss."""
from mdx.diffusion.losses import DenoiseFn, denoising_loss, inpaint, loss_weights
from mdx.diffusion.schedule import (Schedule, cosine_betas, ddim_step, ddpm_step, make_schedule,
                                    predict_eps_from_x0, predict_x0_from_eps, q_posterior, q_sample)

__all__ = ['DenoiseFn', 'denoising_loss', 'inpaint', 'loss_weights', 'Schedule', 'cosine_betas',
           'ddim_step', 'ddpm_step', 'make_schedule', 'predict_eps_from_x0', 'predict_x0_from_eps',
           'q_posterior', 'q_sample']
