"""MTDiff-P's inputs from `Trajectories`: windows of actions, state histories, prompts and returns.

- A training window (the code's `RTGActDataset`): a random episode of a task, a start step t
  uniform over its valid steps; the H actions a_t .. a_{t+H-1} (rows past the episode's end are
  masked out of the loss, `valid`), the L states s_{t-L+1} .. s_t (zeros before step 0, as the
  code pads), and the return R_t.
- R_t (the code's, for its locomotion-style datasets): the discounted (gamma) reward-to-go from t
  divided by the steps left to the time limit, `T - t`, the average discounted reward per
  remaining step; then mapped to [0, 1] by the training data's minimum and maximum of it (the
  paper's "normalized cumulative return"; its Maze2D normalization). At test the return is a
  constant target, the `target_quantile` of the training windows' R (the code's constant 9.0 is
  Meta-World's per-step maximum; SYSTEMS.md's [G]).
- A prompt: J consecutive steps (s, a) of one episode of the task's prompt data, at a uniform
  start among its valid steps (the code draws a start in [0, 150) of 500-step Meta-World episodes).
- States and actions are normalized as MetaDiffuser's (limits of the training data to [-1, 1],
  `mdx.data.normalizer`): the code feeds raw prompts through a LayerNorm; with normalized ones
  the LayerNorm sees the same scale in every family.
"""
from __future__ import annotations

import io
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mdx.data import normalizer as nz
from mdx.data.trajectories import Trajectories
from mdx.io import write_atomic
from mdx.nets.prompt_denoiser import PromptCondition


@struct.dataclass
class Scales:
  """The normalizer of states and actions and the map of R to [0, 1]."""
  norm: nz.Normalizer
  return_lo: jax.Array  # [] the training windows' minimum R
  return_hi: jax.Array  # [] ... maximum
  target: jax.Array  # [] the normalized R planned for at test (`target_quantile`)

  def returns(self, r):
    return (r - self.return_lo) / jnp.maximum(self.return_hi - self.return_lo, 1e-8)


def window_returns(rewards: jax.Array, valid: jax.Array, discount: float) -> jax.Array:
  """`[..., T]`: R_t, the discounted reward-to-go from t over the steps left, `T - t`."""
  t = rewards.shape[-1]
  r = jnp.where(valid, rewards, 0.0)
  def back(carry, x):  # from the last step to the first
    carry = x + discount * carry
    return carry, carry
  _, rtg = jax.lax.scan(back, jnp.zeros(r.shape[:-1]), jnp.moveaxis(r, -1, 0), reverse=True)
  left = (t - jnp.arange(t)).reshape((1,) * (r.ndim - 1) + (t,))
  return jnp.moveaxis(rtg, 0, -1) / left


def make_scales(data: Trajectories, *, discount: float, target_quantile: float) -> Scales:
  """The normalizer and R's limits and target over the valid steps of the training data."""
  valid = np.asarray(data.valid)
  r = np.asarray(window_returns(jnp.asarray(data.rewards), jnp.asarray(valid), discount))[valid]
  lo, hi = float(r.min()), float(r.max())
  scale = max(hi - lo, 1e-8)
  target = float(np.quantile((r - lo) / scale, target_quantile))
  f = lambda v: jnp.asarray(v, jnp.float32)
  return Scales(norm=nz.init_normalizer(data), return_lo=f(lo), return_hi=f(hi), target=f(target))


def save_scales(path: str, scales: Scales) -> None:
  buf = io.BytesIO()
  np.savez(buf, **{k: np.asarray(v) for k, v in vars(scales.norm).items()},
           returns=np.asarray([scales.return_lo, scales.return_hi, scales.target]))
  write_atomic(path, buf.getvalue())


def load_scales(path: str) -> Scales:
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: not found (written by the mtdiff stage)')
  with np.load(path) as f:
    lo, hi, target = (jnp.asarray(v, jnp.float32) for v in f['returns'])
    norm = nz.Normalizer(**{k: jnp.asarray(f[k]) for k in f.files if k != 'returns'})
  return Scales(norm=norm, return_lo=lo, return_hi=hi, target=target)


