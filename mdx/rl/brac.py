"""BRAC with a dual-form KL divergence and a learned penalty weight: FOCAL's learner
(`LanqingLi1993/FOCAL-ICLR`, `rlkit/torch/sac/sac.py` and `rlkit/torch/brac/`).

Networks: twin Q, a state value V with a target copy, a tanh-Gaussian policy and a dual critic
c(s, a). With `a_pi ~ pi(s)` and the data's action `a_b`, one update, in the reference's order:

  D      = mean dual KL estimate  -softplus(c(s, a_b)) + log(softplus(c(s, a_pi)) + 1e-8) + 1
           (its supremum over c is KL(pi || beta): the f-divergence dual with g = log u + 1)
  c      <- `c_iter` steps on  -D + 5 mean(max(|grad_a c(s, a~)| - 1, 0)^2),
           a~ on the segment between a_pi and a_b (BRAC's gradient penalty; the first step on
           this batch, the others on batches `1..c_iter-1`)
  Q_i    <- mean (Q_i(s, a_b) - y)^2,  y = reward_scale r + gamma (1 - d) (Vbar(s') - alpha D)
           (the `- alpha D` value penalty only with `value_penalty`: the reference's
           `use_value_penalty`, False by default and in its Point-Robot, Cheetah-Vel, Hopper and
           Walker configs, True for Cheetah-Dir and Ant-Dir)
  V      <- mean (V(s) - (min_i Q_i(s, a_pi) - log pi(a_pi|s)))^2   (updated Q; max entropy)
  pi     <- mean (log pi(a_pi|s) - min_i Q_i(s, a_pi) + alpha D(a_pi))  + 1e-3 mean(mean^2)
           + 1e-3 mean(log_std^2)
  alpha  <- alpha + alpha_lr (D - target_divergence), read as clip(alpha, 0, alpha_max)

D in the targets and the policy loss uses c before this update's c steps (the reference computes
it once, before). Vbar is V's `ema_params` with decay `1 - tau`. DESIGN: the reference's
`gradient_penalty` squares c's *values* at the interpolated actions, not c's gradient; we use
BRAC's penalty on the gradient (google-research `brac/divergences.py`), which the reference's
name and docstring describe.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mdx.rl.networks import (ActionCritic, StateValue, TanhGaussianPolicy, TwinQ,
                             sample_tanh_gaussian)
from mdx.rl.sac import Batch
from mdx.training.state import TrainState, compiled_init

EPS = 1e-8
GRADIENT_PENALTY = 5.0


@dataclasses.dataclass(frozen=True)
class BRACConfig:
  hidden: Sequence[int] = (256, 256, 256)  # FOCAL: 3 x 256 for Q, V, policy and c
  discount: float = 0.99
  tau: float = 0.005
  reward_scale: float = 5.0  # FOCAL: 5 (Point-Robot 100)
  learning_rate: float = 3e-4  # policy, Q and V
  c_learning_rate: float = 1e-4
  c_iter: int = 3
  alpha_init: float = 500.0  # FOCAL's default; per family in its configs
  alpha_max: float = 2000.0
  alpha_lr: float = 1.0
  target_divergence: float = 0.05
  policy_mean_reg: float = 1e-3
  policy_std_reg: float = 1e-3
  value_penalty: bool = False  # the reference's `use_value_penalty` (its default False)


class BRACState(struct.PyTreeNode):
  step: jax.Array
  actor: TrainState
  q: TrainState
  v: TrainState  # ema_params: the target V
  c: TrainState
  alpha: jax.Array  # [] the raw penalty weight (read through `penalty_weight`)


@compiled_init
def init_brac(rng: jax.Array, obs_dim: int, act_dim: int, config: BRACConfig) -> BRACState:
  rngs = jax.random.split(rng, 4)
  obs, act = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim))
  tx, c_tx = optax.adam(config.learning_rate), optax.adam(config.c_learning_rate)
  h = config.hidden
  return BRACState(
      step=jnp.zeros((), jnp.int32),
      actor=TrainState.create(TanhGaussianPolicy(h, act_dim).init(rngs[0], obs), tx),
      q=TrainState.create(TwinQ(h).init(rngs[1], obs, act), tx),
      v=TrainState.create(StateValue(h).init(rngs[2], obs), tx),
      c=TrainState.create(ActionCritic(h).init(rngs[3], obs, act), c_tx),
      alpha=jnp.asarray(config.alpha_init, jnp.float32))


def penalty_weight(state: BRACState, config: BRACConfig) -> jax.Array:
  return jnp.clip(state.alpha, 0.0, config.alpha_max)


def kl_dual_estimate(logits_p: jax.Array, logits_b: jax.Array) -> jax.Array:
  """Per sample: `-softplus(c_b) + log(softplus(c_p) + eps) + 1` (BRAC's KL in dual form)."""
  return -jax.nn.softplus(logits_b) + jnp.log(jax.nn.softplus(logits_p) + EPS) + 1.0


def dual_critic_loss(c_params, hidden, obs, a_p, a_b, rng) -> jax.Array:
  critic = ActionCritic(hidden)
  dual = kl_dual_estimate(critic.apply(c_params, obs, a_p), critic.apply(c_params, obs, a_b))
  t = jax.random.uniform(rng, a_p.shape[:-1] + (1,))
  a_mid = a_p + t * (a_b - a_p)
  grad = jax.vmap(jax.grad(lambda o, a: critic.apply(c_params, o, a)))(obs, a_mid)
  slope = jnp.sqrt(EPS + jnp.sum(jnp.square(grad), -1))
  return -dual.mean() + GRADIENT_PENALTY * jnp.mean(jnp.square(jnp.maximum(slope - 1.0, 0.0)))


def brac_update(state: BRACState, batches: Batch, rng: jax.Array, config: BRACConfig
                ) -> tuple[BRACState, dict[str, jax.Array]]:
  """One update; `batches` has a leading axis of `c_iter` (batch 0 trains everything, the
  others only the dual critic)."""
  h, act_dim = config.hidden, batches.act.shape[-1]
  policy, q_net, v_net, critic = (TanhGaussianPolicy(h, act_dim), TwinQ(h), StateValue(h),
                                  ActionCritic(h))
  batch = jax.tree.map(lambda x: x[0], batches)
  pi_rng, c_rng = jax.random.split(rng)
  pi_sample = lambda params, obs, key: sample_tanh_gaussian(*policy.apply(params, obs), key)
  a_pi, logp, _ = pi_sample(state.actor.params, batch.obs, pi_rng)
  c_old = state.c.params
  div = kl_dual_estimate(critic.apply(c_old, batch.obs, a_pi), critic.apply(c_old, batch.obs,
                                                                            batch.act))

  def c_step(c_state, inputs):
    b, key = inputs
    a_key, gp_key = jax.random.split(key)
    a_p = jax.lax.stop_gradient(pi_sample(state.actor.params, b.obs, a_key)[0])
    loss, grads = jax.value_and_grad(dual_critic_loss)(c_state.params, h, b.obs, a_p, b.act,
                                                       gp_key)
    return c_state.apply_gradients(grads, ema_decay=0.0), loss
  keys = jax.random.split(c_rng, config.c_iter + 1)
  first_a = jax.lax.stop_gradient(a_pi)
  c_loss, c_grads = jax.value_and_grad(dual_critic_loss)(c_old, h, batch.obs, first_a, batch.act,
                                                         keys[0])
  c_state = state.c.apply_gradients(c_grads, ema_decay=0.0)
  rest = jax.tree.map(lambda x: x[1:], batches)
  c_state, _ = jax.lax.scan(c_step, c_state, (rest, keys[1:config.c_iter]))

  alpha = penalty_weight(state, config)
  div_sg = jax.lax.stop_gradient(div)
  target_v = v_net.apply(state.v.ema_params, batch.next_obs)
  if config.value_penalty:
    target_v = target_v - alpha * div_sg
  y = jax.lax.stop_gradient(config.reward_scale * batch.rew
                            + (1.0 - batch.done) * config.discount * target_v)

  def q_loss(params):
    q = q_net.apply(params, batch.obs, batch.act)
    return jnp.square(q - y[None]).mean(1).sum(), q
  (qf_loss, q_pred), q_grads = jax.value_and_grad(q_loss, has_aux=True)(state.q.params)
  q_state = state.q.apply_gradients(q_grads, ema_decay=0.0)

  v_target = jax.lax.stop_gradient(q_net.apply(q_state.params, batch.obs, a_pi).min(0) - logp)
  vf_loss, v_grads = jax.value_and_grad(
      lambda p: jnp.square(v_net.apply(p, batch.obs) - v_target).mean())(state.v.params)
  v_state = state.v.apply_gradients(v_grads, ema_decay=1.0 - config.tau)

  def policy_loss(params):
    mean, log_std = policy.apply(params, batch.obs)
    a, lp, _ = sample_tanh_gaussian(mean, log_std, pi_rng)  # the same draw as a_pi
    d = kl_dual_estimate(critic.apply(c_old, batch.obs, a), critic.apply(c_old, batch.obs,
                                                                         batch.act))
    q_new = q_net.apply(q_state.params, batch.obs, a).min(0)
    reg = (config.policy_mean_reg * jnp.square(mean).mean()
           + config.policy_std_reg * jnp.square(log_std).mean())
    return jnp.mean(lp - q_new + alpha * d) + reg
  pi_loss, pi_grads = jax.value_and_grad(policy_loss)(state.actor.params)
  actor = state.actor.apply_gradients(pi_grads, ema_decay=0.0)

  new_alpha = state.alpha + config.alpha_lr * (div_sg.mean() - config.target_divergence)
  metrics = dict(q_loss=qf_loss, v_loss=vf_loss, policy_loss=pi_loss, c_loss=c_loss,
                 divergence=div.mean(), alpha=alpha, q=q_pred.mean(), target=y.mean(),
                 entropy=-logp.mean())
  return state.replace(actor=actor, q=q_state, v=v_state, c=c_state, alpha=new_alpha), metrics
