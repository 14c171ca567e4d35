"""The two training stages of MetaDiffuser (Algorithm 1): the context model, then the denoiser.

Workdir layout (shared with `experiments/pipeline.py`):
  data/{split}_{tier}/            datasets (see `mdx.data.trajectories`)
  context/                        normalizer.npz, checkpoints/, metrics.jsonl, TensorBoard files
  diffusion/ and udiffuser/       checkpoints/, metrics.jsonl, TensorBoard files
"""
from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import ml_collections
import optax

from mdx import data as mdata
from mdx.data import normalizer as nz
from mdx.diffusion import denoising_loss, loss_weights, make_schedule
from mdx.envs import TaskFamily, make_family
from mdx.nets import ContextModel, TemporalUNet
from mdx.training.loop import load_params, train
from mdx.training.state import TrainState


def family_from_config(config: ml_collections.ConfigDict) -> TaskFamily:
  return make_family(config.family, **dict(config.get('env', {})))


def dataset_dir(workdir: str, split: str, tier: str) -> str:
  return os.path.join(workdir, 'data', f'{split}_{tier}')


def load_dataset(workdir: str, family: TaskFamily, split: str, tier: str):
  return mdata.load(dataset_dir(workdir, split, tier), obs_dim=family.obs_dim,
                    act_dim=family.act_dim, task_dim=family.task_dim, family=family.name)


def concat_episodes(datasets):
  """Joins datasets of the same tasks along the episode axis."""
  first = datasets[0]
  for d in datasets[1:]:
    if not bool(jnp.all(d.task_ids == first.task_ids)):
      raise ValueError('datasets to join must hold the same tasks in the same order')
  cat = lambda *xs: jnp.concatenate(xs, axis=1)
  fields = {k: cat(*[getattr(d, k) for d in datasets])
            for k in ('observations', 'actions', 'rewards', 'next_observations', 'terminals',
                      'timeouts', 'valid')}
  return first.replace(**fields)


def build_context_model(config, family: TaskFamily) -> ContextModel:
  c = config.context
  return ContextModel(obs_dim=family.obs_dim, act_dim=family.act_dim,
                      context_dim=c.context_dim, encoder_hidden=tuple(c.encoder_hidden),
                      model_hidden=tuple(c.model_hidden), pooling=c.get('pooling', 'segment'))


def build_denoiser(config, family: TaskFamily, *, unconditional: bool = False) -> TemporalUNet:
  d = config.diffusion
  return TemporalUNet(transition_dim=family.obs_dim + family.act_dim, dim=d.dim,
                      dim_mults=tuple(d.dim_mults), embed_dim=d.embed_dim,
                      embed_hidden=d.embed_hidden, use_context=not unconditional)


def _adam(lr: float, clip: float | None, decay_steps: int | None = None):
  """Adam at `lr`, cosine-decayed to lr / 20 over `decay_steps` when given, after gradient
  clipping at global norm `clip` when given."""
  if decay_steps:
    lr = optax.cosine_decay_schedule(lr, decay_steps, alpha=0.05)
  tx = optax.adam(lr)
  return optax.chain(optax.clip_by_global_norm(clip), tx) if clip else tx


def init_context_state(config, family, norm, rng) -> TrainState:
  model = build_context_model(config, family)
  c = config.context
  row = 2 * family.obs_dim + family.act_dim + 1
  params = model.init(rng, norm, jnp.zeros((1, c.num_context, c.history, row)),
                      jnp.zeros((1, 1, family.obs_dim)), jnp.zeros((1, 1, family.act_dim)))
  decay = c.num_steps if c.get('lr_decay', False) else None
  return TrainState.create(params, _adam(c.learning_rate, c.get('grad_clip'), decay))


