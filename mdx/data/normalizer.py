"""Per-dimension normalization of states, actions and rewards, as a pure (init, apply) pair.

DESIGN: Diffuser's dataset default, limits to [-1, 1], per dimension: `x' = 2 (x - lo) / (hi - lo) - 1`
with `lo, hi` the training data's minimum and maximum. It keeps the box-bounded actions of Point-Robot
and the clipped locomotion actions exactly inside [-1, 1], so `clip_denoised` is meaningful. A
dimension that never varies gets a unit range instead of a zero one.
"""
from __future__ import annotations

import io
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mdx.data.trajectories import Trajectories
from mdx.io import write_atomic


@struct.dataclass
class Normalizer:
  """Limits of the training data."""
  obs_lo: jax.Array  # [obs_dim]
  obs_hi: jax.Array  # [obs_dim]
  act_lo: jax.Array  # [act_dim]
  act_hi: jax.Array  # [act_dim]
  rew_lo: jax.Array  # []
  rew_hi: jax.Array  # []

  @property
  def obs_dim(self) -> int:
    return self.obs_lo.shape[-1]


def init_normalizer(data: Trajectories) -> Normalizer:
  """Limits over the valid steps of `data` (both s_t and s_{t+1} count as states)."""
  valid = jnp.asarray(data.valid)

  def limits(x, mask):  # x [N, E, T, D], mask [N, E, T]
    m = mask[..., None]
    lo = jnp.min(jnp.where(m, x, jnp.inf), axis=(0, 1, 2))
    hi = jnp.max(jnp.where(m, x, -jnp.inf), axis=(0, 1, 2))
    flat = (hi - lo) < 1e-6
    return jnp.where(flat, lo - 0.5, lo), jnp.where(flat, lo + 0.5, hi)

  both = jnp.concatenate([data.observations, data.next_observations], axis=2)
  obs_lo, obs_hi = limits(both, jnp.concatenate([valid, valid], axis=2))
  act_lo, act_hi = limits(jnp.asarray(data.actions), valid)
  rew_lo, rew_hi = limits(jnp.asarray(data.rewards)[..., None], valid)
  return Normalizer(obs_lo, obs_hi, act_lo, act_hi, rew_lo[0], rew_hi[0])


def _lift(v, x):
  """`v` `[D]` (or `[]`) reshaped to broadcast against `x` `[..., D]` without rank promotion."""
  return v.reshape((1,) * (x.ndim - v.ndim) + v.shape)


def _to_unit(x, lo, hi):
  lo, hi = _lift(lo, x), _lift(hi, x)
  return 2.0 * (x - lo) / (hi - lo) - 1.0


def _from_unit(x, lo, hi):
  lo, hi = _lift(lo, x), _lift(hi, x)
  return (x + 1.0) * 0.5 * (hi - lo) + lo


def normalize_obs(n: Normalizer, obs: jax.Array) -> jax.Array:
  return _to_unit(obs, n.obs_lo, n.obs_hi)


def unnormalize_obs(n: Normalizer, obs: jax.Array) -> jax.Array:
  return _from_unit(obs, n.obs_lo, n.obs_hi)


def normalize_act(n: Normalizer, act: jax.Array) -> jax.Array:
  return _to_unit(act, n.act_lo, n.act_hi)


def unnormalize_act(n: Normalizer, act: jax.Array) -> jax.Array:
  return _from_unit(act, n.act_lo, n.act_hi)


def normalize_rew(n: Normalizer, rew: jax.Array) -> jax.Array:
  return _to_unit(rew, n.rew_lo, n.rew_hi)


def unnormalize_rew(n: Normalizer, rew: jax.Array) -> jax.Array:
  return _from_unit(rew, n.rew_lo, n.rew_hi)


def normalize_traj(n: Normalizer, states: jax.Array, actions: jax.Array) -> jax.Array:
  """`[..., H, obs_dim]`, `[..., H, act_dim]` -> the denoiser's layout `[..., H, obs_dim + act_dim]`."""
  return jnp.concatenate([normalize_obs(n, states), normalize_act(n, actions)], axis=-1)


def unnormalize_traj(n: Normalizer, x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The inverse of `normalize_traj`: `(states, actions)` in environment units."""
  d = n.obs_dim
  return unnormalize_obs(n, x[..., :d]), unnormalize_act(n, x[..., d:])


def save_normalizer(path: str, n: Normalizer) -> None:
  """Writes `n` to `path` (.npz) through a temporary file and a rename."""
  buf = io.BytesIO()
  np.savez(buf, **{k: np.asarray(v) for k, v in vars(n).items()})
  write_atomic(path, buf.getvalue())


def load_normalizer(path: str) -> Normalizer:
  """Reads a normalizer written by `save_normalizer`."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: normalizer not found (it is written by train_context)')
  with np.load(path) as f:
    return Normalizer(**{k: jnp.asarray(f[k]) for k in f.files})
