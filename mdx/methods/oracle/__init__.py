"""Oracle: the expert behaviour policy on the task itself (it knows the task).

Point-Robot's is the optimal controller; the locomotion families' the committed task-conditioned
Brax-PPO expert (`mdx.experts`, deterministic). Its return is the normalized score's 1.
"""
import jax
import jax.numpy as jnp

from mdx.data import policies
from mdx.envs import EnvState
from mdx.evaluation.policy import Policy, stateless
from mdx.methods.base import Method


def observed_states(obs: jax.Array) -> EnvState:
  """An `EnvState` batch holding only the observations `[B, obs_dim]`: what a behaviour policy
  (`policy(task, state, rng)`, which reads `state.obs`) may see of the environment."""
  b = obs.shape[0]
  return EnvState(obs=obs, reward=jnp.zeros((b,)), done=jnp.zeros((b,), bool),
                  t=jnp.zeros((b,), jnp.int32))


def behaviour_as_policy(behaviour) -> Policy:
  """A behaviour policy (`mdx.data.policies`) as a batched `Policy` that knows its tasks."""
  return stateless(lambda params, tasks, obs, rng: jax.vmap(behaviour)(
      tasks, observed_states(obs), jax.random.split(rng, obs.shape[0])))


def make_policy(config, workdir, seed, family) -> Policy:
  del config, workdir, seed  # nothing trained in a run
  return behaviour_as_policy(policies.behaviour_policy(family, 'expert'))


ORACLE = Method(name='Oracle', make_policy=make_policy,
                description='the expert behaviour policy, given the task')
