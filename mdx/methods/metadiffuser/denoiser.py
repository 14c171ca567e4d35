"""MetaDiffuser's second stage (Eq. 5): the context-conditioned denoiser, trained on the training
tasks' windows, each labelled with z from the trained context encoder, with context dropout beta.
`unconditional=True` trains UDiffuser's denoiser (beta = 1, no context MLP, Table 5).

Writes `WORKDIR/seed_{s}/diffusion/` (or `udiffuser/`): checkpoints, `metrics.jsonl`, TensorBoard
files; UDiffuser also writes its own `normalizer.npz` (it has no context stage).
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import optax

from mdx import data as mdata
from mdx import mesh as mmesh
from mdx import provenance
from mdx import workdir as layout
from mdx.data import normalizer as nz
from mdx.diffusion import denoising_loss, loss_weights, make_schedule
from mdx.envs import TaskFamily, family_from_config
from mdx.methods.metadiffuser import context as ctx_stage
from mdx.nets import ContextModel, TemporalUNet
from mdx.training import (TrainState, compiled_init, load_params, reporting, stack_trees, train,
                          train_stack)

STAGE, UNCONDITIONAL_STAGE, GT_STAGE, CORRO_STAGE = ('diffusion', 'udiffuser', 'gt_diffusion',
                                                     'corro_diffusion')
STAGES = dict(zip(ctx_stage.SOURCES, (STAGE, GT_STAGE, CORRO_STAGE)))


def stage_name(unconditional: bool, source: str = 'learned') -> str:
  ctx_stage._check_source(source)  # pylint: disable=protected-access
  return UNCONDITIONAL_STAGE if unconditional else STAGES[source]


def build_denoiser(config, family: TaskFamily, *, unconditional: bool = False,
                   dtype='float32') -> TemporalUNet:
  """The U-Net of `config.diffusion`; `dtype` its computation dtype (training: float32)."""
  d = config.diffusion
  return TemporalUNet(transition_dim=family.obs_dim + family.act_dim, dim=d.dim,
                      dim_mults=tuple(d.dim_mults), embed_dim=d.embed_dim,
                      embed_hidden=d.embed_hidden, use_context=not unconditional,
                      dtype=jnp.dtype(dtype))


@compiled_init
def init_denoiser_state(config, family, rng, *, unconditional=False,
                        source='learned') -> TrainState:
  """With another `source` the context is Ours+GT's `task_dim` normalized task parameters or
  Ours+CORRO's embedding, through the same context embedding MLP."""
  net = build_denoiser(config, family, unconditional=unconditional)
  d = config.diffusion
  dim = ctx_stage.context_dim(config, family, source)
  params = net.init(rng, jnp.zeros((1, d.horizon, family.obs_dim + family.act_dim)),
                    jnp.zeros((1,), jnp.int32), jnp.zeros((1, dim)), jnp.ones((1,), bool))
  return TrainState.create(params, ctx_stage.adam(d.learning_rate))


def make_diffusion_update(config, family, data, label, *, unconditional=False,
                          context_data=None, context_tier_episodes=None):
  """The denoiser update `(state, rng, member) -> (state, metrics)`, not jitted, so that one
  run jits it and a stack (`train_denoiser_stack`) vmaps it over members. `member` holds what
  differs between members of a stack: `{'norm': the seed's normalizer, 'label': the seed's
  context-model params (or None), 'context_dropout': beta}`. `label(member, segments) -> z [B, C]`
  labels each window with its task's context (the encoder on `segments.context`, or Ours+GT's
  task parameters; unused when `unconditional`); the histories come from one tier of
  `context_data` (`context_tier_episodes` episodes per tier), as at test."""
  net = build_denoiser(config, family, unconditional=unconditional)
  d, c = config.diffusion, config.context
  sched = make_schedule(d.num_diffusion_steps)
  weights = loss_weights(d.horizon, family.obs_dim, family.act_dim, d.action_weight)
  mesh = mmesh.make_mesh(config)

  def update(state: TrainState, rng, member):
    seg_rng, loss_rng = jax.random.split(rng)  # two named keys, each used once
    seg = mdata.sample_segments(seg_rng, data, d.batch_size, history=c.history,
                                horizon=d.horizon, num_context=c.num_context,
                                context_data=context_data, context_blocks=context_tier_episodes)
    seg = mmesh.constrain_batch(seg, mesh)  # data-parallel over `config.mesh_devices`
    z = (jnp.zeros((d.batch_size, c.context_dim)) if unconditional
         else jax.lax.stop_gradient(label(member, seg)))
    x0 = nz.normalize_traj(member['norm'], seg.states, seg.actions)
    loss_fn = lambda p: denoising_loss(net.apply, p, sched, loss_rng, x0, z,
                                       obs_dim=family.obs_dim,
                                       context_dropout=member['context_dropout'],
                                       predict_epsilon=d.predict_epsilon, weights=weights,
                                       valid=seg.valid)
    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params)
    metrics = dict(metrics, grad_norm=optax.global_norm(grads))
    return state.apply_gradients(grads, ema_decay=d.ema_decay, ema_start=d.ema_start), metrics
  return update


