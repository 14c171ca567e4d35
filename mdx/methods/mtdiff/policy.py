"""MTDiff-P acting in-graph: its prompt and its last L states are the `Policy` state.

At `init` each environment draws one prompt (J steps of one episode) from its task's warm-start
data of the tier under evaluation, and its history starts at zeros. At every step the observation
enters the history, `mdx.planning.plan` samples an action sequence of `plan_horizon` steps
(`plan_states=False`: actions only, conditioned on the prompt, the history and the target return,
with CFG on the return in one batched call) and the first action is executed.

DESIGN: one prompt per episode, as Prompt-DT's evaluation; the code draws a new prompt at every
call of the network, at every denoising step (an implicit ensemble over the prompt data, and
evaluations that differ between identical seeds).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from mdx.data import normalizer as nz
from mdx.evaluation.policy import Policy
from mdx.methods.mtdiff import data as md_data
from mdx.methods.mtdiff.train import build_model
from mdx.nets.prompt_denoiser import PromptCondition
from mdx.planning import PlanConfig, plan


@struct.dataclass
class MTDiffState:
  prompt: jax.Array  # [B, J, obs + act] normalized
  history: jax.Array  # [B, L, obs] normalized; the newest last, zeros before the first step


def plan_config(config, **overrides) -> PlanConfig:
  """The sampler's knobs from `config.mtdiff` (`overrides` replace any)."""
  m = config.mtdiff
  kw = dict(horizon=m.plan_horizon, num_diffusion_steps=m.num_diffusion_steps,
            cfg_weight=m.cfg_weight, noise_scale=m.noise_scale, predict_epsilon=True,
            clip_denoised=m.clip_denoised or None, schedule=m.schedule, plan_states=False)
  kw.update(overrides)
  return PlanConfig(**kw)


def push(history: jax.Array, state: jax.Array) -> jax.Array:
  """`history [B, L, S]` shifted left by one step, with `state [B, S]` last."""
  return jnp.concatenate([history[:, 1:], state[:, None]], axis=1)


# The fields of `config.mtdiff` only the sampler reads: training does not (a change to them leaves
# the trained stage current).
SAMPLER_FIELDS = ('plan_horizon', 'cfg_weight', 'noise_scale', 'clip_denoised')
# Knobs that change no shapes, for an evaluation sweep: the CFG weight (`config.mtdiff.cfg_weight`),
# read from `params['knobs']` when traced.
SWEEPABLE = ('cfg_weight',)


def mtdiff_policy(config, family, params) -> Policy:
  """`params = {'net': ..., 'scales': data.Scales}` (and `'knobs'`, traced) as a `Policy` that
  reads warm-start data."""
  model, m = build_model(config, family), config.mtdiff
  knobs = lambda p, name: p.get('knobs', {}).get(name, m[name])

  def init(p, rng, tasks, warm):
    if warm is None:
      raise ValueError('MTDiff-P needs warm-start data for its prompts')
    b = tasks.task_id.shape[0]
    prompt = md_data.sample_prompts(rng, warm, jnp.arange(b), int(m.prompt_len),
                                    p['scales'].norm)
    return MTDiffState(prompt=prompt, history=jnp.zeros((b, int(m.history), family.obs_dim)))

  def act(p, state, obs, rng):
    scales = p['scales']
    history = push(state.history, nz.normalize_obs(scales.norm, obs))
    cond = PromptCondition(prompt=state.prompt, history=history,
                           returns=jnp.full(obs.shape[:1], scales.target, jnp.float32))
    denoise = lambda net, x, k, c, mask: model.apply(net, x, k, c, mask)
    out = plan(p['net'], rng, obs, cond, denoise, None, normalizer=scales.norm,
               config=plan_config(config, cfg_weight=knobs(p, 'cfg_weight')))
    return out.action, state.replace(history=history), {'plan_actions': out.actions}

  return Policy(params=params, init_fn=init, act_fn=act)
