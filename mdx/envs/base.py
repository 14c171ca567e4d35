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
import zlib
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct


SPLITS = ('train', 'validation', 'test')
# Stream constants folded into PRNG keys (see `TaskFamily`): fixed forever, they define the splits.
VALIDATION_STREAM = zlib.crc32(b'mdx/validation')
DISTRIBUTION_STREAM = zlib.crc32(b'mdx/distribution')
OBS_BOUND = 1e3  # the default `TaskFamily.observation_bound()`


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

  Subclasses set the static attributes and implement `sample_task_params`, `reset` and `step`.
  Three splits, all from the training distribution and all deterministic in `task_seed`:
  - train and test: `num_tasks` tasks drawn from `PRNGKey(task_seed)`; the first
    `num_tasks - num_test_tasks` are the training split, the rest the test split;
  - validation: `num_validation_tasks` tasks drawn from `fold_in(PRNGKey(task_seed), VALIDATION)`,
    where every choice (presets, guide forms and scales, checkpoints) is made.
  `distribution_tasks(seed, n)` draws from a third stream, `fold_in(PRNGKey(DISTRIBUTION), seed)`,
  for tools that score experts over the distribution (`experiments/select_expert.py`,
  `experiments/expert_map.py`). DESIGN: neither derived key is `PRNGKey(s)` for any `s`, so no
  seed value given to those tools reproduces the test draw (tests/test_envs.py checks the seeds
  they accept and the validation split against both).
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
  num_validation_tasks: int = 10
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

  def standardize_params(self, params: jax.Array) -> jax.Array:
    """Task parameters `[..., task_dim]` standardized by the training tasks' mean and std (a
    fixed map, so every split's tasks go through the same one): the true-task context of Ours+GT
    and of the offline learners' diagnostics."""
    train = jnp.asarray(self.train_tasks().params)
    shape = (1,) * (params.ndim - 1) + (-1,)
    mean, std = train.mean(0).reshape(shape), (train.std(0) + 1e-6).reshape(shape)
    return (params - mean) / std

  def test_tasks(self) -> Task:
    """The held-out test split, `[num_test_tasks]`."""
    return jax.tree.map(lambda x: x[self.num_tasks - self.num_test_tasks:], self.all_tasks())

  def validation_tasks(self) -> Task:
    """The validation split, `[num_validation_tasks]`, ids after the train and test tasks."""
    key = jax.random.fold_in(jax.random.PRNGKey(self.task_seed), VALIDATION_STREAM)
    tasks = self.sample_tasks(key, self.num_validation_tasks)
    return tasks.replace(task_id=tasks.task_id + self.num_tasks)

  def distribution_tasks(self, seed: int, n: int) -> Task:
    """`n` tasks of the training distribution from `seed` (never the train, validation or test
    draw, whatever the seed); for scoring experts over the distribution."""
    key = jax.random.fold_in(jax.random.PRNGKey(DISTRIBUTION_STREAM), seed)
    return self.sample_tasks(key, n)

  def split_tasks(self, split: str) -> Task:
    """`train_tasks()`, `validation_tasks()` or `test_tasks()` by name."""
    if split not in SPLITS:
      raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    return {'train': self.train_tasks, 'validation': self.validation_tasks,
            'test': self.test_tasks}[split]()

  def observation_bound(self) -> float:
    """No observation of any episode exceeds this in absolute value; datasets are checked
    against it. Brax families: `OBS_BOUND`, far above any value their physics reaches (their
    velocities stay under 100; Cheetah-Vel's random data peak at 40)."""
    return OBS_BOUND

  def clip_action(self, action: jax.Array) -> jax.Array:
    return jnp.clip(action, self.action_low, self.action_high)
