"""Prompt-DT's inputs from `Trajectories`: training segments, prompts, and their normalization.

- A training segment (as the reference's `get_batch`): a random episode of the task, a start step
  `si` uniform over its valid steps, then up to K steps from `si`, left-padded to K (an episode's
  last segments are shorter).
- A prompt (the reference's `get_prompt`, `stochastic_prompt`): a random episode of the task's
  prompt data and, always, its last K* steps but the final one (`si = L - K* - 1`), so the
  prompt's timesteps sit near the episode's end.
- Returns-to-go are undiscounted sums of the episode's remaining rewards, divided by the family's
  return scale; states are standardized with the training data's mean and std; actions are mapped
  from the family's action box to [-1, 1] (tanh's range). Padding: states and returns 0, actions
  -10 (the reference's value; padded tokens are masked out of attention keys and of the loss).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mdx.data.trajectories import Trajectories
from mdx.methods.prompt_dt.model import Steps

ACTION_PAD = -10.0


@struct.dataclass
class Scales:
  """The fixed maps between environment units and the network's."""
  state_mean: jax.Array  # [obs_dim]
  state_std: jax.Array  # [obs_dim]
  action_low: float = struct.field(pytree_node=False)
  action_high: float = struct.field(pytree_node=False)
  return_scale: float = struct.field(pytree_node=False)

  def states(self, s):
    shape = (1,) * (s.ndim - 1) + (-1,)
    return (s - self.state_mean.reshape(shape)) / self.state_std.reshape(shape)

  def actions(self, a):
    return 2.0 * (a - self.action_low) / (self.action_high - self.action_low) - 1.0

  def env_actions(self, a):
    return self.action_low + (a + 1.0) * 0.5 * (self.action_high - self.action_low)


def make_scales(data: Trajectories, family, return_scale: float) -> Scales:
  """State statistics over the valid steps of `data` (the training tasks' data only: unlike the
  reference, which pools the test tasks' data in, so no test statistic reaches the model)."""
  s = np.asarray(data.observations)[np.asarray(data.valid)]
  return Scales(state_mean=jnp.asarray(s.mean(0)), state_std=jnp.asarray(s.std(0) + 1e-6),
                action_low=float(family.action_low), action_high=float(family.action_high),
                return_scale=float(return_scale))


def returns_to_go(rewards: jax.Array, valid: jax.Array) -> jax.Array:
  """`[..., T]` sum of the rewards from each step to the episode's end."""
  r = jnp.where(valid, rewards, 0.0)
  return jnp.flip(jnp.cumsum(jnp.flip(r, -1), -1), -1)


def window(obs, act, rtg, length, start, k: int, scales: Scales) -> Steps:
  """Up to `k` steps of one episode (`obs [T, S]`, `act [T, A]`, `rtg [T]`, `length` valid steps)
  from `start`, left-padded to `k`, normalized."""
  t = obs.shape[0]
  taken = jnp.clip(length - start, 0, k)
  j = jnp.arange(k)
  ok = j >= k - taken
  src = jnp.clip(start + j - (k - taken), 0, t - 1)
  return Steps(
      states=jnp.where(ok[:, None], scales.states(obs[src]), 0.0),
      actions=jnp.where(ok[:, None], scales.actions(act[src]), ACTION_PAD),
      returns_to_go=jnp.where(ok, rtg[src] / scales.return_scale, 0.0),
      timesteps=jnp.where(ok, src, 0).astype(jnp.int32),
      mask=ok)


def episode_arrays(data: Trajectories):
  """`(obs, act, rtg, length)` with a leading `[N, E]`: what `window` reads per episode."""
  valid = jnp.asarray(data.valid)
  return (jnp.asarray(data.observations), jnp.asarray(data.actions),
          returns_to_go(jnp.asarray(data.rewards), valid), valid.sum(-1).astype(jnp.int32))


def prompt_window(obs, act, rtg, length, k_prompt: int, scales: Scales) -> Steps:
  """The prompt of one episode: its last `k_prompt` steps but the final one."""
  return window(obs, act, rtg, length, jnp.maximum(length - k_prompt - 1, 0), k_prompt, scales)


def sample_prompts(rng: jax.Array, arrays, task_index: jax.Array, k_prompt: int,
                   scales: Scales) -> Steps:
  """One prompt per entry of `task_index [B]`, from a random episode of that task."""
  obs, act, rtg, length = arrays
  episodes = jax.random.randint(rng, task_index.shape, 0, obs.shape[1])
  pick = lambda x: x[task_index, episodes]
  return jax.vmap(lambda o, a, r, l: prompt_window(o, a, r, l, k_prompt, scales))(
      pick(obs), pick(act), pick(rtg), pick(length))


def sample_batch(rng: jax.Array, arrays, prompt_arrays, per_task: int, k: int, k_prompt: int,
                 scales: Scales) -> tuple[Steps, Steps]:
  """`(prompts, segments)`, `per_task` of every task (B = N per_task, task-major)."""
  obs, act, rtg, length = arrays
  n, e = obs.shape[:2]
  episode_rng, start_rng, prompt_rng = jax.random.split(rng, 3)
  task = jnp.repeat(jnp.arange(n), per_task)
  episode = jax.random.randint(episode_rng, task.shape, 0, e)
  lengths = length[task, episode]
  start = jnp.floor(jax.random.uniform(start_rng, task.shape) * lengths).astype(jnp.int32)
  segments = jax.vmap(lambda o, a, r, l, s: window(o, a, r, l, s, k, scales))(
      obs[task, episode], act[task, episode], rtg[task, episode], lengths, start)
  return sample_prompts(prompt_rng, prompt_arrays, task, k_prompt, scales), segments
