"""In-graph segment sampling for the context model and the denoiser.

A segment is drawn as: a task uniformly, an episode of it uniformly, a start uniformly among the
windows that stay inside the episode's valid steps. Alongside it, `num_context` history windows of
`history` transitions are drawn from the same task (each from a uniformly chosen episode): the
context encoder's input. Everything is `jax.random` on device arrays, so sampling fuses into the
jitted train step.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mdx.data.trajectories import Trajectories


@struct.dataclass
class Segments:
  """A batch of B windows of one task each, plus context histories from the same tasks."""
  context: jax.Array  # [B, num_context, history, 2 * obs_dim + act_dim + 1]: rows (s, a, r, s')
  states: jax.Array  # [B, W, obs_dim]: s_t ... s_{t+W-1}
  actions: jax.Array  # [B, W, act_dim]
  rewards: jax.Array  # [B, W]
  next_states: jax.Array  # [B, W, obs_dim]
  task_index: jax.Array  # [B] int32: index into the dataset's task axis


def transition_rows(states, actions, rewards, next_states) -> jax.Array:
  """Packs transitions as the context encoder's rows `(s, a, r, s')`, `[..., 2 obs + act + 1]`."""
  return jnp.concatenate([states, actions, rewards[..., None], next_states], axis=-1)


def _window(data: Trajectories, task, episode, rng, length: int):
  """One window of `length` steps from episode `episode` of task `task` (scalars)."""
  n_valid = jnp.sum(data.valid[task, episode]).astype(jnp.int32)
  max_start = jnp.maximum(n_valid - length, 0)
  start = jax.random.randint(rng, (), 0, max_start + 1)
  take = lambda x: jax.lax.dynamic_slice_in_dim(x[task, episode], start, length, axis=0)
  return (take(data.observations), take(data.actions), take(data.rewards),
          take(data.next_observations))


def sample_context(rng: jax.Array, data: Trajectories, task: jax.Array, *, history: int,
                   num_context: int, blocks: Sequence[int] | None = None) -> jax.Array:
  """`num_context` history windows from random episodes of task index `task` (a scalar).

  With `blocks` (episode counts of consecutive blocks of the episode axis, e.g. the data tiers
  joined by `concat_episodes`) all the windows come from one block drawn uniformly, as a test-time
  context comes from the warm-start data of one tier.

  Returns:
    `[num_context, history, 2 obs + act + 1]`.
  """
  data = jax.tree.map(jnp.asarray, data)
  ep_rng, win_rng = jax.random.split(rng)
  if blocks is None:
    episodes = jax.random.randint(ep_rng, (num_context,), 0, data.episodes_per_task)
  else:
    if sum(blocks) != data.episodes_per_task or min(blocks) < 1:
      raise ValueError(f'blocks={tuple(blocks)} must be positive episode counts summing to the '
                       f'{data.episodes_per_task} episodes per task')
    block = jax.random.randint(jax.random.fold_in(rng, 2), (), 0, len(blocks))
    size = jnp.asarray(blocks)[block]
    start = jnp.asarray(np.cumsum((0,) + tuple(blocks[:-1])))[block]
    episodes = start + jax.random.randint(ep_rng, (num_context,), 0, size)
  win = jax.vmap(lambda e, r: _window(data, task, e, r, history))(
      episodes, jax.random.split(win_rng, num_context))
  return transition_rows(*win)


def sample_segments(rng: jax.Array, data: Trajectories, batch: int, *, history: int,
                    horizon: int, num_context: int = 1,
                    context_data: Trajectories | None = None,
                    context_blocks: Sequence[int] | None = None) -> Segments:
  """Draws `batch` windows of `horizon` steps, each with `num_context` histories of its task.

  Args:
    rng: a PRNG key.
    data: the dataset, `[N, E, T, ...]` (device or host arrays).
    batch: B.
    history: h, transitions per context window.
    horizon: W, steps per window (H for the denoiser; the context model uses its own window).
    num_context: history windows per sample (their embeddings are averaged).
    context_data: where the histories come from (default: `data`); it must hold the same tasks
      in the same order. The denoiser is trained on expert windows whose contexts come from every
      tier of the task, so that it meets, in training, the contexts of any warm-start tier.

  Returns:
    `Segments` with leading axis `[B]`.
  """
  if horizon > data.episode_length or history > data.episode_length:
    raise ValueError(f'horizon={horizon} and history={history} must not exceed the episode '
                     f'length {data.episode_length}')
  data = jax.tree.map(jnp.asarray, data)
  task_rng, ep_rng, win_rng, ctx_rng = jax.random.split(rng, 4)
  tasks = jax.random.randint(task_rng, (batch,), 0, data.num_tasks)
  episodes = jax.random.randint(ep_rng, (batch,), 0, data.episodes_per_task)
  s, a, r, s2 = jax.vmap(lambda t, e, k: _window(data, t, e, k, horizon))(
      tasks, episodes, jax.random.split(win_rng, batch))
  context_data = data if context_data is None else jax.tree.map(jnp.asarray, context_data)
  context = jax.vmap(lambda t, k: sample_context(k, context_data, t, history=history,
                                                 num_context=num_context, blocks=context_blocks))(
      tasks, jax.random.split(ctx_rng, batch))
  return Segments(context=context, states=s, actions=a, rewards=r, next_states=s2,
                  task_index=tasks)
