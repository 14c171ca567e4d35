"""Prompt-DT's one training stage: behaviour cloning of the training tasks' data, each segment with
a prompt of its own task, as the reference's `PromptSequenceTrainer`.

Every step draws `batch_per_task` segments of every training task (`data.sample_batch`); the loss
is the mean squared error of the predicted actions over the segments' real steps; AdamW with a
linear warm-up and a global-norm clip. Writes `WORKDIR/seed_{s}/prompt_dt/`: `scales.npz` (the
state statistics and return scale), checkpoints, `metrics.jsonl`, TensorBoard files.
"""
from __future__ import annotations

import functools
import io
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mdx import data as mdata
from mdx import mesh as mmesh
from mdx import workdir as layout
from mdx.envs import family_from_config
from mdx.io import write_atomic
from mdx.methods.prompt_dt import data as dt_data
from mdx.methods.prompt_dt.policy import build_model
from mdx.training import TrainState, compiled_init, load_params, reporting, train

STAGE = 'prompt_dt'


def optimizer(config) -> optax.GradientTransformation:
  t = config.prompt_dt
  warmup = lambda step: t.learning_rate * jnp.minimum((step + 1) / t.warmup_steps, 1.0)
  return optax.chain(optax.clip_by_global_norm(t.grad_clip),
                     optax.adamw(warmup, weight_decay=t.weight_decay))


@compiled_init
def init_state(config, family, rng) -> TrainState:
  t = config.prompt_dt
  empty = lambda k: dt_data.Steps(
      states=jnp.zeros((1, k, family.obs_dim)), actions=jnp.zeros((1, k, family.act_dim)),
      returns_to_go=jnp.zeros((1, k)), timesteps=jnp.zeros((1, k), jnp.int32),
      mask=jnp.ones((1, k), bool))
  params = build_model(config, family).init(rng, empty(t.prompt_len), empty(t.context_len))
  return TrainState.create(params, optimizer(config))


def loss_fn(model, params, prompts, segments, rng):
  pred = model.apply(params, prompts, segments, train=True, rngs={'dropout': rng})
  err = jnp.square(pred - segments.actions).mean(-1)
  loss = jnp.sum(jnp.where(segments.mask, err, 0.0)) / jnp.maximum(segments.mask.sum(), 1)
  return loss, {'loss': loss}


def make_step(config, family, arrays, scales):
  model, t = build_model(config, family), config.prompt_dt
  mesh = mmesh.make_mesh(config)

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state: TrainState, rng):
    batch_rng, dropout_rng = jax.random.split(rng)
    prompts, segments = dt_data.sample_batch(batch_rng, arrays, arrays, t.batch_per_task,
                                             t.context_len, t.prompt_len, scales)
    prompts, segments = mmesh.constrain_batch((prompts, segments), mesh)  # data-parallel
    grads, metrics = jax.grad(lambda p: loss_fn(model, p, prompts, segments, dropout_rng),
                              has_aux=True)(state.params)
    metrics = dict(metrics, grad_norm=optax.global_norm(grads))
    return state.apply_gradients(grads, ema_decay=0.0), metrics  # no EMA (the reference has none)
  return step


def scales_path(workdir: str, seed: int) -> str:
  return os.path.join(layout.stage_dir(workdir, STAGE, seed), 'scales.npz')


def save_scales(path: str, scales: dt_data.Scales) -> None:
  buf = io.BytesIO()
  np.savez(buf, state_mean=np.asarray(scales.state_mean), state_std=np.asarray(scales.state_std),
           limits=np.asarray([scales.action_low, scales.action_high, scales.return_scale]))
  write_atomic(path, buf.getvalue())


def load_scales(path: str) -> dt_data.Scales:
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: not found (written by the prompt_dt stage)')
  with np.load(path) as f:
    low, high, scale = (float(x) for x in f['limits'])
    return dt_data.Scales(state_mean=jnp.asarray(f['state_mean']),
                          state_std=jnp.asarray(f['state_std']), action_low=low,
                          action_high=high, return_scale=scale)


def training_data(config, workdir, family):
  return mdata.concat_episodes([mdata.load_dataset(workdir, family, 'train', tier)
                                for tier in config.prompt_dt.tiers])


def train_prompt_dt(config, workdir: str, seed: int) -> TrainState:
  """Trains Prompt-DT of training seed `seed` on the training tasks' `config.prompt_dt.tiers`."""
  family = family_from_config(config)
  data = training_data(config, workdir, family)
  scales = dt_data.make_scales(data, family, config.prompt_dt.return_scale)
  save_scales(scales_path(workdir, seed), scales)
  init_rng, train_rng = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 4))
  state = init_state(config, family, init_rng)
  arrays = jax.device_put(dt_data.episode_arrays(data))
  return train(layout.stage_dir(workdir, STAGE, seed), state,
               make_step(config, family, arrays, scales), train_rng,
               num_steps=config.prompt_dt.num_train_steps, **reporting(config),
               name=f'{STAGE}/seed_{seed}',
               hparams=config.prompt_dt.to_dict())


def load_prompt_dt(config, workdir: str, seed: int, family) -> dict:
  """`{'net': params, 'scales': Scales}` of a trained stage."""
  template = init_state(config, family, jax.random.PRNGKey(0))
  params = load_params(layout.checkpoint_dir(workdir, STAGE, seed), template, ema=False)
  return {'net': params, 'scales': load_scales(scales_path(workdir, seed))}
