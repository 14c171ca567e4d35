"""FOCAL's context encoder and its configs: a deterministic, permutation-invariant encoder (the
mean over transitions of a ReLU MLP with a tanh output, `use_information_bottleneck=False`)."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mdx import rl


class TransitionEncoder(nn.Module):
  hidden: Sequence[int]
  latent_dim: int

  @nn.compact
  def __call__(self, rows: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """`rows [..., n, row]` (and `mask [..., n]`) -> z `[..., latent_dim]`, the masked mean."""
    x = rows
    for h in self.hidden:
      x = nn.relu(nn.Dense(h)(x))
    e = jnp.tanh(nn.Dense(self.latent_dim)(x))
    if mask is None:
      return e.mean(-2)
    m = mask[..., None].astype(e.dtype)
    return (e * m).sum(-2) / jnp.maximum(m.sum(-2), 1.0)


def context_rows(config, states, actions, rewards, next_states) -> jax.Array:
  """FOCAL's context rows: `(s, a, r)`, or `(s, a, r, s')` with `focal.use_next_obs`; actions
  in the learner's [-1, 1] units."""
  parts = [states, actions, rewards[..., None]]
  return jnp.concatenate(parts + ([next_states] if config.focal.use_next_obs else []), -1)


def row_dim(config, family) -> int:
  return 2 * family.obs_dim + family.act_dim + 1 if config.focal.use_next_obs else (
      family.obs_dim + family.act_dim + 1)


def brac_config(config) -> rl.BRACConfig:
  f = config.focal
  return rl.BRACConfig(hidden=tuple(f.hidden), discount=f.discount, tau=f.tau,
                       reward_scale=f.reward_scale, learning_rate=f.learning_rate,
                       c_learning_rate=f.c_learning_rate, c_iter=f.c_iter,
                       alpha_init=f.alpha_init, alpha_max=f.alpha_max, alpha_lr=f.alpha_lr,
                       target_divergence=f.target_divergence, value_penalty=f.value_penalty)


def build_encoder(config) -> TransitionEncoder:
  return TransitionEncoder(tuple(config.focal.encoder_hidden), config.focal.latent_dim)


def action_scale(family) -> float:
  """The family's action box is `[-scale, scale]`; the learner acts in [-1, 1]."""
  if family.action_low != -family.action_high:
    raise ValueError(f'{family.name}: FOCAL needs a symmetric action box, got '
                     f'[{family.action_low}, {family.action_high}]')
  return float(family.action_high)