def make_diffusion_step(config, family, data, label, member, *, unconditional=False,
                        context_data=None, context_tier_episodes=None):
  """The jitted denoiser update of one run: `make_diffusion_update` with its `member` fixed."""
  update = make_diffusion_update(config, family, data, label, unconditional=unconditional,
                                 context_data=context_data,
                                 context_tier_episodes=context_tier_episodes)

  # `member` is an argument, not a constant of the program: every seed and setting of one
  # config compiles the same program (a hit in the persistent compilation cache).
  # On a mesh it is replicated like the state (restored context parameters sit on one device).
  jitted = jax.jit(update, donate_argnums=0)
  member = mmesh.replicate(member, mmesh.make_mesh(config))
  return lambda state, rng: jitted(state, rng, member)


def _load_data(config, workdir, family):
  """`(windows' data of config.diffusion.tiers, context-history data, episodes per tier)`."""
  tiers = tuple(config.diffusion.tiers)
  loaded = ctx_stage.load_train_tiers(workdir, family, ('expert', *tiers, *config.context.tiers))
  data = jax.device_put(mdata.concat_episodes([loaded[t] for t in tiers]))
  context_data, tier_episodes = ctx_stage.context_training_data(config, loaded)
  return data, loaded, jax.device_put(context_data), tier_episodes


def _member(config, workdir, seed, family, loaded, *, unconditional, source):
  """What training seed `seed` brings to a run: `(initial state, train key, member)`."""
  if unconditional:
    norm = mdata.init_normalizer(loaded['expert'])  # the context stage's normalizer, recomputed
    nz.save_normalizer(os.path.join(layout.stage_dir(workdir, UNCONDITIONAL_STAGE, seed),
                                    'normalizer.npz'), norm)
    label_params = None
  else:
    _, label_params, norm = ctx_stage.load_context(config, workdir, seed, family, source=source)
    if source == 'gt':
      label_params = None
    elif source == 'corro':  # the seed's CORRO encoder labels its windows
      from mdx.methods.corro import train as corro_train  # pylint: disable=g-import-not-at-top
      label_params = corro_train.load_encoder(config, workdir, seed, family)
  rng = jax.random.fold_in(jax.random.PRNGKey(seed), 3 if unconditional else 2)
  init_rng, train_rng = jax.random.split(rng)
  state = init_denoiser_state(config, family, init_rng, unconditional=unconditional,
                              source=source)
  member = {'norm': norm, 'label': label_params,
            'context_dropout': jnp.float32(1.0 if unconditional
                                           else config.diffusion.context_dropout)}
  return state, train_rng, member


def _label_fn(config, family, data, *, unconditional, source):
  """`label(member, segments) -> z`: E_phi of the member's context params, Ours+GT's
  normalized task parameters, or Ours+CORRO's embedding by the member's CORRO encoder (None
  when `unconditional`)."""
  if unconditional:
    return None
  if source == 'gt':
    gt_z = ctx_stage.gt_contexts(family, jnp.asarray(data.task_params))
    return lambda member, seg: gt_z[seg.task_index]
  if source == 'corro':
    return lambda member, seg: ctx_stage.corro_contexts(config, family, member['label'],
                                                        seg.context)
  model = ctx_stage.build_context_model(config, family)
  return lambda member, seg: model.apply(member['label'], member['norm'], seg.context,
                                         method=ContextModel.encode)


