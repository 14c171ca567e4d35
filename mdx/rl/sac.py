"""Offline SAC with twin critics (CORRO's learner; `PKU-AI-Edge/CORRO`, `algorithms/sac.py`).

The standard SAC update on a batch of fixed transitions, with a fixed entropy temperature
`alpha` (CORRO: 0.2, no CQL: its `use_cql` is off in every config):

  critic:  sum_i mean (Q_i(s, a) - y)^2,  y = reward_scale r + gamma (1 - d) (min_i Qbar_i(s', a') - alpha log pi(a'|s')),
           a' ~ pi(s'), Qbar the target critic (Polyak averaged with `tau` after each step)
  actor:   mean (alpha log pi(a|s) - min_i Q_i(s, a)),  a ~ pi(s), with the just-updated critic.

The target critic is the critic's `TrainState.ema_params` with decay `1 - tau`: `TrainState`'s
EMA after each critic step is exactly SAC's soft target update. `d` is a true termination (not
a time limit). All functions are pure; `mdx.rl.make_train_step` scans many updates per call.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mdx.rl.networks import TanhGaussianPolicy, TwinQ, sample_tanh_gaussian
from mdx.training.state import TrainState, compiled_init


@dataclasses.dataclass(frozen=True)
class SACConfig:
  hidden: Sequence[int] = (256, 256)  # Q and policy MLPs (CORRO; Point-Robot 64, 64)
  discount: float = 0.99
  tau: float = 0.005  # Polyak rate of the target critic
  alpha: float = 0.2  # fixed entropy temperature
  reward_scale: float = 1.0
  learning_rate: float = 3e-4
  # CQL(H) (Kumar et al. 2020): `cql_weight * (logsumexp_a Q(s, a) - Q(s, a_data))` per head
  # added to the critic loss, the logsumexp estimated from `cql_samples` uniform actions and as
  # many policy actions at s and at s' (importance-weighted). 0 = off (CORRO's `use_cql=False`).
  cql_weight: float = 0.0
  cql_samples: int = 10


class SACState(struct.PyTreeNode):
  step: jax.Array  # calls of the scanned train step (each `num_updates` updates)
  actor: TrainState
  critic: TrainState  # ema_params: the target critic


class Batch(struct.PyTreeNode):
  """Transitions `[B, ...]`; `obs` / `next_obs` already hold whatever conditions the learner."""
  obs: jax.Array
  act: jax.Array
  rew: jax.Array  # [B]
  next_obs: jax.Array
  done: jax.Array  # [B] 1.0 where the episode terminated at this step


@compiled_init
def init_sac(rng: jax.Array, obs_dim: int, act_dim: int, config: SACConfig) -> SACState:
  a_rng, c_rng = jax.random.split(rng)
  obs, act = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim))
  tx = optax.adam(config.learning_rate)
  actor = TrainState.create(TanhGaussianPolicy(config.hidden, act_dim).init(a_rng, obs), tx)
  critic = TrainState.create(TwinQ(config.hidden).init(c_rng, obs, act), tx)
  return SACState(step=jnp.zeros((), jnp.int32), actor=actor, critic=critic)


def sac_target(state: SACState, batch: Batch, rng: jax.Array, config: SACConfig) -> jax.Array:
  """The critic's regression target `y [B]` (no gradient)."""
  policy, q_net = TanhGaussianPolicy(config.hidden, batch.act.shape[-1]), TwinQ(config.hidden)
  next_a, next_logp, _ = sample_tanh_gaussian(*policy.apply(state.actor.params, batch.next_obs),
                                              rng)
  next_q = q_net.apply(state.critic.ema_params, batch.next_obs, next_a).min(0)
  return jax.lax.stop_gradient(config.reward_scale * batch.rew + config.discount * (
      1.0 - batch.done) * (next_q - config.alpha * next_logp))


