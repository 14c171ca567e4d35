"""Diffusion schedules, forward noising, posteriors, DDPM/DDIM steps, the denoising loss and the
sampler (the reverse chain as one `lax.scan`)."""
from mdx.diffusion.losses import DenoiseFn, denoising_loss, inpaint, loss_weights
from mdx.diffusion.sampling import SampleConfig, draw_noise, sample
from mdx.diffusion.schedule import (Schedule, cosine_betas, ddim_step, ddpm_step, make_schedule,
                                    predict_eps_from_x0, predict_x0_from_eps, q_posterior, q_sample)

__all__ = ['SampleConfig', 'draw_noise', 'sample', 'DenoiseFn', 'denoising_loss', 'inpaint', 'loss_weights', 'Schedule', 'cosine_betas',
           'ddim_step', 'ddpm_step', 'make_schedule', 'predict_eps_from_x0', 'predict_x0_from_eps',
           'q_posterior', 'q_sample']
