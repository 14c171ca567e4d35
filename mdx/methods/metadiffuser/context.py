"""MetaDiffuser's first stage (Eq. 1): the context encoder E_phi with the reward model R_psi and
the dynamics model P_omega, trained jointly on the training tasks' data.

Writes `WORKDIR/seed_{s}/context/`: `normalizer.npz` (limits of the expert training data, shared
by the later stages of the seed), checkpoints, `metrics.jsonl` and TensorBoard files.
"""
from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import ml_collections
import optax

from mdx import data as mdata
from mdx import mesh as mmesh
from mdx import workdir as layout
from mdx.data import normalizer as nz
from mdx.envs import TaskFamily, family_from_config
from mdx.nets import ContextModel
from mdx.training import TrainState, compiled_init, load_params, reporting, train, train_stack

STAGE, GT_STAGE, CORRO_STAGE = 'context', 'gt_context', 'corro_context'
# Where z comes from (Table 3): E_phi trained with R and P ('learned', MetaDiffuser), the task's
# true parameters ('gt', Ours+GT), or CORRO's frozen contrastive encoder ('corro', Ours+CORRO).
SOURCES = ('learned', 'gt', 'corro')
STAGES = dict(zip(SOURCES, (STAGE, GT_STAGE, CORRO_STAGE)))


def _check_source(source: str) -> None:
  if source not in SOURCES:
    raise ValueError(f'context source must be one of {SOURCES}, got {source!r}')


def context_dim(config, family: TaskFamily, source: str = 'learned') -> int:
  """The width of z: E_phi's `context.context_dim`, `task_dim`, or CORRO's `latent_dim`."""
  _check_source(source)
  return {'learned': config.context.context_dim, 'gt': family.task_dim,
          'corro': config.corro.latent_dim}[source]


def build_context_model(config, family: TaskFamily, *, source: str = 'learned') -> ContextModel:
  """E_phi, R_psi, P_omega; with another `source` z is given (Ours+GT's normalized task
  parameters, `gt_contexts`; Ours+CORRO's embedding, `corro_contexts`), so R and P take its
  width and the encoder is unused."""
  c = config.context
  return ContextModel(obs_dim=family.obs_dim, act_dim=family.act_dim,
                      context_dim=context_dim(config, family, source),
                      encoder_hidden=tuple(c.encoder_hidden), model_hidden=tuple(c.model_hidden))


def gt_contexts(family: TaskFamily, params: jax.Array) -> jax.Array:
  """Ours+GT's context: task parameters `[..., task_dim]` standardized by the training tasks'
  mean and std (`TaskFamily.standardize_params`)."""
  return family.standardize_params(params)


def adam(lr: float, decay_steps: int | None = None) -> optax.GradientTransformation:
  """Adam at `lr`, cosine-decayed to lr / 20 over `decay_steps` when given."""
  if decay_steps:
    lr = optax.cosine_decay_schedule(lr, decay_steps, alpha=0.05)
  return optax.adam(lr)


def corro_contexts(config, family: TaskFamily, encoder_params, windows: jax.Array) -> jax.Array:
  """Ours+CORRO's z from history windows `[..., n, h, (s, a, r, s')]` (raw units): CORRO's
  frozen encoder on every transition, the mean, L2-renormalized (SYSTEMS.md section 5 [G])."""
  from mdx.methods.corro import model as corro_model  # pylint: disable=g-import-not-at-top
  o, a = family.obs_dim, family.act_dim
  rows = windows.at[..., o:o + a].divide(corro_model.action_scale(family))
  z = corro_model.build_encoder(config).apply(encoder_params, rows)
  z = z.reshape(z.shape[:-3] + (-1, z.shape[-1])).mean(-2)
  return z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)


