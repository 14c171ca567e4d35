"""FOCAL's one training stage: the encoder by the distance-metric loss alone, and BRAC on the
detached task embedding, updated together (the reference's `_take_step`).

Every update draws `meta_batch` training tasks with replacement; for each, `embedding_batch`
context transitions give its z (the encoder's mean embedding) and `c_iter` batches of
`batch_size` transitions feed BRAC with states `[s, stop_gradient(z)]` (batch 0 trains all of
BRAC, the others its dual critic). `updates_per_iteration` updates run in one compiled call
(`mdx.rl.make_train_step`); the stage's step counts those calls. Writes
`WORKDIR/seed_{s}/focal/`: checkpoints, `metrics.jsonl`, TensorBoard files. With
`focal.context = 'task'` BRAC reads the task's standardized true parameters in place of z (the
encoder still trains, unread): the learner with the encoder out of the loop, a diagnostic.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mdx import data as mdata
from mdx import rl
from mdx import workdir as layout
from mdx.envs import family_from_config
from mdx.methods.focal import losses, model
from mdx.training import TrainState, compiled_init, checkpoints, train

STAGE = 'focal'


class FocalState(struct.PyTreeNode):
  step: jax.Array
  encoder: TrainState
  brac: rl.BRACState


@compiled_init
def init_state(config, family, rng) -> FocalState:
  e_rng, b_rng = jax.random.split(rng)
  f = config.focal
  rows = jnp.zeros((1, 1, model.row_dim(config, family)))
  encoder = TrainState.create(model.build_encoder(config).init(e_rng, rows),
                              optax.adam(f.context_learning_rate))
  z_dim = f.latent_dim if f.context == 'encoder' else family.task_dim
  brac = rl.init_brac(b_rng, family.obs_dim + z_dim, family.act_dim, model.brac_config(config))
  return FocalState(step=jnp.zeros((), jnp.int32), encoder=encoder, brac=brac)


def make_update(config, family, task_params=None):
  """The update; `task_params [num_tasks, task_dim]` (the training data's) with
  `focal.context = 'task'`."""
  f, bc, encoder = config.focal, model.brac_config(config), model.build_encoder(config)
  if f.context == 'task' and task_params is None:
    raise ValueError("focal.context = 'task' needs the training tasks' task_params")
  # every training task's z of `context = 'task'`, standardized once, outside the training step
  task_z = family.standardize_params(task_params) if f.context == 'task' else None
  scale = model.action_scale(family)

  def update(state: FocalState, batch, rng):
    tasks, context, sac = batch
    rows = model.context_rows(config, context.states, context.actions / scale, context.rewards,
                              context.next_states)

    def z_loss(params):
      z = encoder.apply(params, rows)  # [M, latent]
      return f.z_loss_weight * losses.distance_metric_loss(z, tasks), z
    (zl, z), grads = jax.value_and_grad(z_loss, has_aux=True)(state.encoder.params)
    enc = state.encoder.apply_gradients(grads, ema_decay=0.0)
    z = jax.lax.stop_gradient(z)
    if f.context == 'task':
      z = task_z[tasks]
    flat = lambda x: x.reshape((x.shape[0], -1) + x.shape[3:])  # [c_iter, M * B, ...]
    zb = jnp.broadcast_to(z[None, :, None], sac.states.shape[:3] + z.shape[-1:])
    batches = rl.Batch(obs=flat(jnp.concatenate([sac.states, zb], -1)),
                       act=flat(sac.actions / scale), rew=flat(sac.rewards),
                       next_obs=flat(jnp.concatenate([sac.next_states, zb], -1)),
                       done=flat(sac.terminals))
    brac, metrics = rl.brac_update(state.brac, batches, rng, bc)
    return state.replace(encoder=enc, brac=brac), dict(metrics, z_loss=zl)
  return update


def make_sample(config, data):
  f = config.focal
  num_tasks = data.num_tasks

  def sample(rng):
    t_rng, c_rng, s_rng = jax.random.split(rng, 3)
    tasks = jax.random.randint(t_rng, (f.meta_batch,), 0, num_tasks)  # with replacement
    context = mdata.sample_transitions(c_rng, data, tasks, f.embedding_batch)
    sac = jax.vmap(lambda k: mdata.sample_transitions(k, data, tasks, f.batch_size))(
        jax.random.split(s_rng, f.c_iter))  # [c_iter, M, B, ...]
    return tasks, context, sac
  return sample


def training_data(config, workdir, family):
  return mdata.concat_episodes([mdata.load_dataset(workdir, family, 'train', tier)
                                for tier in config.focal.tiers])


def train_focal(config, workdir: str, seed: int) -> FocalState:
  """Trains FOCAL of training seed `seed` on the training tasks' `config.focal.tiers`."""
  family = family_from_config(config)
  data = jax.device_put(training_data(config, workdir, family))
  init_rng, train_rng = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 6))
  state = init_state(config, family, init_rng)
  step = rl.make_train_step(make_update(config, family, data.task_params),
                            make_sample(config, data),
                            config.focal.updates_per_iteration)
  f = config.focal
  return train(layout.stage_dir(workdir, STAGE, seed), state, step, train_rng,
               num_steps=f.num_iterations, log_every=f.log_every,
               checkpoint_every=f.checkpoint_every, wandb=config.wandb,
               name=f'{STAGE}/seed_{seed}', hparams=f.to_dict())


def load_focal(config, workdir: str, seed: int, family) -> dict:
  """`{'encoder': ..., 'actor': ...}` parameters of a trained stage."""
  template = init_state(config, family, jax.random.PRNGKey(0))
  directory = layout.checkpoint_dir(workdir, STAGE, seed)
  with checkpoints.checkpoint_manager(directory) as manager:
    state, _ = checkpoints.restore(manager, template)
  if state is None:
    raise FileNotFoundError(f'{directory}: no FOCAL checkpoint (train the focal stage first)')
  return {'encoder': state.encoder.params, 'actor': state.brac.actor.params}
