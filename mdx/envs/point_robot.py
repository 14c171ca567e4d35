"""Point-Robot: 2-D navigation to a goal (Rakelly et al. 2019; CORRO's `point_robot.py`).

The agent starts at the origin, moves by `clip(a, -0.1, 0.1)` each step, and is rewarded
`-||s' - g||` (distance of the new position to the goal) for 20 steps. Goals ~ U[-1, 1]^2.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from mdx.envs.base import EnvState, Task, TaskFamily


@dataclasses.dataclass(frozen=True)
class PointRobot(TaskFamily):
  """The Point-Robot family. All fields are static."""
  name: str = 'point_robot'
  obs_dim: int = 2
  act_dim: int = 2
  task_dim: int = 2
  episode_length: int = 20
  action_low: float = -0.1
  action_high: float = 0.1
  goal_radius: float = 1.0  # goals ~ U[-goal_radius, goal_radius]^2
  num_tasks: int = 40
  num_test_tasks: int = 10
  num_validation_tasks: int = 10
  task_seed: int = 0
  state_labels: ClassVar[tuple[tuple[int, str], ...]] = ((0, 'x'), (1, 'y'))

  def sample_task_params(self, rng: jax.Array, n: int) -> jax.Array:
    return jax.random.uniform(rng, (n, 2), minval=-self.goal_radius, maxval=self.goal_radius)

  def reset(self, task: Task, rng: jax.Array) -> EnvState:
    del task, rng  # The start is the origin for every task.
    return EnvState(obs=jnp.zeros((2,), jnp.float32), reward=jnp.zeros((), jnp.float32),
                    done=jnp.zeros((), bool), t=jnp.zeros((), jnp.int32))

  def step(self, task: Task, state: EnvState, action: jax.Array) -> EnvState:
    pos = state.obs + self.clip_action(action)
    reward = -jnp.linalg.norm(pos - task.params)
    t = state.t + 1
    new = EnvState(obs=pos, reward=reward, done=t >= self.episode_length, t=t)
    return jax.tree.map(lambda old, nw: jnp.where(state.done, old, nw), state, new)

  def observation_bound(self) -> float:
    """Positions start at the origin and move at most `action_high` per axis and step."""
    return max(abs(self.action_low), abs(self.action_high)) * self.episode_length

  def optimal_action(self, task: Task, state: EnvState) -> jax.Array:
    """The expert: per-axis greedy step toward the goal.

    With a box action set the positions reachable after t steps form the square of half-width
    0.1 t around the origin; the greedy step lands on the point of that square closest to the goal
    at every t, so it maximizes every term of the return at once and is optimal.
    """
    return self.clip_action(task.params - state.obs)