def critic_loss(q_params, obs: jax.Array, act: jax.Array, target: jax.Array,
                config: SACConfig, cql=None) -> tuple[jax.Array, jax.Array]:
  """`sum_i mean (Q_i(s, a) - y)^2` (plus the CQL term, given `cql = (actions [B, 3n, A],
  log densities [B, 3n])` from `cql_actions`) and the Q values `[2, B]`."""
  q_net = TwinQ(config.hidden)
  q = q_net.apply(q_params, obs, act)
  loss = jnp.square(q - target[None]).mean(1).sum()
  if cql is not None:
    actions, log_density = cql
    n = actions.shape[1]
    q_sampled = q_net.apply(q_params, jnp.repeat(obs[:, None], n, 1), actions)  # [2, B, 3n]
    logsumexp = jax.nn.logsumexp(q_sampled - log_density[None], axis=-1)
    loss = loss + config.cql_weight * (logsumexp - q).mean(1).sum()
  return loss, q


def cql_actions(actor_params, obs: jax.Array, next_obs: jax.Array, act_dim: int,
                rng: jax.Array, config: SACConfig) -> tuple[jax.Array, jax.Array]:
  """CQL's proposal actions at each state and their log densities (no gradient): `n` uniform
  on [-1, 1]^A, `n` from pi(s), `n` from pi(s') (rlkit's CQL)."""
  n, b = config.cql_samples, obs.shape[0]
  policy = TanhGaussianPolicy(config.hidden, act_dim)
  u_rng, s_rng, n_rng = jax.random.split(rng, 3)
  uniform = jax.random.uniform(u_rng, (b, n, act_dim), minval=-1.0, maxval=1.0)

  def from_policy(states, key):
    mean, log_std = policy.apply(actor_params, states)
    rep = lambda x: jnp.repeat(x[:, None], n, 1)
    a, logp, _ = sample_tanh_gaussian(rep(mean), rep(log_std), key)
    return a, logp
  a_s, lp_s = from_policy(obs, s_rng)
  a_n, lp_n = from_policy(next_obs, n_rng)
  actions = jnp.concatenate([uniform, a_s, a_n], 1)
  log_density = jnp.concatenate([jnp.full((b, n), -act_dim * jnp.log(2.0)), lp_s, lp_n], 1)
  return jax.lax.stop_gradient(actions), jax.lax.stop_gradient(log_density)


def actor_step(actor: TrainState, q_params, obs: jax.Array, act_dim: int, rng: jax.Array,
               config: SACConfig) -> tuple[TrainState, jax.Array, jax.Array]:
  """One actor step on `mean (alpha log pi - min_i Q_i)`: `(actor, loss, log pi [B])`."""
  policy, q_net = TanhGaussianPolicy(config.hidden, act_dim), TwinQ(config.hidden)

  def loss(params):
    a, logp, _ = sample_tanh_gaussian(*policy.apply(params, obs), rng)
    return jnp.mean(config.alpha * logp - q_net.apply(q_params, obs, a).min(0)), logp
  (value, logp), grads = jax.value_and_grad(loss, has_aux=True)(actor.params)
  return actor.apply_gradients(grads, ema_decay=0.0), value, logp


def sac_update(state: SACState, batch: Batch, rng: jax.Array, config: SACConfig
               ) -> tuple[SACState, dict[str, jax.Array]]:
  """One critic step, then one actor step."""
  next_rng, new_rng, cql_rng = jax.random.split(rng, 3)
  target = sac_target(state, batch, next_rng, config)
  cql = (cql_actions(state.actor.params, batch.obs, batch.next_obs, batch.act.shape[-1], cql_rng,
                     config) if config.cql_weight > 0 else None)
  (c_loss, q), c_grads = jax.value_and_grad(critic_loss, has_aux=True)(
      state.critic.params, batch.obs, batch.act, target, config, cql)
  critic = state.critic.apply_gradients(c_grads, ema_decay=1.0 - config.tau)
  actor, a_loss, logp = actor_step(state.actor, critic.params, batch.obs, batch.act.shape[-1],
                                   new_rng, config)
  metrics = dict(critic_loss=c_loss, actor_loss=a_loss, q=q.mean(), target=target.mean(),
                 entropy=-logp.mean())
  return state.replace(actor=actor, critic=critic), metrics


def policy_mode(actor_params, obs: jax.Array, act_dim: int, hidden: Sequence[int]) -> jax.Array:
  """The deterministic action `tanh(mean)` (what CORRO and FOCAL evaluate)."""
  mean, _ = TanhGaussianPolicy(hidden, act_dim).apply(actor_params, obs)
  return jnp.tanh(mean)
