"""The denoising loss of Eq. 5 with context dropout (classifier-free guidance training)."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from mdx.diffusion.schedule import Schedule, q_sample

# denoise_fn(params, x_k [B, H, D], k [B], context [B, C], context_mask [B] bool) -> [B, H, D]
DenoiseFn = Callable[[object, jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]


def inpaint(x: jax.Array, obs: jax.Array) -> jax.Array:
  """Imposes the current state: `x[:, 0, :obs_dim] = obs`. `x [B, H, D]`, `obs [B, obs_dim]`."""
  return x.at[:, 0, :obs.shape[-1]].set(obs)


def loss_weights(horizon: int, obs_dim: int, act_dim: int, action_weight: float) -> jax.Array:
  """`[H, D]` per-entry weights: the inpainted first state gets 0 (it is given, not generated),
  the first action gets `action_weight` (Diffuser weights a_0 by 10 in locomotion)."""
  w = jnp.ones((horizon, obs_dim + act_dim), jnp.float32)
  w = w.at[0, :obs_dim].set(0.0)
  return w.at[0, obs_dim:].set(action_weight)


def denoising_loss(denoise_fn: DenoiseFn, params, sched: Schedule, rng: jax.Array, x0: jax.Array,
                   context: jax.Array, *, obs_dim: int, context_dropout: float,
                   predict_epsilon: bool, weights: jax.Array,
                   valid: jax.Array | None = None) -> tuple[jax.Array, dict]:
  """Eq. 5: `|| target - f(x_k, (1 - p) z + p null, k) ||^2` with `p ~ Bernoulli(beta)`.

  Args:
    denoise_fn: the network.
    params: its parameters.
    sched: the diffusion schedule (K steps).
    rng: PRNG key.
    x0: `[B, H, D]` clean normalized trajectories.
    context: `[B, C]` task contexts.
    obs_dim: leading state channels; the first state is inpainted in `x_k` as at sampling time.
    context_dropout: beta, the probability of replacing z by the null context.
    predict_epsilon: the network predicts the noise (True, the paper) or x0 (False, Diffuser's
      locomotion default).
    weights: `[H, D]` per-entry loss weights (`loss_weights`).
    valid: optional `[B, H]` bool, the steps before their episode's end; the loss is the
      weighted mean over valid steps only (steps in the frozen padding after an episode's end are
      not data).

  Returns:
    `(loss, metrics)`.
  """
  k_rng, noise_rng, drop_rng = jax.random.split(rng, 3)
  batch = x0.shape[0]
  k = jax.random.randint(k_rng, (batch,), 0, sched.num_steps)
  noise = jax.random.normal(noise_rng, x0.shape)
  x_k = inpaint(q_sample(sched, x0, k, noise), x0[:, 0, :obs_dim])
  keep = ~jax.random.bernoulli(drop_rng, context_dropout, (batch,))
  pred = denoise_fn(params, x_k, k, context, keep)
  target = noise if predict_epsilon else x0
  w = jnp.broadcast_to(weights[None], x0.shape)
  if valid is not None:
    w = w * valid[:, :, None]
  # The mean over every entry when all steps are valid (as before); padded steps weigh nothing.
  loss = jnp.sum(jnp.square(pred - target) * w) / (
      jnp.maximum(jnp.sum(w), 1e-8) / jnp.mean(jnp.broadcast_to(weights, x0.shape[1:])))
  return loss, {'loss': loss, 'context_kept': keep.mean()}
