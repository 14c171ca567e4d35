"""In-graph segment sampling for the context model and the denoiser.

A segment is drawn as: a task uniformly, an episode of it uniformly, a start uniformly among the
windows that stay inside the episode's valid steps (an episode shorter than the window gives a
window that starts at its first step; `Segments.valid` marks its steps past the end, which every
loss masks). Alongside it, `num_context` history windows of `history` transitions are drawn from
the same task: the context encoder's input. A history window is `history` consecutive VALID
transitions of the task's data, in episode order, so it may run from the end of one episode into
the next but never into the frozen padding after an episode's end (a random hopper falls after a
median of 18 steps, shorter than its h = 20 windows). Everything is `jax.random` on device arrays,
so sampling fuses into the jitted train step.
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
  valid: jax.Array  # [B, W] bool: the step lies before its episode's end
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
          take(data.next_observations), take(data.valid))


def _nth_valid_step(n_valid: jax.Array, j: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The episode and step of a task's `j`-th valid transition, counted in episode order, from
  the episodes' valid counts `n_valid [E]`. An episode's valid steps are a prefix of it (`done`
  is absorbing), so it is step `j - cum[e - 1]` of the episode `e` where the running count
  passes `j`. O(E + log E) per draw, where a categorical over the task's E x T steps costs
  E x T per draw. A `j` past the last valid transition gives the last episode and a step past
  its count (callers clip)."""
  cum = jnp.cumsum(n_valid)
  e = jnp.minimum(jnp.searchsorted(cum, j, side='right'), n_valid.shape[0] - 1)
  return e, j - (cum[e] - n_valid[e])


def sample_context(rng: jax.Array, data: Trajectories, task: jax.Array, *, history: int,
                   num_context: int, blocks: Sequence[int] | None = None) -> jax.Array:
  """`num_context` history windows of `history` consecutive valid transitions of task `task`.

  The task's valid transitions are taken in episode order (across episode boundaries) and each
  window starts uniformly among them. With `blocks` (episode counts of consecutive blocks of the
  episode axis, e.g. the data tiers joined by `concat_episodes`) all the windows come from one
  block drawn uniformly, as a test-time context comes from the warm-start data of one tier.
  Only when the block holds fewer than `history` valid transitions does a window reach padding.

  Returns:
    `[num_context, history, 2 obs + act + 1]`.
  """
  data = jax.tree.map(jnp.asarray, data)
  block_rng, win_rng = jax.random.split(rng)
  episodes, length = data.episodes_per_task, data.episode_length
  if blocks is None:
    in_block = jnp.ones((episodes,), bool)
  else:
    if sum(blocks) != episodes or min(blocks) < 1:
      raise ValueError(f'blocks={tuple(blocks)} must be positive episode counts summing to the '
                       f'{episodes} episodes per task')
    block = jax.random.randint(block_rng, (), 0, len(blocks))
    lo = jnp.asarray(np.cumsum((0,) + tuple(blocks[:-1])))[block]
    hi = lo + jnp.asarray(blocks)[block]
    in_block = (jnp.arange(episodes) >= lo) & (jnp.arange(episodes) < hi)
  n_use = jnp.where(in_block, jnp.sum(data.valid[task], -1), 0).astype(jnp.int32)  # [E]
  starts = jax.random.randint(win_rng, (num_context,), 0, jnp.maximum(n_use.sum() - history, 0) + 1)
  e, step = _nth_valid_step(n_use, starts[:, None] + jnp.arange(history)[None])  # [n, h]
  step = jnp.clip(step, 0, length - 1)
  flat = lambda x: x[task, e, step]  # one gather (`x[task][e, step]` gathers the whole task)
  return transition_rows(flat(data.observations), flat(data.actions), flat(data.rewards),
                         flat(data.next_observations))


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
  s, a, r, s2, valid = jax.vmap(lambda t, e, k: _window(data, t, e, k, horizon))(
      tasks, episodes, jax.random.split(win_rng, batch))
  context_data = data if context_data is None else jax.tree.map(jnp.asarray, context_data)
  context = jax.vmap(lambda t, k: sample_context(k, context_data, t, history=history,
                                                 num_context=num_context, blocks=context_blocks))(
      tasks, jax.random.split(ctx_rng, batch))
  return Segments(context=context, states=s, actions=a, rewards=r, next_states=s2, valid=valid,
                  task_index=tasks)


@struct.dataclass
class Transitions:
  """Single transitions `[..., n, ...]` of given tasks, for the TD-learning baselines."""
  states: jax.Array
  actions: jax.Array
  rewards: jax.Array
  next_states: jax.Array
  terminals: jax.Array  # float32 1.0 where the episode terminated (not a time limit)


def sample_transitions(rng: jax.Array, data: Trajectories, tasks: jax.Array, n: int
                       ) -> Transitions:
  """`n` valid transitions of each task of `tasks [M]` (indices into the task axis), uniform over
  the task's valid steps (with replacement): `[M, n, ...]`."""
  data = jax.tree.map(jnp.asarray, data)

  def one(task, key):
    n_valid = jnp.sum(data.valid[task], -1).astype(jnp.int32)  # [E]
    ep, t = _nth_valid_step(n_valid, jax.random.randint(key, (n,), 0, n_valid.sum()))
    take = lambda x: x[task, ep, t]
    return Transitions(states=take(data.observations), actions=take(data.actions),
                       rewards=take(data.rewards), next_states=take(data.next_observations),
                       terminals=take(data.terminals).astype(jnp.float32))
  return jax.vmap(one)(tasks, jax.random.split(rng, tasks.shape[0]))
