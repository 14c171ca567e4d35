"""MTDiff-P's one training stage: the prompt-conditioned transformer noise model on the training
tasks' windows (`data.sample_batch`), with return dropout for classifier-free guidance.

Loss: the paper's Eq. 10, the MSE of the predicted noise (the code: a Huber loss), with the first
action weighted `action_weight` (the code's `action_weight=10`, Diffuser's) and rows past an
episode's end masked; the VP schedule over K steps; Adam, and the parameters' EMA (the code: 0.995
from step 2000). Writes `WORKDIR/seed_{s}/mtdiff/`: `scales.npz` (the normalizer and R's map),
checkpoints, `metrics.jsonl`, TensorBoard files.
"""
from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import optax

from mdx import data as mdata
from mdx import mesh as mmesh
from mdx import workdir as layout
from mdx.diffusion import denoising_loss, loss_weights, make_schedule
from mdx.envs import family_from_config
from mdx.methods.mtdiff import data as md_data
from mdx.nets.prompt_denoiser import PromptCondition, PromptTransformerDenoiser
from mdx.training import TrainState, compiled_init, load_params, reporting, train

STAGE = 'mtdiff'


def build_model(config, family) -> PromptTransformerDenoiser:
  m = config.mtdiff
  return PromptTransformerDenoiser(
      out_dim=family.act_dim, max_horizon=m.horizon, prompt_len=m.prompt_len,
      history_len=m.history, width=m.width, num_layers=m.num_layers, num_heads=m.num_heads,
      hidden=m.hidden, dropout=m.dropout, mlp_layers=m.mlp_layers,
      input_layernorm=m.input_layernorm)


def empty_condition(config, family, batch: int = 1) -> PromptCondition:
  m = config.mtdiff
  return PromptCondition(prompt=jnp.zeros((batch, m.prompt_len, family.obs_dim + family.act_dim)),
                         history=jnp.zeros((batch, m.history, family.obs_dim)),
                         returns=jnp.zeros((batch,)))


@compiled_init
def init_state(config, family, rng) -> TrainState:
  m = config.mtdiff
  params = build_model(config, family).init(
      rng, jnp.zeros((1, m.horizon, family.act_dim)), jnp.zeros((1,), jnp.int32),
      empty_condition(config, family), jnp.ones((1,), bool))
  return TrainState.create(params, optax.adam(m.learning_rate))


def make_step(config, family, data, returns, scales):
  """The jitted update `(state, rng) -> (state, metrics)`."""
  model, m = build_model(config, family), config.mtdiff
  sched = make_schedule(m.num_diffusion_steps, m.schedule)
  weights = loss_weights(m.horizon, 0, family.act_dim, m.action_weight)
  mesh = mmesh.make_mesh(config)

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state: TrainState, rng):
    batch_rng, loss_rng, dropout_rng = jax.random.split(rng, 3)
    batch = md_data.sample_batch(batch_rng, data, returns, scales, per_task=m.batch_per_task,
                                 horizon=m.horizon, history_len=m.history,
                                 prompt_len=m.prompt_len)
    batch = mmesh.constrain_batch(batch, mesh)  # data-parallel over `config.mesh_devices`
    net = lambda p, x, k, c, keep: model.apply(p, x, k, c, keep, train=True,
                                               rngs={'dropout': dropout_rng})
    loss_fn = lambda p: denoising_loss(net, p, sched, loss_rng, batch.actions, batch.condition,
                                       obs_dim=0, context_dropout=m.return_dropout,
                                       predict_epsilon=True, weights=weights, valid=batch.valid)
    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params)
    metrics = dict(metrics, grad_norm=optax.global_norm(grads))
    metrics['return_kept'] = metrics.pop('context_kept')
    return state.apply_gradients(grads, ema_decay=m.ema_decay, ema_start=m.ema_start), metrics
  return step


def scales_path(workdir: str, seed: int) -> str:
  return os.path.join(layout.stage_dir(workdir, STAGE, seed), 'scales.npz')


def training_data(config, workdir, family):
  return mdata.concat_episodes([mdata.load_dataset(workdir, family, 'train', tier)
                                for tier in config.mtdiff.tiers])


def train_mtdiff(config, workdir: str, seed: int) -> TrainState:
  """Trains MTDiff-P of training seed `seed` on the training tasks' `config.mtdiff.tiers`."""
  family = family_from_config(config)
  m = config.mtdiff
  data = training_data(config, workdir, family)
  if m.horizon > data.episode_length:
    raise ValueError(f'mtdiff.horizon={m.horizon} exceeds the episode length '
                     f'{data.episode_length}')
  scales = md_data.make_scales(data, discount=m.discount, target_quantile=m.target_quantile)
  md_data.save_scales(scales_path(workdir, seed), scales)
  data = jax.device_put(data)
  returns = md_data.window_returns(data.rewards, data.valid, m.discount)
  init_rng, train_rng = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 7))
  return train(layout.stage_dir(workdir, STAGE, seed), init_state(config, family, init_rng),
               make_step(config, family, data, returns, scales), train_rng,
               num_steps=m.num_train_steps, **reporting(config), name=f'{STAGE}/seed_{seed}',
               hparams=m.to_dict())


def load_mtdiff(config, workdir: str, seed: int, family) -> dict:
  """`{'net': EMA params, 'scales': data.Scales}` of a trained stage."""
  template = init_state(config, family, jax.random.PRNGKey(0))
  params = load_params(layout.checkpoint_dir(workdir, STAGE, seed), template)
  return {'net': params, 'scales': md_data.load_scales(scales_path(workdir, seed))}
