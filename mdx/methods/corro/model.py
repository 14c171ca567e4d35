"""CORRO's networks (`PKU-AI-Edge/CORRO`): the transition CVAE that generates negatives, the
L2-normalized transition encoder, and the attention aggregator over a context's transitions.

All read raw transitions `(s, a, r, s')` in environment units, actions divided by the family's
action bound (the learner's [-1, 1]), as every network of the method sees them.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mdx import rl
from mdx.rl.networks import MLP


class TransitionCVAE(nn.Module):
  """q(u | s, a, r, s') and p(s', r | s, a, u): one hidden layer each (the reference's)."""
  hidden: int
  latent_dim: int
  obs_dim: int

  def setup(self):
    self.enc = MLP((self.hidden,), 2 * self.latent_dim)
    self.dec = MLP((self.hidden,), self.obs_dim + 1)

  def __call__(self, s, a, r, s2, rng):
    mean, log_var = jnp.split(self.enc(jnp.concatenate([s, a, r[..., None], s2], -1)), 2, -1)
    u = mean + jnp.exp(0.5 * log_var) * jax.random.normal(rng, mean.shape)
    out = self.decode(s, a, u)
    kl = 0.5 * jnp.sum(jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var, -1)
    return out, kl

  def decode(self, s, a, u):
    """`(s'_hat, r_hat)` for `(s, a)` and latent `u`."""
    out = self.dec(jnp.concatenate([s, a, u], -1))
    return out[..., :self.obs_dim], out[..., self.obs_dim]


class TransitionEncoder(nn.Module):
  """f(s, a, r, s') -> a unit vector (2 ReLU hidden layers, `normalize_z=True`)."""
  hidden: Sequence[int]
  latent_dim: int

  @nn.compact
  def __call__(self, rows: jax.Array) -> jax.Array:
    z = MLP(self.hidden, self.latent_dim)(rows)
    return z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)


class AttentionAggregator(nn.Module):
  """`z [..., n, D]` (mask `[..., n]`) -> their softmax(Linear(z))-weighted sum `[..., D]`."""

  @nn.compact
  def __call__(self, z: jax.Array, mask: jax.Array) -> jax.Array:
    score = nn.Dense(1)(z)[..., 0]
    w = jax.nn.softmax(jnp.where(mask, score, -jnp.inf), axis=-1)
    return jnp.einsum('...n,...nd->...d', w, z)


def rows(s, a, r, s2) -> jax.Array:
  return jnp.concatenate([s, a, r[..., None], s2], -1)


def action_scale(family) -> float:
  if family.action_low != -family.action_high:
    raise ValueError(f'{family.name}: CORRO needs a symmetric action box, got '
                     f'[{family.action_low}, {family.action_high}]')
  return float(family.action_high)


def build_cvae(config, family) -> TransitionCVAE:
  c = config.corro
  return TransitionCVAE(hidden=c.cvae_hidden, latent_dim=c.cvae_latent_dim,
                        obs_dim=family.obs_dim)


def build_encoder(config) -> TransitionEncoder:
  return TransitionEncoder(tuple(config.corro.encoder_hidden), config.corro.latent_dim)


def sac_config(config) -> rl.SACConfig:
  c = config.corro
  return rl.SACConfig(hidden=tuple(c.hidden), discount=c.discount, tau=c.tau, alpha=c.alpha,
                      reward_scale=c.reward_scale, learning_rate=c.learning_rate,
                      cql_weight=c.cql_weight, cql_samples=c.cql_samples)