@compiled_init
def init_context_state(config, family, norm, rng, *, source: str = 'learned') -> TrainState:
  model = build_context_model(config, family, source=source)
  c = config.context
  row = 2 * family.obs_dim + family.act_dim + 1
  params = model.init(rng, norm, jnp.zeros((1, c.num_context, c.history, row)),
                      jnp.zeros((1, 1, family.obs_dim)), jnp.zeros((1, 1, family.act_dim)))
  return TrainState.create(params, adam(c.learning_rate, c.num_train_steps if c.lr_decay else None))


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean of `x [B, W, ...]` over the entries whose step is valid (`mask [B, W]`)."""
  m = jnp.broadcast_to(mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim)), x.shape)
  return jnp.sum(jnp.where(m, x, 0.0)) / jnp.maximum(jnp.sum(m), 1)


def context_loss(model: ContextModel, params, norm, seg: mdata.Segments, z_fn=None):
  """Eq. 1 as Gaussian log-likelihoods with unit variance: MSE of the normalized reward and the
  normalized state delta of transitions of the same task, given z from the history windows,
  over the window's valid steps only.

  DESIGN: the predicted transitions come from a window drawn independently of the context
  histories (same task, any episode), so the encoder must carry task information rather than copy
  the rewards of the very transitions it is asked to predict."""
  if z_fn is None:
    z = model.apply(params, norm, seg.context, method=ContextModel.encode)[:, None, :]
  else:  # a given z (Ours+GT, Ours+CORRO): `z_fn(segments) -> [B, C]`
    z = z_fn(seg)[:, None, :]
  r_hat = model.apply(params, norm, seg.states, seg.actions, z,
                      method=ContextModel.reward_normalized)
  d_hat = model.apply(params, norm, seg.states, seg.actions, z,
                      method=ContextModel.delta_normalized)
  r_loss = masked_mean(jnp.square(r_hat - nz.normalize_rew(norm, seg.rewards)), seg.valid)
  d_true = nz.normalize_obs(norm, seg.next_states) - nz.normalize_obs(norm, seg.states)
  d_loss = masked_mean(jnp.square(d_hat - d_true), seg.valid)
  loss = r_loss + d_loss
  return loss, {'loss': loss, 'reward_mse': r_loss, 'dynamics_mse': d_loss}


def make_context_update(config, family, data, norm, tier_episodes, *, source='learned',
                        z_fn=None):
  """The context model's update `(state, rng) -> (state, metrics)`, not jitted (one run jits
  it, a stack vmaps it). Every sample's histories come from one data tier (`tier_episodes`:
  episodes per tier of `data`), as a test context comes from one tier. With `z_fn`
  (`segments -> z [B, C]`: Ours+GT, Ours+CORRO) R and P are conditioned on it instead of
  E_phi's z."""
  model = build_context_model(config, family, source=source)
  c = config.context
  mesh = mmesh.make_mesh(config)

  def update(state: TrainState, rng):
    seg = mdata.sample_segments(rng, data, c.batch_size, history=c.history,
                                horizon=c.target_window, num_context=c.num_context,
                                context_blocks=tier_episodes)
    seg = mmesh.constrain_batch(seg, mesh)  # data-parallel over `config.mesh_devices`
    grads, metrics = jax.grad(lambda p: context_loss(model, p, norm, seg, z_fn),
                              has_aux=True)(state.params)
    metrics = dict(metrics, grad_norm=optax.global_norm(grads))
    return state.apply_gradients(grads, ema_decay=c.ema_decay), metrics
  return update


def make_context_step(config, family, data, norm, tier_episodes, **kwargs):
  """The jitted update of one run (`make_context_update`)."""
  return jax.jit(make_context_update(config, family, data, norm, tier_episodes, **kwargs),
                 donate_argnums=0)


def load_train_tiers(workdir, family, tiers) -> dict:
  """`{tier: dataset}` of the training tasks, each named tier read once."""
  return {t: mdata.load_dataset(workdir, family, 'train', t) for t in dict.fromkeys(tiers)}


def context_training_data(config, loaded):
  """The training tasks' data of `config.context.tiers` joined along the episode axis, and the
  number of episodes of each tier in it (`loaded` from `load_train_tiers`)."""
  datasets = [loaded[t] for t in config.context.tiers]
  return mdata.concat_episodes(datasets), tuple(d.episodes_per_task for d in datasets)


def normalizer_path(workdir: str, seed: int, *, source: str = 'learned') -> str:
  _check_source(source)
  return os.path.join(layout.stage_dir(workdir, STAGES[source], seed), 'normalizer.npz')


