"""Prompt Diffuser's training: the prompt generator's update (Alg. 1) and its pre-training stage.

One update: a batch of real prompts (x0, y) and Prompt-DT segments of the same tasks; L_DM, the
noise MSE of the generator on the real prompts (Eq. 10); L_DT, the frozen Prompt-DT's action MSE
on the segments with prompts generated from the same y through the differentiable chain
(Eq. 13); the two gradients combined by `model.project_conflicting`; AdamW (betas 0.9 / 0.95,
weight decay 1e-4), a 0.25 global-norm clip (Table 4). The same update pre-trains on the training
tasks (stage `prompt_diffuser`, after `prompt_dt`) and fine-tunes on a test task's few-shot data
(in the policy's `init`, in-graph).

Writes `WORKDIR/seed_{s}/prompt_diffuser/`: `normalizer.npz` (the prompt rows' limits),
checkpoints, `metrics.jsonl`, TensorBoard files.
"""
from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import optax

from mdx import workdir as layout
from mdx.data import normalizer as nz
from mdx.diffusion import denoising_loss, make_schedule
from mdx.envs import family_from_config
from mdx.methods.prompt_diffuser import data as pd_data
from mdx.methods.prompt_diffuser import model as pd_model
from mdx.methods.prompt_dt import train as dt_train
from mdx.methods.prompt_dt.policy import build_model as build_prompt_dt
from mdx.training import TrainState, compiled_init, load_params, reporting, train

STAGE = 'prompt_diffuser'


def build_generator(config) -> pd_model.PromptGenerator:
  p = config.prompt_diffuser
  return pd_model.PromptGenerator(hidden=p.hidden, step_dim=p.step_dim)


def prompt_shape(config, family) -> tuple[int, int]:
  return (int(config.prompt_dt.prompt_len), family.obs_dim + family.act_dim + 1)


def optimizer(config) -> optax.GradientTransformation:
  p = config.prompt_diffuser
  return optax.chain(optax.clip_by_global_norm(p.grad_clip),
                     optax.adamw(p.learning_rate, b1=0.9, b2=0.95, weight_decay=p.weight_decay))


@compiled_init
def init_state(config, family, rng) -> TrainState:
  k, d = prompt_shape(config, family)
  params = build_generator(config).init(rng, jnp.zeros((1, k, d)), jnp.zeros((1,), jnp.int32),
                                        jnp.zeros((1, k, 2)))
  return TrainState.create(params, optimizer(config))


def make_update(config, family, dt_params: dict, norm: nz.Normalizer):
  """`update(state, arrays, tasks [B], rng) -> (state, metrics)`: Alg. 1 on a batch of the tasks
  of `arrays` (`data.episode_arrays`), with the frozen Prompt-DT `dt_params = {'net', 'scales'}`."""
  gen, dt_model = build_generator(config), build_prompt_dt(config, family)
  p, t = config.prompt_diffuser, config.prompt_dt
  sched = make_schedule(p.num_diffusion_steps)
  chain = pd_model.chain_config(p.num_diffusion_steps, p.chain_steps)
  shape = prompt_shape(config, family)
  weights = jnp.ones(shape)
  denoise = lambda q, x, k, c, m: gen.apply(q, x, k, c, m)

  def update(state: TrainState, arrays, tasks, rng):
    batch_rng, dm_rng, chain_rng = jax.random.split(rng, 3)
    prompts, segments = pd_data.sample_batch(
        batch_rng, arrays, tasks, context_len=t.context_len, prompt_len=t.prompt_len,
        dt_scales=dt_params['scales'], norm=norm, max_episode_length=t.max_episode_length)
    dm_loss = lambda q: denoising_loss(denoise, q, sched, dm_rng, prompts.x0, prompts.y,
                                       obs_dim=0, context_dropout=0.0, predict_epsilon=True,
                                       weights=weights, valid=prompts.steps.mask)[0]

    def downstream(x0):
      generated = pd_data.to_steps(x0, prompts.steps, dt_params['scales'], norm)
      pred = dt_model.apply(dt_params['net'], generated, segments)
      err = jnp.square(pred - segments.actions).mean(-1)
      return jnp.sum(jnp.where(segments.mask, err, 0.0)) / jnp.maximum(segments.mask.sum(), 1)

    dt_loss = lambda q: pd_model.dt_loss_through_chain(
        gen, q, jax.random.split(chain_rng, tasks.shape[0]), prompts.y, downstream,
        shape=shape, config=chain)
    l_dm, g_dm = jax.value_and_grad(dm_loss)(state.params)
    l_dt, g_dt = jax.value_and_grad(dt_loss)(state.params)
    grads, conflicted = pd_model.project_conflicting(g_dm, g_dt)
    metrics = {'dm_loss': l_dm, 'dt_loss': l_dt, 'conflicted': conflicted.astype(jnp.float32),
               'grad_norm': optax.global_norm(grads)}
    return state.apply_gradients(grads, ema_decay=0.0), metrics
  return update


def normalizer_path(workdir: str, seed: int) -> str:
  return os.path.join(layout.stage_dir(workdir, STAGE, seed), 'normalizer.npz')


def train_prompt_diffuser(config, workdir: str, seed: int) -> TrainState:
  """Pre-trains the generator of training seed `seed` on the training tasks' prompts, with that
  seed's frozen Prompt-DT."""
  family = family_from_config(config)
  data = dt_train.training_data(config, workdir, family)
  norm = nz.init_normalizer(data)
  nz.save_normalizer(normalizer_path(workdir, seed), norm)
  dt_params = dt_train.load_prompt_dt(config, workdir, seed, family)
  update = make_update(config, family, dt_params, norm)
  arrays = jax.device_put(pd_data.episode_arrays(data))
  n, batch = data.num_tasks, int(config.prompt_diffuser.batch_size)

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state, rng):
    task_rng, update_rng = jax.random.split(rng)
    return update(state, arrays, jax.random.randint(task_rng, (batch,), 0, n), update_rng)

  init_rng, train_rng = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 11))
  return train(layout.stage_dir(workdir, STAGE, seed), init_state(config, family, init_rng),
               step, train_rng, num_steps=config.prompt_diffuser.num_train_steps,
               **reporting(config), name=f'{STAGE}/seed_{seed}',
               hparams=config.prompt_diffuser.to_dict())


def load_prompt_diffuser(config, workdir: str, seed: int, family) -> dict:
  """`{'gen': params, 'norm': Normalizer, 'dt': Prompt-DT's {'net', 'scales'}}`."""
  template = init_state(config, family, jax.random.PRNGKey(0))
  return {'gen': load_params(layout.checkpoint_dir(workdir, STAGE, seed), template, ema=False),
          'norm': nz.load_normalizer(normalizer_path(workdir, seed)),
          'dt': dt_train.load_prompt_dt(config, workdir, seed, family)}

