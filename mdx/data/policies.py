"""Behaviour policies for the three data tiers: expert, medium and random.

A behaviour policy is a pure function `policy(task, state, rng) -> action [act_dim]` on a single
task and state; the collector vmaps it. (Agents under evaluation are `mdx.evaluation.Policy`.)

Tiers for Point-Robot:
- expert: the optimal per-axis greedy controller (`PointRobot.optimal_action`). (Exploration
  noise of std 0.02 on it lowered MetaDiffuser's score, 0.85 against 0.89: docs/point_robot.md.)
- medium: epsilon-greedy around the expert: with probability `MEDIUM_EPSILON` = 0.5 the action is
  drawn uniformly from the action box, otherwise it is the expert's. Its return lies between
  random and expert (measured per task in each dataset's meta.json).
- random: uniform over the action box.
Locomotion families get their expert and medium policies from trained checkpoints
(`mdx.experts.load_expert`). Their random tier is uniform actions by default
(`config.data.random_from = 'uniform'`); with `'checkpoint'` it is rollouts of an early PPO
checkpoint (`<family>_random.msgpack`), its actions sampled from the policy's tanh-Gaussian: the
paper's random tier is low-return data from early in SAC's training (its App. G), not uniform
actions. The `Random` method (the normalized score's 0) is uniform actions in every family.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from mdx.envs import EnvState, Task, TaskFamily

BehaviourFn = Callable[[Task, EnvState, jax.Array], jax.Array]
TIERS = ('expert', 'medium', 'random')
RANDOM_FROM = ('uniform', 'checkpoint')  # what the random tier's data comes from
MEDIUM_EPSILON = 0.5


def random_policy(family: TaskFamily) -> BehaviourFn:
  def policy(task, state, rng):
    del task, state
    return jax.random.uniform(rng, (family.act_dim,), minval=family.action_low,
                              maxval=family.action_high)
  return policy


def epsilon_greedy(family: TaskFamily, base: BehaviourFn, epsilon: float) -> BehaviourFn:
  """With probability `epsilon` a uniform action, otherwise `base`'s."""
  uniform = random_policy(family)

  def policy(task, state, rng):
    coin_rng, uniform_rng, base_rng = jax.random.split(rng, 3)
    explore = jax.random.bernoulli(coin_rng, epsilon)
    return jnp.where(explore, uniform(task, state, uniform_rng), base(task, state, base_rng))
  return policy


def _check(family: TaskFamily, tier: str, random_from: str) -> None:
  if tier not in TIERS:
    raise ValueError(f'tier must be one of {TIERS}, got {tier!r}')
  if random_from not in RANDOM_FROM:
    raise ValueError(f'random_from (config.data.random_from) must be one of {RANDOM_FROM}, '
                     f'got {random_from!r}')
  if random_from == 'checkpoint' and hasattr(family, 'optimal_action'):
    raise ValueError(f"random_from='checkpoint' needs a trained early checkpoint; {family.name} "
                     "has none (its expert is a controller): use 'uniform'")


def behaviour_id(family: TaskFamily, tier: str, random_from: str = 'uniform') -> str:
  """What generates `tier`'s data, as recorded in a dataset's `meta.json` (and compared by
  `collect` when it keeps a dataset): the rule and its noise, or the checkpoint's hash."""
  _check(family, tier, random_from)
  if tier == 'random' and random_from == 'uniform':
    return 'uniform'
  if hasattr(family, 'optimal_action'):
    return 'optimal' if tier == 'expert' else f'epsilon_greedy({MEDIUM_EPSILON}, optimal)'
  import hashlib  # pylint: disable=g-import-not-at-top
  from mdx import experts  # pylint: disable=g-import-not-at-top
  params_path, _ = experts.paths(family.name, tier)
  if not params_path.exists():
    raise FileNotFoundError(f'No {tier} policy for {family.name!r}: {params_path} is missing')
  digest = hashlib.sha256(params_path.read_bytes()).hexdigest()[:16]
  return f'{params_path.name} sha256:{digest}' + (' sampled' if tier == 'random' else '')


def behaviour_policy(family: TaskFamily, tier: str, random_from: str = 'uniform') -> BehaviourFn:
  """The behaviour policy of `tier` ('expert', 'medium' or 'random') for `family`; the random
  tier is uniform actions, or with `random_from='checkpoint'` the family's early checkpoint with
  sampled actions."""
  _check(family, tier, random_from)
  if tier == 'random' and random_from == 'uniform':
    return random_policy(family)
  if hasattr(family, 'optimal_action'):
    expert = lambda task, state, rng: family.optimal_action(task, state)
    if tier == 'medium':
      return epsilon_greedy(family, expert, MEDIUM_EPSILON)
    return expert
  from mdx import experts  # pylint: disable=g-import-not-at-top
  return experts.load_expert(family.name, tier=tier, deterministic=tier != 'random')
