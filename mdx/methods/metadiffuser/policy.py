"""MetaDiffuser's and UDiffuser's policies: receding-horizon planning with `mdx.planning.plan`.

MetaDiffuser: `init` infers each environment's context z from `config.context.num_context`
windows of its warm-start data (`mdx.data.sample_context`, windows of one tier, as in training);
`act` plans from the current state with CFG, the dual guide and the best of N candidates, and
executes the plan's first action. The state carried between steps is z.
UDiffuser: no context anywhere (Table 5): an unconditional denoiser, no guide (R and P need z),
one plan per state.
`info` holds the kept plan (`plan_states`, `plan_actions`), its `value` J and `discrepancy` zeta.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from mdx import data as mdata
from mdx.evaluation.policy import Policy
from mdx.methods.metadiffuser import context as ctx_stage
from mdx.methods.metadiffuser import denoiser as den_stage
from mdx.nets import ContextModel
from mdx.planning import PlanConfig, plan, trajectory_objective


def plan_config(config, *, unconditional: bool = False, **overrides) -> PlanConfig:
  """The planner's knobs from `config.planner` and `config.diffusion` (`overrides` replace any)."""
  p, d = config.planner, config.diffusion
  kw = dict(horizon=d.horizon, num_diffusion_steps=d.num_diffusion_steps, sampler=p.sampler,
            num_sample_steps=p.num_sample_steps or None, eta=p.eta, noise_scale=p.noise_scale,
            predict_epsilon=d.predict_epsilon, clip_denoised=p.clip_denoised or None)
  if not unconditional:
    kw.update(num_candidates=p.num_candidates, cfg_weight=p.cfg_weight,
              guide_scale=p.guide_scale, dynamics_weight=p.dynamics_weight,
              t_stopgrad=p.t_stopgrad, guide_form=p.guide_form, guide_units=p.guide_units)
  kw.update(overrides)
  return PlanConfig(**kw)


def make_guide_fn(context_model: ContextModel):
  """`guide_fn(params, states, actions, z) -> (J, zeta)` from the context model in
  `params['context']`, with the normalizer `params['norm']`."""
  def guide_fn(params, states, actions, z):
    apply = lambda method: (lambda s, a, zz: context_model.apply(
        params['context'], params['norm'], s, a, zz, method=method))
    return trajectory_objective(apply(ContextModel.reward), apply(ContextModel.next_state))(
        states, actions, z)
  return guide_fn


def make_denoise_fn(net, *, unconditional: bool = False):
  """`denoise_fn(params, x, k, context, mask)` of the U-Net in `params['denoiser']`."""
  if unconditional:
    return lambda params, x, k, c, m: net.apply(params['denoiser'], x, k, c, jnp.zeros_like(m))
  return lambda params, x, k, c, m: net.apply(params['denoiser'], x, k, c, m)


def infer_contexts(encode_fn, warm: mdata.Trajectories, rng: jax.Array, *, history: int,
                   num_context: int) -> jax.Array:
  """One context per task of `warm` (`[N, E, T, ...]`) from `num_context` windows of its data.

  Args:
    encode_fn: `[N, n, h, row] -> [N, C]`, the trained encoder (mean over the n windows).
    warm: warm-start data, one task per row.
    rng: PRNG key.
    history: h.
    num_context: windows per task.

  Returns:
    `[N, C]`.
  """
  n = warm.num_tasks
  windows = jax.vmap(lambda i, r: mdata.sample_context(r, warm, i, history=history,
                                                       num_context=num_context))(
      jnp.arange(n), jax.random.split(rng, n))
  return encode_fn(windows)


def context_init(config, context_model: ContextModel, method: str):
  """The `Policy.init` of every method that infers z from the task's warm-start data with the
  trained encoder in `params['context']` (MetaDiffuser, CVAE-Planner): `infer_contexts`."""
  c = config.context

  def init(params, rng, tasks, warm):
    del tasks  # the task is known only through its warm-start data
    if warm is None:
      raise ValueError(f'{method} infers the task from warm-start data: pass warm_start')
    encode = lambda w: context_model.apply(params['context'], params['norm'], w,
                                           method=ContextModel.encode)
    return infer_contexts(encode, warm, rng, history=c.history, num_context=c.num_context)
  return init


# Planner knobs that change no shapes: an evaluation sweep (`config.eval.sweep`) runs several
# values as one more vmapped axis, reading them from `params['knobs']`.
SWEEPABLE = ('dynamics_weight', 'guide_scale', 'cfg_weight', 'noise_scale')


