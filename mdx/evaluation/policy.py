"""The contract every method's agent satisfies: a stateful, pure, batched `Policy`.

A policy acts on a batch of B environments at once:

  state = policy.init(rng, tasks, warm_start)          # tasks [B]; warm_start [B] or None
  action, state, info = policy.act(state, obs, rng)    # obs [B, obs_dim] -> action [B, act_dim]
  state = policy.observe(state, reward)                 # reward [B] of that action (optional)

`state` is any pytree the method needs to carry between steps (a context z, a decision
transformer's last K steps and return-to-go, a recurrent encoder's memory); `info` is a dict of
`[B, ...]` arrays recorded at every step by `rollout` (a planner puts its kept plan there as
`plan_states` / `plan_actions`, which the Figure-3 replay executes open-loop).

`warm_start` is the warm-start data of each environment's task, a `Trajectories` whose task axis
is the batch (`[B, E, T, ...]`): what a meta-RL agent may look at before acting. A method that
needs none ignores it; the evaluation passes None for such methods (`Method.uses_warm_start`).

DESIGN: the parameters are a pytree field, the functions are static. So a `Policy` goes through
`jit` and `vmap` as an argument, and the evaluation runs the policies of several training seeds as
one program by stacking their `params` (`stack_params`) and vmapping over them.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
from flax import struct

from mdx.data.trajectories import Trajectories
from mdx.envs import Task

# init_fn(params, rng, tasks [B], warm_start [B] or None) -> state
InitFn = Callable[[Any, jax.Array, Task, Optional[Trajectories]], Any]
# act_fn(params, state, obs [B, obs_dim], rng) -> (action [B, act_dim], state, info {str: [B, ...]})
ActFn = Callable[[Any, Any, jax.Array, jax.Array], tuple[jax.Array, Any, dict]]
# observe_fn(params, state, reward [B]) -> state: the reward of the action just taken
ObserveFn = Callable[[Any, Any, jax.Array], Any]


@struct.dataclass
class Policy:
  """A batched policy: `params` (a pytree) and its two pure functions."""
  params: Any
  init_fn: InitFn = struct.field(pytree_node=False)
  act_fn: ActFn = struct.field(pytree_node=False)
  observe_fn: Optional[ObserveFn] = struct.field(pytree_node=False, default=None)

  def init(self, rng: jax.Array, tasks: Task, warm_start: Optional[Trajectories] = None) -> Any:
    """The initial state for B environments of `tasks` (leading axis `[B]`)."""
    return self.init_fn(self.params, rng, tasks, warm_start)

  def act(self, state: Any, obs: jax.Array, rng: jax.Array) -> tuple[jax.Array, Any, dict]:
    """`(action [B, act_dim], new state, info)` for observations `obs [B, obs_dim]`."""
    return self.act_fn(self.params, state, obs, rng)

  def observe(self, state: Any, reward: jax.Array) -> Any:
    """The state after the environments returned `reward [B]` for the last action (a decision
    transformer lowers its return-to-go by it); unchanged for policies without `observe_fn`."""
    return state if self.observe_fn is None else self.observe_fn(self.params, state, reward)


def stateless(act: Callable[[Any, Task, jax.Array, jax.Array], jax.Array],
              params: Any = None) -> Policy:
  """A `Policy` whose state is the tasks: `act(params, tasks, obs, rng) -> action [B, act_dim]`."""
  return Policy(params=params, init_fn=lambda p, rng, tasks, warm: tasks,
                act_fn=lambda p, tasks, obs, rng: (act(p, tasks, obs, rng), tasks, {}))


def stack_params(policies: list[Policy]) -> Policy:
  """One `Policy` whose params have a leading axis over `policies` (same functions and shapes),
  for `jax.vmap` over, e.g., training seeds."""
  first = policies[0]
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *[p.params for p in policies])
  return first.replace(params=stacked)