def prompt_window(rng, obs, act, length, prompt_len: int, norm: nz.Normalizer) -> jax.Array:
  """`[J, obs + act]`: J steps of one episode (`obs [T, S]`, `act [T, A]`, `length` valid steps)
  from a uniform start among its valid steps (clipped to the episode when it is shorter)."""
  t = obs.shape[0]
  start = jax.random.randint(rng, (), 0, jnp.maximum(length - prompt_len, 0) + 1)
  idx = jnp.clip(start + jnp.arange(prompt_len), 0, t - 1)
  return nz.normalize_traj(norm, obs[idx], act[idx])


def sample_prompts(rng, data: Trajectories, task_index: jax.Array, prompt_len: int,
                   norm: nz.Normalizer) -> jax.Array:
  """`[B, J, obs + act]`, one prompt per entry of `task_index [B]` from a random episode."""
  ep_rng, start_rng = jax.random.split(rng)
  episodes = jax.random.randint(ep_rng, task_index.shape, 0, data.episodes_per_task)
  lengths = jnp.asarray(data.valid)[task_index, episodes].sum(-1).astype(jnp.int32)
  pick = lambda x: jnp.asarray(x)[task_index, episodes]
  return jax.vmap(lambda k, o, a, l: prompt_window(k, o, a, l, prompt_len, norm))(
      jax.random.split(start_rng, task_index.shape[0]), pick(data.observations),
      pick(data.actions), lengths)


def state_history(obs: jax.Array, t: jax.Array, history_len: int, norm: nz.Normalizer):
  """`[L, S]`: the normalized states t-L+1 .. t of one episode (`obs [T, S]`), zeros before 0."""
  idx = t - history_len + 1 + jnp.arange(history_len)
  states = nz.normalize_obs(norm, obs[jnp.clip(idx, 0, obs.shape[0] - 1)])
  return jnp.where((idx >= 0)[:, None], states, 0.0)


@struct.dataclass
class Batch:
  actions: jax.Array  # [B, H, act] normalized
  valid: jax.Array  # [B, H] bool
  condition: PromptCondition


def sample_windows(ep_rng, start_rng, data: Trajectories, *, per_task: int, horizon: int):
  """`(task, episode, start, valid, take)`: `per_task` windows of every task (task-major), a
  random episode and a start uniform over its valid steps; `valid [B, H]` marks the window's
  steps before the episode's end, `take(x [N, E, T, ...]) -> [B, H, ...]` reads them (clipped at
  the last step)."""
  n, e, t = data.valid.shape
  task = jnp.repeat(jnp.arange(n), per_task)
  episode = jax.random.randint(ep_rng, task.shape, 0, e)
  length = data.valid[task, episode].sum(-1).astype(jnp.int32)
  start = jnp.floor(jax.random.uniform(start_rng, task.shape) * length).astype(jnp.int32)
  steps = start[:, None] + jnp.arange(horizon)[None]  # [B, H]
  take = lambda x: x[task[:, None], episode[:, None], jnp.minimum(steps, t - 1)]
  return task, episode, start, steps < length[:, None], take


def sample_batch(rng, data: Trajectories, returns: jax.Array, scales: Scales, *,
                 per_task: int, horizon: int, history_len: int, prompt_len: int) -> Batch:
  """`per_task` windows of every task (task-major), each with a prompt of its own task.
  `returns [N, E, T]` are `window_returns` of `data`."""
  ep_rng, start_rng, prompt_rng = jax.random.split(rng, 3)
  task, episode, start, valid, take = sample_windows(ep_rng, start_rng, data, per_task=per_task,
                                                     horizon=horizon)
  actions = nz.normalize_act(scales.norm, take(data.actions))
  obs = data.observations[task, episode]  # [B, T, S]
  history = jax.vmap(lambda o, s: state_history(o, s, history_len, scales.norm))(obs, start)
  r = scales.returns(returns[task, episode, start])
  prompts = sample_prompts(prompt_rng, data, task, prompt_len, scales.norm)
  return Batch(actions=jnp.where(valid[..., None], actions, 0.0), valid=valid,
               condition=PromptCondition(prompt=prompts, history=history, returns=r))
