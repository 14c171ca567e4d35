"""The `TaskFamily` contract: a distribution of MDPs that step in-graph.

A family is a Python object holding only static facts (dimensions, episode length, the task seed);
everything that varies per task lives in a `Task` pytree, so `reset` and `step` are pure functions
that can be `vmap`ped over tasks and `scan`ned over time. One compiled `step` serves every task.

DESIGN: a task is a flat parameter vector (`Task.params`, `[task_dim]`). Point-Robot stores the goal,
Cheetah-Vel the target velocity, the Param families the log-scale exponents `u` of their physics
multipliers. A flat vector keeps the contract uniform: experts can read it (task-conditioned
policies), the collector can store it in `meta.json`, and `vmap` needs no per-family `in_axes`.
"""
from __future__ import annotations

import abc
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Task:
  """One task (or a batch of them, with leading axes)."""
  params: jax.Array  # [task_dim] float32: goal, target velocity, or log-scale physics exponents.
  task_id: jax.Array  # [] int32: index of the task in its family's task list.


@struct.dataclass
class EnvState:
  """The state of one episode of one task (or a batch of them, with leading axes)."""
  obs: jax.Array  # [obs_dim] float32: the observation the agent sees.
  reward: jax.Array  # [] float32: reward of the transition that produced this state (0 after reset).
  done: jax.Array  # [] bool: True once the episode has ended (time limit or termination).
  t: jax.Array  # [] int32: number of steps taken so far.
  physics: Any = None  # family-specific simulator state (None for Point-Robot).


class TaskFamily(abc.ABC):
  """A distribution over tasks with pure, vmappable `reset` and `step`.

  Subclasses set the static attributes and implement `sample_tasks`, `reset` and `step`.
  Tasks `[0, num_tasks - num_test_tasks)` are the training split, the rest the test split; both
  are drawn deterministically from `task_seed`.
  """
  name: str
  obs_dim: int
  act_dim: int
  task_dim: int
  episode_length: int
  action_low: float = -1.0
  action_high: float = 1.0
  num_tasks: int = 40
  num_test_tasks: int = 10
  task_seed: int = 0
  # Observation entries worth plotting, as (index, label); plots fall back to the first few.
  state_labels: ClassVar[tuple[tuple[int, str], ...]] = ()

  @abc.abstractmethod
  def sample_task_params(self, rng: jax.Array, n: int) -> jax.Array:
    """Draws `n` task parameter vectors, `[n, task_dim]`."""

  @abc.abstractmethod
  def reset(self, task: Task, rng: jax.Array) -> EnvState:
    """Starts an episode of `task` (a single task, no batch axis)."""

  @abc.abstractmethod
  def step(self, task: Task, state: EnvState, action: jax.Array) -> EnvState:
    """Advances one step with `action` `[act_dim]`. Steps after `done` leave the state unchanged."""

  def sample_tasks(self, rng: jax.Array, n: int) -> Task:
    """Draws `n` tasks with ids `0..n-1`; leading axis `[n]`."""
    return Task(params=self.sample_task_params(rng, n),
                task_id=jnp.arange(n, dtype=jnp.int32))

  def all_tasks(self) -> Task:
    """All `num_tasks` tasks of the family, drawn from `task_seed`; `[num_tasks]`."""
    return self.sample_tasks(jax.random.PRNGKey(self.task_seed), self.num_tasks)

  def train_tasks(self) -> Task:
    """The training split, `[num_tasks - num_test_tasks]`."""
    return jax.tree.map(lambda x: x[:self.num_tasks - self.num_test_tasks], self.all_tasks())

  def test_tasks(self) -> Task:
    """The held-out test split, `[num_test_tasks]`."""
    return jax.tree.map(lambda x: x[self.num_tasks - self.num_test_tasks:], self.all_tasks())

  def split_tasks(self, split: str) -> Task:
    """`train_tasks()` or `test_tasks()` by name."""
    if split == 'train':
      return self.train_tasks()
    if split == 'test':
      return self.test_tasks()
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")

  def clip_action(self, action: jax.Array) -> jax.Array:
    return jnp.clip(action, self.action_low, self.action_high)
