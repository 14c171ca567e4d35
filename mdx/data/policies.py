"""Behaviour policies for the three data tiers: expert, medium and random.

A policy is a pure function `policy(task, state, rng) -> action [act_dim]` on a single task and
state; the collector vmaps it.

Tiers for Point-Robot:
- expert: the optimal per-axis greedy controller (`PointRobot.optimal_action`), plus Gaussian
  exploration noise of std `expert_noise` (in action units, then clipped) when collecting
  datasets (`config.data.expert_noise`, default 0). The paper's expert data came from stochastic
  SAC policies; on Point-Robot, noise of std 0.02 widened the states the denoiser sees but lowered
  MetaDiffuser's expert-warm-start score (0.85 against 0.89 without noise, docs/point_robot.md),
  so the cpu preset keeps the optimal controller. The Oracle row always uses the noise-free
  controller.
- medium: epsilon-greedy around the expert: with probability `MEDIUM_EPSILON` = 0.5 the action is
  drawn uniformly from the action box, otherwise it is the expert's. Its return lies between
  random and expert (measured per task in each dataset's meta.json).
- random: uniform over the action box.
Locomotion families get their expert and medium policies from trained checkpoints
(`mdx.envs.experts.load_expert`).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from mdx.envs import EnvState, Task, TaskFamily

Policy = Callable[[Task, EnvState, jax.Array], jax.Array]
TIERS = ('expert', 'medium', 'random')
MEDIUM_EPSILON = 0.5


def random_policy(family: TaskFamily) -> Policy:
  def policy(task, state, rng):
    del task, state
    return jax.random.uniform(rng, (family.act_dim,), minval=family.action_low,
                              maxval=family.action_high)
  return policy


def epsilon_greedy(family: TaskFamily, base: Policy, epsilon: float) -> Policy:
  """With probability `epsilon` a uniform action, otherwise `base`'s."""
  uniform = random_policy(family)

  def policy(task, state, rng):
    coin_rng, uniform_rng, base_rng = jax.random.split(rng, 3)
    explore = jax.random.bernoulli(coin_rng, epsilon)
    return jnp.where(explore, uniform(task, state, uniform_rng), base(task, state, base_rng))
  return policy


def gaussian_noise(family: TaskFamily, base: Policy, std: float) -> Policy:
  """`base`'s action plus N(0, std^2) per dimension, clipped to the action box."""
  def policy(task, state, rng):
    base_rng, noise_rng = jax.random.split(rng)
    noisy = base(task, state, base_rng) + std * jax.random.normal(noise_rng, (family.act_dim,))
    return jnp.clip(noisy, family.action_low, family.action_high)
  return policy


def make_policy(family: TaskFamily, tier: str, *, expert_noise: float = 0.0) -> Policy:
  """The behaviour policy of `tier` ('expert', 'medium' or 'random') for `family`.

  `expert_noise` > 0 adds Gaussian exploration noise to the analytic expert (data collection);
  0 gives the noise-free controller (the Oracle)."""
  if tier not in TIERS:
    raise ValueError(f'tier must be one of {TIERS}, got {tier!r}')
  if tier == 'random':
    return random_policy(family)
  if hasattr(family, 'optimal_action'):
    expert = lambda task, state, rng: family.optimal_action(task, state)
    if tier == 'medium':
      return epsilon_greedy(family, expert, MEDIUM_EPSILON)
    return gaussian_noise(family, expert, expert_noise) if expert_noise > 0 else expert
  from mdx.envs import experts  # pylint: disable=g-import-not-at-top
  return experts.load_expert(family.name, tier=tier)
