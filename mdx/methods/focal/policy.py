"""FOCAL acting in-graph: z from the task's warm-start data, then the deterministic BRAC policy.

At `init` each environment's z is the encoder's mean embedding over every valid transition of
its task's warm-start data (the tier under evaluation). DESIGN: the reference infers z from
online exploration episodes in the test task (`num_exp_traj_eval`); the paper's protocol gives
every method the same offline warm-start data instead. The action is `tanh(mean)` of the policy
on `[s, z]`, scaled to the family's action box (the reference's deterministic evaluation).
With `focal.context = 'task'`, z is the task's standardized true parameters (no warm-start data).
"""
from __future__ import annotations

import jax.numpy as jnp

from mdx.evaluation.policy import Policy
from mdx.methods.focal import model
from mdx.rl.networks import TanhGaussianPolicy


def focal_policy(config, family, params) -> Policy:
  """`params = {'encoder': ..., 'actor': ...}` as a `Policy` that reads warm-start data."""
  encoder = model.build_encoder(config)
  actor = TanhGaussianPolicy(tuple(config.focal.hidden), family.act_dim)
  scale = model.action_scale(family)

  def init(p, rng, tasks, warm):
    del rng
    if config.focal.context == 'task':
      return family.standardize_params(tasks.params)
    if warm is None:
      raise ValueError('FOCAL needs warm-start data to infer its task embedding')
    rows = model.context_rows(config, warm.observations, warm.actions / scale, warm.rewards,
                              warm.next_observations)  # [B, E, T, row]
    b = rows.shape[0]
    return encoder.apply(p['encoder'], rows.reshape(b, -1, rows.shape[-1]),
                         warm.valid.reshape(b, -1))

  def act(p, z, obs, rng):
    del rng
    mean, _ = actor.apply(p['actor'], jnp.concatenate([obs, z], -1))
    return scale * jnp.tanh(mean), z, {}

  return Policy(params=params, init_fn=init, act_fn=act)
