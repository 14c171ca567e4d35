"""CVAE-Planner's policy: MetaDiffuser's receding-horizon loop with plans decoded by the CVAE.

`init` infers z from the warm-start data exactly as MetaDiffuser does. `act` draws
`planner.num_candidates` latents u ~ N(0, I) per state, decodes each into a plan conditioned on
`[z, s_t]`, imposes s_t as its first state, scores every plan by J - lambda zeta with
MetaDiffuser's reward and dynamics models (the paper: the CVAE "cannot fully utilize the
dual-guide gradient, being end-to-end", so selection is all the guide it gets) and executes the
best plan's first action.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from mdx.data import normalizer as nz
from mdx.evaluation.policy import Policy
from mdx.methods.cvae_planner import train as cvae_train
from mdx.methods.metadiffuser import context as ctx_stage
from mdx.methods.metadiffuser.policy import context_init, make_guide_fn


def cvae_policy(config, family, context_model, cvae, params) -> Policy:
  """`params = {'context', 'cvae', 'norm'}`."""
  p = config.planner
  n, h = int(p.num_candidates), int(config.diffusion.horizon)
  d = family.obs_dim + family.act_dim
  guide_fn = make_guide_fn(context_model)
  latent = int(config.cvae.latent_dim)

  init = context_init(config, context_model, 'CVAE-Planner')

  def act(params, z, obs, rng):
    b = obs.shape[0]
    s0 = jnp.repeat(nz.normalize_obs(params['norm'], obs)[:, None], n, axis=1)  # [B, N, obs]
    zn = jnp.repeat(z[:, None], n, axis=1)
    u = jax.random.normal(rng, (b, n, latent))
    x = cvae.apply(params['cvae'], u, cvae_train.condition(zn, s0), method=cvae.decode)
    x = x.reshape(b, n, h, d).at[:, :, 0, :family.obs_dim].set(s0)
    states, actions = nz.unnormalize_traj(params['norm'], x.reshape(b * n, h, d))
    j, zeta = guide_fn(params, states, actions, zn.reshape(b * n, -1))
    best = jnp.argmax((j - p.dynamics_weight * zeta).reshape(b, n), axis=1)
    pick = lambda a: jnp.take_along_axis(
        a.reshape((b, n) + a.shape[1:]), best.reshape((b,) + (1,) * (a.ndim)), 1)[:, 0]
    plan_states, plan_actions = pick(states), pick(actions)
    return plan_actions[:, 0], z, {'plan_states': plan_states, 'plan_actions': plan_actions}
  return Policy(params=params, init_fn=init, act_fn=act)


def make_policy(config, workdir, seed, family) -> Policy:
  context_model, context_params, norm = ctx_stage.load_context(config, workdir, seed, family)
  cvae, cvae_params = cvae_train.load_cvae(config, workdir, seed, family)
  return cvae_policy(config, family, context_model, cvae,
                     {'context': context_params, 'cvae': cvae_params, 'norm': norm})
