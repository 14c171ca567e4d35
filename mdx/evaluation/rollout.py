"""Receding-horizon evaluation, stepped in-graph.

`rollout` is one `lax.scan` over the episode's steps: at every step the planner is called on the
whole batch of environments (tasks x episodes x warm-start tiers, flattened to B) and the first
action of each kept plan is executed by the vmapped `step`. The full evaluation of a method is
therefore one compiled program.

With `replay_plans=True` the rollout also executes, at every step, the kept plan's whole action
sequence open-loop from the true environment state (on a copy; the episode itself goes on
receding-horizon), which gives the states that plan actually leads to: the paper's Figure 3 compares
them with the planned states, and the dual guide's dynamics term is there to bring them together.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mdx import data as mdata
from mdx.envs import Task, TaskFamily
from mdx.planning import PlanOutput

# plan_fn(rng, obs [B, obs_dim], context [B, C]) -> PlanOutput with leading axis [B]
PlanFn = Callable[[jax.Array, jax.Array, jax.Array], PlanOutput]


@struct.dataclass
class Episodes:
  """The outcome of B evaluation episodes."""
  returns: jax.Array  # [B]
  observations: jax.Array  # [B, T + 1, obs_dim]: s_0 ... s_T
  actions: jax.Array  # [B, T, act_dim]
  rewards: jax.Array  # [B, T]
  plans: jax.Array  # [B, T, H, obs_dim]: the planned states at every step
  # [B, T, H, obs_dim] with `replay_plans`, else None: the states reached by executing the plan of
  # step t open-loop from the true state s_t (`reached[:, t, 0] == s_t`).
  reached: jax.Array | None = None
  alive: jax.Array | None = None  # [B, T] bool: the episode had not ended before step t


def replay_plan(family: TaskFamily, task: Task, state, actions: jax.Array) -> jax.Array:
  """The observations `[H, obs_dim]` reached from `state` by executing `actions[:H-1]` open-loop:
  `s_t, s_{t+1}, ..., s_{t+H-1}`, aligned with a plan's states (unbatched; vmap it)."""
  def body(s, a):
    nxt = family.step(task, s, a)
    return nxt, nxt.obs
  _, obs = jax.lax.scan(body, state, actions[:-1])
  return jnp.concatenate([state.obs[None], obs], axis=0)


def replay_mask(alive: np.ndarray, horizon: int) -> np.ndarray:
  """`[B, T, H]` bool: plan step h of the plan made at step t was really replayed, i.e. every
  action up to it was taken in a live episode (states past the episode's end are frozen)."""
  b, t = alive.shape
  pad = np.concatenate([alive, np.zeros((b, horizon), bool)], axis=1)
  idx = np.arange(t)[:, None] + np.maximum(np.arange(horizon) - 1, 0)[None]  # last action taken
  return alive[:, :, None] & pad[:, idx]


def rollout(family: TaskFamily, tasks: Task, contexts: jax.Array, plan_fn: PlanFn,
            rng: jax.Array, *, replay_plans: bool = False) -> Episodes:
  """B receding-horizon episodes; `tasks` and `contexts` have leading axis `[B]`."""
  batch = tasks.task_id.shape[0]
  reset_rng, plan_rng = jax.random.split(rng)
  state = jax.vmap(family.reset)(tasks, jax.random.split(reset_rng, batch))

  def body(state, rng):
    out = plan_fn(rng, state.obs, contexts)
    nxt = jax.vmap(family.step)(tasks, state, out.action)
    reward = jnp.where(state.done, 0.0, nxt.reward)
    reached = (jax.vmap(lambda t, s, a: replay_plan(family, t, s, a))(tasks, state, out.actions)
               if replay_plans else None)
    return nxt, (state.obs, out.action, reward, out.states, reached, ~state.done)

  final, (obs, actions, rewards, plans, reached, alive) = jax.lax.scan(
      body, state, jax.random.split(plan_rng, family.episode_length))
  obs = jnp.concatenate([obs, final.obs[None]], axis=0)
  swap = lambda x: None if x is None else jnp.moveaxis(x, 0, 1)
  return Episodes(returns=rewards.sum(0), observations=swap(obs), actions=swap(actions),
                  rewards=swap(rewards), plans=swap(plans), reached=swap(reached),
                  alive=swap(alive))


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
