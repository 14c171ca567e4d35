"""The networks of the offline actor-critic learners: ReLU MLPs, a twin Q, a state value and a
tanh-Gaussian policy (rlkit's `TanhGaussianPolicy`, which FOCAL and CORRO both use).

Every network reads a flat input; a learner conditioned on a task sees `[s, z]` as its state
(the method concatenates z before the learner is called), so nothing here knows of tasks.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # rlkit's TanhGaussianPolicy clamp


class MLP(nn.Module):
  hidden: Sequence[int]
  out: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for h in self.hidden:
      x = nn.relu(nn.Dense(h)(x))
    return nn.Dense(self.out)(x)


class TwinQ(nn.Module):
  """Two independent Q heads over `[s, a]`: `Q(s, a) -> [2, ...]`."""
  hidden: Sequence[int]

  @nn.compact
  def __call__(self, obs: jax.Array, act: jax.Array) -> jax.Array:
    heads = nn.vmap(MLP, variable_axes={'params': 0}, split_rngs={'params': True},
                    in_axes=None, out_axes=0, axis_size=2)
    return heads(self.hidden, 1)(jnp.concatenate([obs, act], -1))[..., 0]


class StateValue(nn.Module):
  """`V(s) -> [...]`."""
  hidden: Sequence[int]

  @nn.compact
  def __call__(self, obs: jax.Array) -> jax.Array:
    return MLP(self.hidden, 1)(obs)[..., 0]


class ActionCritic(nn.Module):
  """A scalar function of `(s, a)`: BRAC's dual critic `c(s, a)`."""
  hidden: Sequence[int]

  @nn.compact
  def __call__(self, obs: jax.Array, act: jax.Array) -> jax.Array:
    return MLP(self.hidden, 1)(jnp.concatenate([obs, act], -1))[..., 0]


class TanhGaussianPolicy(nn.Module):
  """`pi(s) -> (mean, log_std)` of the pre-tanh Gaussian; actions are `tanh(u)` in [-1, 1]."""
  hidden: Sequence[int]
  act_dim: int

  @nn.compact
  def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = obs
    for h in self.hidden:
      x = nn.relu(nn.Dense(h)(x))
    mean = nn.Dense(self.act_dim, name='mean')(x)
    log_std = jnp.clip(nn.Dense(self.act_dim, name='log_std')(x), LOG_STD_MIN, LOG_STD_MAX)
    return mean, log_std


def sample_tanh_gaussian(mean: jax.Array, log_std: jax.Array, rng: jax.Array
                         ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """A reparameterized sample `a = tanh(u)`, `u ~ N(mean, std^2)`: `(a, log pi(a), u)`.

  `log pi(a) = sum_i [log N(u_i) - log(1 - tanh(u_i)^2)]`, the squashing term in the stable form
  `2 (log 2 - u - softplus(-2u))` (rlkit adds 1e-6 inside the log instead)."""
  u = mean + jnp.exp(log_std) * jax.random.normal(rng, mean.shape)
  return u_to_action(mean, log_std, u)


def u_to_action(mean, log_std, u):
  """`(tanh(u), log pi(tanh(u)), u)` for a given pre-tanh `u`."""
  gauss = -0.5 * jnp.square((u - mean) / jnp.exp(log_std)) - log_std - 0.5 * jnp.log(2 * jnp.pi)
  squash = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
  return jnp.tanh(u), jnp.sum(gauss - squash, -1), u