def planner_policy(config, context_model, net, params, pconfig: PlanConfig) -> Policy:
  """MetaDiffuser's `Policy` from its networks and `params = {'context', 'denoiser', 'norm'}`
  (and `'knobs'`: `{field: value}` of `SWEEPABLE` fields that replace `pconfig`'s, traced)."""
  denoise_fn, guide_fn = make_denoise_fn(net), make_guide_fn(context_model)
  init = context_init(config, context_model, 'MetaDiffuser')

  def act(params, z, obs, rng):
    knobs = params.get('knobs', {})
    out = plan(params, rng, obs, z, denoise_fn, guide_fn, normalizer=params['norm'],
               config=dataclasses.replace(pconfig, **knobs) if knobs else pconfig)
    return out.action, z, {'plan_states': out.states, 'plan_actions': out.actions,
                           'value': out.value, 'discrepancy': out.discrepancy}
  return Policy(params=params, init_fn=init, act_fn=act)


def make_policy(config, workdir, seed, family, *, traced: tuple[str, ...] = (),
                **plan_overrides) -> Policy:
  """MetaDiffuser of training seed `seed` in `workdir`, as the evaluation runs it; the planner
  fields `traced` (of `SWEEPABLE`) are read from `params['knobs']` (an evaluation sweep)."""
  context_model, context_params, norm = ctx_stage.load_context(config, workdir, seed, family)
  net, den_params = den_stage.load_denoiser(config, workdir, seed, family)
  params = {'context': context_params, 'denoiser': den_params, 'norm': norm}
  pconfig = plan_config(config, **plan_overrides)
  if traced:
    params['knobs'] = {f: jnp.asarray(getattr(pconfig, f), jnp.float32) for f in traced}
  return planner_policy(config, context_model, net, params, pconfig)


def _given_context_planner(config, workdir, seed, family, source, traced) -> Policy:
  context_model, context_params, norm = ctx_stage.load_context(config, workdir, seed, family,
                                                               source=source)
  net, den_params = den_stage.load_denoiser(config, workdir, seed, family, source=source)
  params = {'context': context_params, 'denoiser': den_params, 'norm': norm}
  pconfig = plan_config(config)
  if traced:
    params['knobs'] = {f: jnp.asarray(getattr(pconfig, f), jnp.float32) for f in traced}
  return planner_policy(config, context_model, net, params, pconfig)


def make_gt_policy(config, workdir, seed, family, *, traced: tuple[str, ...] = ()) -> Policy:
  """Ours+GT (Table 3) of training seed `seed`: MetaDiffuser's planner whose context, for the
  denoiser and for the reward and dynamics models of the dual guide, is the task's true parameter
  vector, normalized (`context.gt_contexts`). It reads no warm-start data."""
  planner = _given_context_planner(config, workdir, seed, family, 'gt', traced)
  return planner.replace(
      init_fn=lambda p, rng, tasks, warm: ctx_stage.gt_contexts(family, tasks.params))


def make_corro_policy(config, workdir, seed, family, *, traced: tuple[str, ...] = ()) -> Policy:
  """Ours+CORRO (Table 3) of training seed `seed`: MetaDiffuser's planner whose z, for the
  denoiser and the dual guide's models, is CORRO's frozen embedding of `context.num_context`
  history windows of the task's warm-start data (the windows MetaDiffuser's encoder reads)."""
  from mdx.methods.corro import train as corro_train  # pylint: disable=g-import-not-at-top
  planner = _given_context_planner(config, workdir, seed, family, 'corro', traced)
  planner = planner.replace(params={**planner.params, 'corro': corro_train.load_encoder(
      config, workdir, seed, family)})
  c = config.context

  def init(params, rng, tasks, warm):
    del tasks
    if warm is None:
      raise ValueError('Ours+CORRO infers the task from warm-start data: pass warm_start')
    encode = lambda w: ctx_stage.corro_contexts(config, family, params['corro'], w)
    return infer_contexts(encode, warm, rng, history=c.history, num_context=c.num_context)
  return planner.replace(init_fn=init)


def make_udiffuser_policy(config, workdir, seed, family) -> Policy:
  """UDiffuser of training seed `seed`: unconditional samples, no guide, one plan per state."""
  net, den_params = den_stage.load_denoiser(config, workdir, seed, family, unconditional=True)
  params = {'denoiser': den_params, 'norm': den_stage.load_udiffuser_normalizer(workdir, seed)}
  pconfig = plan_config(config, unconditional=True)
  denoise_fn = make_denoise_fn(net, unconditional=True)
  dim = config.context.context_dim

  def init(params, rng, tasks, warm):
    del params, rng, warm
    return jnp.zeros((tasks.task_id.shape[0], dim))  # the null context

  def act(params, z, obs, rng):
    out = plan(params, rng, obs, z, denoise_fn, None, normalizer=params['norm'], config=pconfig)
    return out.action, z, {'plan_states': out.states, 'plan_actions': out.actions}
  return Policy(params=params, init_fn=init, act_fn=act)
