"""Episodes of any `Policy`, stepped in-graph: one `lax.scan` over the episode's steps.

At every step the policy acts on the whole batch of environments (tasks x episodes x warm-start
tiers, flattened to B) and the vmapped `step` executes its actions, so the evaluation of a method
is one compiled program.

With `replay_plans=True` (for policies whose `info` holds `plan_actions [B, H, act_dim]` and
`plan_states [B, H, obs_dim]`), the rollout also executes, at every step, the kept plan's whole
action sequence open-loop from the true environment state (on a copy; the episode itself goes on),
which gives the states that plan actually leads to: the paper's Figure 3 compares them with the
planned states, and the dual guide's dynamics term is there to bring them together.
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mdx import data as mdata
from mdx.envs import Task, TaskFamily
from mdx.evaluation.policy import Policy
from mdx.progress import Progress, steps


@struct.dataclass
class Episodes:
  """The outcome of B evaluation episodes."""
  returns: jax.Array  # [B]
  observations: jax.Array  # [B, T + 1, obs_dim]: s_0 ... s_T
  actions: jax.Array  # [B, T, act_dim]
  rewards: jax.Array  # [B, T]
  alive: jax.Array  # [B, T] bool: the episode had not ended before step t
  info: dict  # {name: [B, T, ...]}: the policy's `info` at every step
  # [B, T, H, obs_dim] with `replay_plans`, else None: the states reached by executing the plan of
  # step t open-loop from the true state s_t (`reached[:, t, 0] == s_t`).
  reached: Optional[jax.Array] = None
  # [B, T + 1, nq] with `keep_q`, else None: the simulator's joint positions (rendering).
  q: Optional[jax.Array] = None

  @property
  def plans(self) -> Optional[jax.Array]:
    """`[B, T, H, obs_dim]` planned states at every step, for planners (else None)."""
    return self.info.get('plan_states')


def replay_plan(family: TaskFamily, task: Task, state, actions: jax.Array) -> jax.Array:
  """The observations `[H, obs_dim]` reached from `state` by executing `actions[:H-1]` open-loop:
  `s_t, s_{t+1}, ..., s_{t+H-1}`, aligned with a plan's states (unbatched; vmap it)."""
  def body(s, a):
    nxt = family.step(task, s, a)
    return nxt, nxt.obs
  _, obs = jax.lax.scan(body, state, actions[:-1])
  return jnp.concatenate([state.obs[None], obs], axis=0)


def replay_mask(alive: jax.Array, horizon: int) -> jax.Array:
  """`[B, T, H]` bool: plan step h of the plan made at step t was really replayed, i.e. every
  action up to it was taken in a live episode (states past the episode's end are frozen).
  Works on numpy and JAX arrays (inside `jit` too)."""
  b, t = alive.shape
  pad = jnp.concatenate([alive, jnp.zeros((b, horizon), bool)], axis=1)
  idx = np.arange(t)[:, None] + np.maximum(np.arange(horizon) - 1, 0)[None]  # last action taken
  return alive[:, :, None] & pad[:, idx]


def episode_gaps(plans: jax.Array, reached: jax.Array, alive: jax.Array) -> jax.Array:
  """`[B, H]` mean |planned - reached| (over state entries) per plan step of each episode, over
  its replayed steps (`replay_mask`); `plans, reached [B, T, H, obs_dim]`, `alive [B, T]`."""
  err = jnp.abs(plans - reached).mean(-1)  # [B, T, H]
  mask = replay_mask(alive, plans.shape[2])
  return (err * mask).sum(1) / jnp.maximum(mask.sum(1), 1)


def rollout(family: TaskFamily, tasks: Task, policy: Policy, rng: jax.Array, *,
            warm_start: Optional[mdata.Trajectories] = None,
            replay_plans: bool = False, keep_info: bool = True,
            progress: Progress = Progress(), keep_q: bool = False) -> Episodes:
  """B episodes of `policy` on `tasks` (leading axis `[B]`), one `lax.scan` over time.

  Args:
    family: the task family.
    tasks: `[B]` tasks, one per environment.
    policy: any `Policy`.
    rng: PRNG key of the whole batch.
    warm_start: each environment's warm-start data (task axis `[B]`), given to `policy.init`.
    replay_plans: also replay each step's plan open-loop (`info['plan_actions']` needed).
    keep_info: record the policy's `info` at every step (False: `Episodes.info` is `{}`, which
      saves the memory of every step's plan in large evaluations).
    progress: progress lines from inside the scan (`mdx.progress`; off by default).
    keep_q: also record the simulator's joint positions (`EnvState.physics.q`), for videos.

  Returns:
    `Episodes` with leading axis `[B]`.
  """
  batch = tasks.task_id.shape[0]
  reset_rng, init_rng, act_rng = jax.random.split(rng, 3)
  env = jax.vmap(family.reset)(tasks, jax.random.split(reset_rng, batch))
  if keep_q and getattr(env.physics, 'q', None) is None:
    raise ValueError(f'keep_q: the {family.name} family has no simulator joint positions')
  carry = policy.init(init_rng, tasks, warm_start)

  def body(state, xs):
    rng, t = xs
    progress.tick(t, family.episode_length)
    env, carry = state
    action, carry, info = policy.act(carry, env.obs, rng)
    action = jax.vmap(family.clip_action)(action)
    nxt = jax.vmap(family.step)(tasks, env, action)
    reward = jnp.where(env.done, 0.0, nxt.reward)
    carry = policy.observe(carry, reward)
    reached = None
    if replay_plans:
      if 'plan_actions' not in info:
        raise ValueError("replay_plans needs a policy whose info holds 'plan_actions'")
      reached = jax.vmap(lambda t, s, a: replay_plan(family, t, s, a))(
          tasks, env, info['plan_actions'])
    q = env.physics.q if keep_q else None
    return (nxt, carry), (env.obs, action, reward, ~env.done, info if keep_info else {}, reached,
                          q)

  (final, _), (obs, actions, rewards, alive, info, reached, q) = jax.lax.scan(
      body, (env, carry),
      (jax.random.split(act_rng, family.episode_length), steps(family.episode_length)))
  obs = jnp.concatenate([obs, final.obs[None]], axis=0)
  swap = lambda x: jnp.moveaxis(x, 0, 1)
  return Episodes(returns=rewards.sum(0), observations=swap(obs), actions=swap(actions),
                  rewards=swap(rewards), alive=swap(alive), info=jax.tree.map(swap, info),
                  reached=None if reached is None else swap(reached),
                  q=None if q is None else swap(jnp.concatenate([q, final.physics.q[None]])))


def plan_discrepancy(episodes: Episodes) -> np.ndarray:
  """Mean |planned - reached| per plan step `[H]`, over episodes, replayed steps and state
  entries, of a rollout with `replay_plans`."""
  err = np.abs(np.asarray(episodes.plans) - np.asarray(episodes.reached)).mean(-1)  # [B, T, H]
  mask = np.asarray(replay_mask(np.asarray(episodes.alive), err.shape[-1]))
  return (err * mask).sum((0, 1)) / np.maximum(mask.sum((0, 1)), 1)