def context_loss(model: ContextModel, params, norm, seg: mdata.Segments, rng=None, *,
                 z_noise: float = 0.0, z_penalty: float = 0.0, z_consistency: float = 0.0):
  """Eq. 1 as Gaussian log-likelihoods with unit variance: MSE of the normalized reward and the
  normalized state delta of transitions of the same task, given z from the history windows.

  DESIGN: the predicted transitions come from a window drawn independently of the context
  histories (same task, any episode), so the encoder must carry task information rather than copy
  the rewards of the very transitions it is asked to predict.

  `z_noise` and `z_penalty` (both 0 in the paper) make z an information bottleneck: R and P read
  `z + z_noise * eps` and the loss adds `z_penalty * mean ||z||^2`, a fixed-variance Gaussian
  posterior with its KL to N(0, I) as in PEARL. Tasks then sit in z-space as far apart as their
  rewards and dynamics differ, so unseen tasks fall between their neighbours (see README).

  `z_consistency` (0 in the paper) adds the within-task variance of the per-window embeddings
  divided by their variance over the batch: the history windows of one sample come from episodes
  of every data tier of the task, so this asks one z per task whatever the behaviour policy that
  produced the warm-start data (the paper's robustness claim, Table 2)."""
  windows = model.apply(params, norm, seg.context, method=ContextModel.encode_windows)
  z = windows.mean(axis=1)[:, None, :]
  z_in = z if not z_noise else z + z_noise * jax.random.normal(rng, z.shape)
  r_hat = model.apply(params, norm, seg.states, seg.actions, z_in,
                      method=ContextModel.reward_normalized)
  d_hat = model.apply(params, norm, seg.states, seg.actions, z_in,
                      method=ContextModel.delta_normalized)
  r_loss = jnp.mean(jnp.square(r_hat - nz.normalize_rew(norm, seg.rewards)))
  d_true = nz.normalize_obs(norm, seg.next_states) - nz.normalize_obs(norm, seg.states)
  d_loss = jnp.mean(jnp.square(d_hat - d_true))
  z_sq = jnp.mean(jnp.sum(jnp.square(z), -1))
  within = jnp.mean(jnp.var(windows, axis=1))
  spread = within / (jnp.mean(jnp.var(windows.reshape(-1, windows.shape[-1]), axis=0)) + 1e-6)
  loss = r_loss + d_loss + z_penalty * z_sq + z_consistency * spread
  return loss, {'loss': loss, 'reward_mse': r_loss, 'dynamics_mse': d_loss, 'z_sq_norm': z_sq,
                'z_within_task_fraction': spread}


def make_context_step(config, family, data, norm, tier_episodes=None):
  """The jitted update of the context model; `tier_episodes` (episodes per tier of `data`) makes
  every sample's histories come from one tier (`config.context.one_tier_contexts`)."""
  model = build_context_model(config, family)
  c = config.context
  blocks = tier_episodes if c.get('one_tier_contexts', False) else None
  reg = dict(z_noise=c.get('z_noise', 0.0), z_penalty=c.get('z_penalty', 0.0),
             z_consistency=c.get('z_consistency', 0.0))

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state: TrainState, rng):
    seg_rng, noise_rng = jax.random.split(rng)
    seg = mdata.sample_segments(seg_rng, data, c.batch_size, history=c.history,
                                horizon=c.target_window, num_context=c.num_context,
                                context_blocks=blocks)
    grads, metrics = jax.grad(lambda p: context_loss(model, p, norm, seg, noise_rng, **reg),
                              has_aux=True)(state.params)
    return state.apply_gradients(grads, ema_decay=c.ema_decay), metrics
  return step


def load_train_tiers(workdir, family, tiers) -> dict:
  """`{tier: dataset}` of the training tasks, each named tier read once."""
  return {t: load_dataset(workdir, family, 'train', t)[0] for t in dict.fromkeys(tiers)}


def context_training_data(config, workdir, family, loaded=None):
  """The training tasks' data of `config.context.tiers` joined along the episode axis, and the
  number of episodes of each tier in it; `loaded` (from `load_train_tiers`) saves re-reading."""
  loaded = loaded or load_train_tiers(workdir, family, config.context.tiers)
  datasets = [loaded[t] for t in config.context.tiers]
  return concat_episodes(datasets), tuple(d.episodes_per_task for d in datasets)


