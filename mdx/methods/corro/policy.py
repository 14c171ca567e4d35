"""CORRO acting in-graph: z from one warm-start episode of the task, then the deterministic
SAC policy on `[s, z]`.

At `init` each environment draws one episode of its task's warm-start data (the tier under
evaluation), as the reference samples one context trajectory per test task from its offline
data (`offline_learner.evaluate`); z is the trained aggregator over the frozen encoder's
embeddings of the episode's valid transitions (with `corro.context = 'task'`, the task's
standardized true parameters instead, and no warm-start data). The action is `tanh(mean)`,
scaled to the family's action box.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from mdx.evaluation.policy import Policy
from mdx.methods.corro import model
from mdx.rl.networks import TanhGaussianPolicy


def corro_policy(config, family, params) -> Policy:
  encoder, aggregator = model.build_encoder(config), model.AttentionAggregator()
  actor = TanhGaussianPolicy(tuple(config.corro.hidden), family.act_dim)
  scale = model.action_scale(family)

  def init(p, rng, tasks, warm):
    if config.corro.context == 'task':
      return family.standardize_params(tasks.params)
    if warm is None:
      raise ValueError('CORRO needs warm-start data to infer its task embedding')
    b, e = warm.rewards.shape[:2]
    episodes = jax.random.randint(rng, (b,), 0, e)
    take = lambda x: x[jnp.arange(b), episodes]
    rows = model.rows(take(warm.observations), take(warm.actions) / scale, take(warm.rewards),
                      take(warm.next_observations))
    return aggregator.apply(p['aggregator'], encoder.apply(p['encoder'], rows),
                            take(warm.valid))

  def act(p, z, obs, rng):
    del rng
    mean, _ = actor.apply(p['actor'], jnp.concatenate([obs, z], -1))
    return scale * jnp.tanh(mean), z, {}

  return Policy(params=params, init_fn=init, act_fn=act)
