"""Receding-horizon evaluation, stepped in-graph.

`rollout` is one `lax.scan` over the episode's steps: at every step the planner is called on the
whole batch of environments (tasks x episodes x warm-start tiers, flattened to B) and the first
action of each kept plan is executed by the vmapped `step`. The full evaluation of a method is
therefore one compiled program.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import struct

from mdx import data as mdata
from mdx.envs import Task, TaskFamily

# plan_fn(rng, obs [B, obs_dim], context [B, C]) -> (action [B, act_dim], planned states [B, H, obs])
PlanFn = Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


@struct.dataclass
class Episodes:
  """The outcome of B evaluation episodes."""
  returns: jax.Array  # [B]
  observations: jax.Array  # [B, T + 1, obs_dim]: s_0 ... s_T
  actions: jax.Array  # [B, T, act_dim]
  rewards: jax.Array  # [B, T]
  plans: jax.Array  # [B, T, H, obs_dim]: the planned states at every step


def rollout(family: TaskFamily, tasks: Task, contexts: jax.Array, plan_fn: PlanFn,
            rng: jax.Array) -> Episodes:
  """B receding-horizon episodes; `tasks` and `contexts` have leading axis `[B]`."""
  batch = tasks.task_id.shape[0]
  reset_rng, plan_rng = jax.random.split(rng)
  state = jax.vmap(family.reset)(tasks, jax.random.split(reset_rng, batch))

  def body(state, rng):
    action, planned = plan_fn(rng, state.obs, contexts)
    nxt = jax.vmap(family.step)(tasks, state, action)
    reward = jnp.where(state.done, 0.0, nxt.reward)
    return nxt, (state.obs, action, reward, planned)

  final, (obs, actions, rewards, plans) = jax.lax.scan(
      body, state, jax.random.split(plan_rng, family.episode_length))
  obs = jnp.concatenate([obs, final.obs[None]], axis=0)
  swap = lambda x: jnp.moveaxis(x, 0, 1)
  return Episodes(returns=rewards.sum(0), observations=swap(obs), actions=swap(actions),
                  rewards=swap(rewards), plans=swap(plans))


def infer_contexts(encode_fn: Callable[[jax.Array], jax.Array], warm: mdata.Trajectories,
                   rng: jax.Array, *, history: int, num_context: int) -> jax.Array:
  """One context per task of `warm` from `num_context` random windows of its warm-start data.

  Args:
    encode_fn: `[N, n, h, row] -> [N, C]`, the trained encoder (mean over the n windows).
    warm: warm-start data of the test tasks, `[N, E, T, ...]`.
    rng: PRNG key.
    history: h.
    num_context: windows per task.

  Returns:
    `[N, C]`.
  """
  n = warm.num_tasks
  windows = jax.vmap(lambda i, r: mdata.sample_context(r, warm, i, history=history,
                                                       num_context=num_context))(
      jnp.arange(n), jax.random.split(rng, n))
  return encode_fn(windows)


def policy_returns(family: TaskFamily, tasks: Task, policy: mdata.Policy, rng: jax.Array,
                   episodes: int) -> jax.Array:
  """Returns `[N, episodes]` of a behaviour policy (the Oracle and Random rows)."""
  return (mdata.collect(family, tasks, policy, rng, episodes).rewards).sum(-1)