def given_context_fn(config, family, data, workdir: str, seed: int, source: str):
  """`segments -> z [B, C]` for a given context (None for 'learned'): Ours+GT's normalized task
  parameters, or Ours+CORRO's embedding by the seed's trained CORRO encoder."""
  _check_source(source)
  if source == 'gt':
    gt_z = gt_contexts(family, jnp.asarray(data.task_params))
    return lambda seg: gt_z[seg.task_index]
  if source == 'corro':
    from mdx.methods.corro import train as corro_train  # pylint: disable=g-import-not-at-top
    params = corro_train.load_encoder(config, workdir, seed, family)
    return lambda seg: corro_contexts(config, family, params, seg.context)
  return None


def _setup(config, members, source):
  """`(update, initial states, train keys)` of the context runs of `members`
  (`[(workdir, seed)]`, one config); writes each member's normalizer. A given context that
  depends on the seed (Ours+CORRO) trains one member at a time."""
  if source == 'corro' and len(members) > 1:
    raise ValueError('the corro_context stage trains one seed at a time (each seed has its own '
                     'CORRO encoder)')
  family = family_from_config(config)
  loaded = load_train_tiers(members[0][0], family, ('expert', *config.context.tiers))
  norm = mdata.init_normalizer(loaded['expert'])
  data, tier_episodes = context_training_data(config, loaded)
  states, keys = [], []
  for workdir, seed in members:
    nz.save_normalizer(normalizer_path(workdir, seed, source=source), norm)
    init_rng, train_rng = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 1))
    states.append(init_context_state(config, family, norm, init_rng, source=source))
    keys.append(train_rng)
  z_fn = given_context_fn(config, family, data, *members[0], source)
  update = make_context_update(config, family, jax.device_put(data), norm, tier_episodes,
                               source=source, z_fn=z_fn)
  return update, states, keys


def train_context(config: ml_collections.ConfigDict, workdir: str, seed: int, *,
                  source: str = 'learned') -> TrainState:
  """Trains E_phi, R_psi, P_omega of training seed `seed` (tiers `config.context.tiers`); with
  another `source`, R and P on the given z (stage `gt_context`, Ours+GT; `corro_context`,
  Ours+CORRO)."""
  update, (state,), (train_rng,) = _setup(config, [(workdir, seed)], source)
  name = STAGES[source]
  return train(layout.stage_dir(workdir, name, seed), state,
               jax.jit(update, donate_argnums=0), train_rng,
               num_steps=config.context.num_train_steps, **reporting(config),
               name=f'{name}/seed_{seed}',
               hparams=config.context.to_dict())


def train_context_stack(members, *, source: str = 'learned') -> TrainState:
  """`train_context(config, workdir, seed)` of every `(config, workdir, seed)` of `members` as one
  vmapped program (`training.train_stack`; one config); member `i` writes what its own run
  writes."""
  config = members[0][0]
  if any(c is not config and c.to_dict() != config.to_dict() for c, _, _ in members):
    raise ValueError('the context model\'s stack members must share one config (only their '
                     'seeds and workdirs differ)')
  update, states, keys = _setup(config, [(w, s) for _, w, s in members], source)
  name = STAGES[source]
  return train_stack([layout.stage_dir(w, name, s) for _, w, s in members], states,
                     jax.jit(jax.vmap(update), donate_argnums=0), keys,
                     num_steps=config.context.num_train_steps, **reporting(config),
                     names=[f'{name}/seed_{s}' for _, _, s in members],
                     hparams=[config.context.to_dict()] * len(members))


def load_context(config, workdir: str, seed: int, family=None, *, source: str = 'learned'):
  """`(context_model, params (EMA), normalizer)` of a trained context stage."""
  family = family or family_from_config(config)
  norm = nz.load_normalizer(normalizer_path(workdir, seed, source=source))
  template = init_context_state(config, family, norm, jax.random.PRNGKey(0), source=source)
  params = load_params(layout.checkpoint_dir(workdir, STAGES[source], seed), template)
  return build_context_model(config, family, source=source), params, norm