def train_context(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Trains E_phi, R_psi, P_omega on the training tasks' data (tiers `config.context.tiers`).

  Writes `workdir/context/normalizer.npz` (limits of the expert training data, shared by every
  later stage) and checkpoints under `workdir/context/checkpoints`.
  """
  family = family_from_config(config)
  loaded = load_train_tiers(workdir, family, ('expert', *config.context.tiers))
  norm = mdata.init_normalizer(concat_episodes([loaded['expert']]))
  out = os.path.join(workdir, 'context')
  nz.save_normalizer(os.path.join(out, 'normalizer.npz'), norm)
  data, tier_episodes = context_training_data(config, workdir, family, loaded)
  data = jax.device_put(data)
  rng = jax.random.PRNGKey(config.seed)
  init_rng, train_rng = jax.random.split(jax.random.fold_in(rng, 1))
  state = init_context_state(config, family, norm, init_rng)
  return train(out, state, make_context_step(config, family, data, norm, tier_episodes), train_rng,
               num_steps=config.context.num_steps, log_every=config.log_every,
               checkpoint_every=config.checkpoint_every, name='context',
               hparams=config.context.to_dict())


def load_context(config, workdir, family=None):
  """`(context_model, params (EMA), normalizer)` of a trained context stage."""
  family = family or family_from_config(config)
  norm = nz.load_normalizer(os.path.join(workdir, 'context', 'normalizer.npz'))
  template = init_context_state(config, family, norm, jax.random.PRNGKey(0))
  params = load_params(os.path.join(workdir, 'context', 'checkpoints'), template)
  return build_context_model(config, family), params, norm


def init_denoiser_state(config, family, rng, *, unconditional=False) -> TrainState:
  net = build_denoiser(config, family, unconditional=unconditional)
  d = config.diffusion
  params = net.init(rng, jnp.zeros((1, d.horizon, family.obs_dim + family.act_dim)),
                    jnp.zeros((1,), jnp.int32), jnp.zeros((1, config.context.context_dim)),
                    jnp.ones((1,), bool))
  return TrainState.create(params, _adam(d.learning_rate, d.get('grad_clip')))


def make_diffusion_step(config, family, data, norm, context_model, context_params, *,
                        unconditional=False, context_data=None, context_tier_episodes=None):
  net = build_denoiser(config, family, unconditional=unconditional)
  d, c = config.diffusion, config.context
  sched = make_schedule(d.num_steps)
  weights = loss_weights(d.horizon, family.obs_dim, family.act_dim, d.action_weight)
  dropout = 1.0 if unconditional else d.context_dropout
  blocks = context_tier_episodes if d.get('one_tier_contexts', False) else None

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state: TrainState, rng):
    seg_rng, loss_rng = jax.random.split(rng)
    seg = mdata.sample_segments(seg_rng, data, d.batch_size, history=c.history,
                                horizon=d.horizon, num_context=d.get('num_context', c.num_context),
                                context_data=context_data, context_blocks=blocks)
    z = jax.lax.stop_gradient(context_model.apply(context_params, norm, seg.context,
                                                  method=ContextModel.encode))
    if d.get('context_noise', 0.0):  # conditioning augmentation (see the docstring)
      z = z + d.context_noise * jax.random.normal(jax.random.fold_in(seg_rng, 1), z.shape)
    x0 = nz.normalize_traj(norm, seg.states, seg.actions)
    loss_fn = lambda p: denoising_loss(net.apply, p, sched, loss_rng, x0, z,
                                       obs_dim=family.obs_dim, context_dropout=dropout,
                                       predict_epsilon=d.predict_epsilon, weights=weights)
    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params)
    return state.apply_gradients(grads, ema_decay=d.ema_decay, ema_start=d.ema_start), metrics
  return step


def train_diffusion(config: ml_collections.ConfigDict, workdir: str, *,
                    unconditional: bool = False) -> TrainState:
  """Trains the denoiser on the training tasks' expert data, each window labelled with z from
  the trained context encoder (Eq. 5, context dropout beta). `unconditional=True` trains
  UDiffuser (beta = 1, no context MLP) into `workdir/udiffuser`.

  DESIGN: z is computed from histories drawn from all of the task's data in
  `config.context.tiers` (not only its expert episodes), so the denoiser is trained on the
  contexts that warm-start data of any quality produces at test time (paper, Section 5.4).

  `config.diffusion.context_noise` (0 in the paper) adds Gaussian noise of that std to z in
  training (conditioning augmentation, as Imagen does): with only a few tens of training tasks the
  z of each sits in a tight cluster, and the noise makes the denoiser interpolate between the
  clusters instead of mapping each to its own behaviour (docs/point_robot.md)."""
  family = family_from_config(config)
  context_model, context_params, norm = load_context(config, workdir, family)
  tiers = tuple(config.diffusion.get('tiers', ('expert',)))
  loaded = load_train_tiers(workdir, family, (*tiers, *config.context.tiers))
  data = jax.device_put(concat_episodes([loaded[t] for t in tiers]))
  context_data, tier_episodes = context_training_data(config, workdir, family, loaded)
  context_data = jax.device_put(context_data)
  rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 3 if unconditional else 2)
  init_rng, train_rng = jax.random.split(rng)
  state = init_denoiser_state(config, family, init_rng, unconditional=unconditional)
  step = make_diffusion_step(config, family, data, norm, context_model, context_params,
                             unconditional=unconditional, context_data=context_data,
                             context_tier_episodes=tier_episodes)
  name = 'udiffuser' if unconditional else 'diffusion'
  steps = config.diffusion.num_train_steps
  if unconditional:
    steps = config.udiffuser.get('num_train_steps', steps)
  return train(os.path.join(workdir, name), state, step, train_rng, num_steps=steps,
               log_every=config.log_every, checkpoint_every=config.checkpoint_every, name=name,
               hparams=config.diffusion.to_dict())


def load_denoiser(config, workdir, family=None, *, unconditional=False):
  """`(net, params (EMA))` of a trained denoiser stage."""
  family = family or family_from_config(config)
  template = init_denoiser_state(config, family, jax.random.PRNGKey(0), unconditional=unconditional)
  name = 'udiffuser' if unconditional else 'diffusion'
  params = load_params(os.path.join(workdir, name, 'checkpoints'), template)
  return build_denoiser(config, family, unconditional=unconditional), params
