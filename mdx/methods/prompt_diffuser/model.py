"""Prompt Diffuser's generator and its training rule (Hu et al., 2023, "Prompt Diffuser"; paper
004, no public code: built from the paper, SYSTEMS.md section 9).

- `PromptGenerator`: eps_theta(x_k, y, k), a 3-layer Mish MLP with 256 hidden units (App. B) over
  the flattened noisy prompt `x_k [B, H, D]` (H = K* steps of (s, a, r), each token type
  min-max normalized to [-1, 1]), the condition `y [B, H, 2]` (the prompt's returns-to-go and
  timesteps, Eq. 9) and a 32-dimensional sinusoidal embedding of k ([G]).
- `project_conflicting(g_dm, g_dt)`: Alg. 1's update direction. When the two gradients conflict
  (`g_dm . g_dt < 0`) the downstream gradient loses its component along g_dm,
  `g_dt - (g_dt . g_dm / |g_dm|^2) g_dm` (PCGrad's projection on the flattened parameter
  gradients, [G]), and the sum is `g_dm + g_dt'`; otherwise `g_dm + g_dt`.
- `dt_loss_through_chain`: L_DT (Eq. 13): a prompt sampled by the reverse chain WITH its gradient
  (deterministic DDIM over `num_chain_steps` of the K trained steps, each step rematerialized),
  fed to the frozen Prompt-DT, whose action MSE on the target segments is differentiated back to
  theta.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from mdx.diffusion import sampling
from mdx.nets.unet import mish, sinusoidal_embedding


class PromptGenerator(nn.Module):
  """`eps_theta(x_k [B, H, D], k [B], y [B, H, 2], mask [B]) -> [B, H, D]` (mask unused: no
  CFG; the argument keeps the sampler's `denoise_fn` signature)."""
  hidden: int = 256
  step_dim: int = 32

  @nn.compact
  def __call__(self, x: jax.Array, k: jax.Array, y: jax.Array, mask=None) -> jax.Array:
    del mask
    b = x.shape[0]
    h = jnp.concatenate([x.reshape(b, -1), y.reshape(b, -1),
                         sinusoidal_embedding(k, self.step_dim)], axis=-1)
    h = mish(nn.Dense(self.hidden)(h))
    h = mish(nn.Dense(self.hidden)(h))
    return nn.Dense(x.shape[1] * x.shape[2])(h).reshape(x.shape)


def project_conflicting(g_dm, g_dt):
  """`(update, conflicted)`: Alg. 1 line 6 on two gradient pytrees of the same structure."""
  flat_dm, unravel = ravel_pytree(g_dm)
  flat_dt, _ = ravel_pytree(g_dt)
  dot = jnp.vdot(flat_dm, flat_dt)
  conflicted = dot < 0
  projected = flat_dt - dot / jnp.maximum(jnp.vdot(flat_dm, flat_dm), 1e-20) * flat_dm
  return unravel(flat_dm + jnp.where(conflicted, projected, flat_dt)), conflicted


def sample_prompts(generator: PromptGenerator, params, keys: jax.Array, y: jax.Array, *,
                   shape: tuple[int, int], config: sampling.SampleConfig,
                   remat: bool = False) -> jax.Array:
  """`[M, H, D]` prompts x0 from the reverse chain (one key per prompt, `y [M, H, 2]`)."""
  return sampling.sample(lambda x, k, c, m: generator.apply(params, x, k, c, m), keys, y,
                         shape=shape, config=config, remat=remat)


def chain_config(num_diffusion_steps: int, num_chain_steps: int,
                 schedule: str = 'cosine') -> sampling.SampleConfig:
  """L_DT's differentiable chain: deterministic DDIM over `num_chain_steps` of the K steps, x0
  clipped to the normalized range."""
  return sampling.SampleConfig(num_diffusion_steps=num_diffusion_steps, sampler='ddim',
                               num_sample_steps=num_chain_steps, eta=0.0, clip_denoised=1.0,
                               schedule=schedule)


def dt_loss_through_chain(generator: PromptGenerator, params, keys: jax.Array, y: jax.Array,
                          downstream: Callable[[jax.Array], jax.Array], *,
                          shape: tuple[int, int],
                          config: sampling.SampleConfig) -> jax.Array:
  """L_DT: `downstream(x0 [M, H, D]) -> scalar` (the frozen Prompt-DT's action MSE with the
  generated prompt) of prompts sampled with the gradient kept through every step."""
  x0 = sample_prompts(generator, params, keys, y, shape=shape, config=config, remat=True)
  return downstream(x0)