def train_denoiser(config: ml_collections.ConfigDict, workdir: str, seed: int, *,
                   unconditional: bool = False, source: str = 'learned') -> TrainState:
  """Trains the denoiser of training seed `seed` on the windows of `config.diffusion.tiers`.

  DESIGN: z is computed from histories drawn from the task's data in `config.context.tiers`, all
  windows of one z from one tier, so the denoiser is trained on the contexts that warm-start data
  of any quality produces at test time (paper, Section 5.4). With `source='gt'` (Ours+GT) z is
  the window's task parameters, normalized (`context.gt_contexts`); with 'corro' (Ours+CORRO)
  CORRO's embedding of the same histories (`context.corro_contexts`)."""
  family = family_from_config(config)
  data, loaded, context_data, tier_episodes = _load_data(config, workdir, family)
  state, train_rng, member = _member(config, workdir, seed, family, loaded,
                                     unconditional=unconditional, source=source)
  step = make_diffusion_step(config, family, data,
                             _label_fn(config, family, data, unconditional=unconditional,
                                       source=source),
                             member, unconditional=unconditional, context_data=context_data,
                             context_tier_episodes=tier_episodes)
  name = stage_name(unconditional, source)
  return train(layout.stage_dir(workdir, name, seed), state, step, train_rng,
               num_steps=_num_steps(config, unconditional), **reporting(config),
               name=f'{name}/seed_{seed}',
               hparams=config.diffusion.to_dict())


def _num_steps(config, unconditional: bool) -> int:
  return (config.udiffuser.num_train_steps if unconditional
          else config.diffusion.num_train_steps)


# The config fields in which the members of one stack may differ (besides the seed): they change
# no shapes, and the update reads them from its `member` entry (Table 6's beta).
MEMBER_FIELDS = ('diffusion.context_dropout',)


def train_denoiser_stack(members, *, unconditional: bool = False,
                         source: str = 'learned') -> TrainState:
  """`train_denoiser(config, workdir, seed)` of every `(config, workdir, seed)` of `members` as
  one vmapped program (`training.train_stack`): member `i` writes the folder, checkpoints and
  metrics of its own run, with that run's initial parameters, keys and context model. The
  configs may differ in `MEMBER_FIELDS` only (a training sweep's variants, each
  in its own workdir over the same datasets, `mdx.workdir.make_variant`)."""
  config = members[0][0]
  base = provenance.flatten(config)
  for other, workdir, seed in members[1:]:
    diffs = sorted(k for k, v in provenance.flatten(other).items()
                   if base.get(k) != v and k not in MEMBER_FIELDS)
    if diffs:
      raise ValueError(f'a stack\'s members may differ only in {list(MEMBER_FIELDS)}; the '
                       f'member {workdir} (seed {seed}) also differs in {diffs}')
  family = family_from_config(config)
  data, loaded, context_data, tier_episodes = _load_data(config, members[0][1], family)
  runs = [_member(c, w, s, family, loaded, unconditional=unconditional, source=source)
          for c, w, s in members]
  stacked = mmesh.replicate(stack_trees([m for _, _, m in runs]), mmesh.make_mesh(config))
  update = make_diffusion_update(config, family, data,
                                 _label_fn(config, family, data, unconditional=unconditional,
                                           source=source), unconditional=unconditional,
                                 context_data=context_data, context_tier_episodes=tier_episodes)
  batched = jax.jit(jax.vmap(update), donate_argnums=0)
  name = stage_name(unconditional, source)
  tags = [os.path.relpath(w, members[0][1]) for _, w, _ in members]
  return train_stack([layout.stage_dir(w, name, s) for _, w, s in members],
                     [st for st, _, _ in runs], lambda st, keys: batched(st, keys, stacked),
                     [r for _, r, _ in runs], num_steps=_num_steps(config, unconditional),
                     **reporting(config),
                     names=[f'{name}/seed_{s}' + ('' if t == '.' else f' ({t})')
                            for t, (_, _, s) in zip(tags, members)],
                     hparams=[c.diffusion.to_dict() for c, _, _ in members])


def load_denoiser(config, workdir: str, seed: int, family=None, *, unconditional=False,
                  source='learned'):
  """`(net, params (EMA))` of a trained denoiser stage; the net computes in
  `config.planner.compute_dtype` (the parameters stay float32)."""
  family = family or family_from_config(config)
  template = init_denoiser_state(config, family, jax.random.PRNGKey(0),
                                 unconditional=unconditional, source=source)
  params = load_params(layout.checkpoint_dir(workdir, stage_name(unconditional, source), seed),
                       template)
  return build_denoiser(config, family, unconditional=unconditional,
                        dtype=config.planner.compute_dtype), params


def load_udiffuser_normalizer(workdir: str, seed: int) -> nz.Normalizer:
  return nz.load_normalizer(os.path.join(layout.stage_dir(workdir, UNCONDITIONAL_STAGE, seed),
                                         'normalizer.npz'))
