"""MTDiff-S (He et al., NeurIPS 2023, Section 3.3): the prompt-conditioned transformer diffusion
model generating whole transitions of a task from a demonstration prompt, to synthesize offline
data for it (seen or unseen).

The model is `PromptTransformerDenoiser` without a return (`use_return=False`, no CFG: the code's
`TasksAug`) and without a state history: tokens `[t, P_1 .. P_J, x_1 .. x_H]`, each x_h one
transition row `(s, a, r, s')` normalized (states and actions as MetaDiffuser's, rewards by the
training data's limits). DESIGN: one token per transition; the code gives s, a, r and s' a token
each (4H tokens, its position table capping H at 20). The loss is the noise MSE (the paper; the
code: Huber) over rows before the episode's end; sampling is the DDPM chain of the VP schedule
with the posterior's standard deviation (the code uses the variance as the standard deviation,
a smaller noise: SYSTEMS.md's pitfall, not copied).

A generated row's s' need not equal the next row's s (the code generates them as separate
tokens; here they are separate entries of one row): `synthesize` keeps each row as a transition
and `check` reports that gap beside the dynamics error of (s, a) -> s' against the simulator.

Stage `mtdiff_s` writes `WORKDIR/seed_{s}/mtdiff_s/` (scales, checkpoints, metrics); the binary
`experiments/mtdiff_synthesize.py` trains it and writes a synthetic dataset in mdx's own format.
"""
from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mdx import data as mdata
from mdx import mesh as mmesh
from mdx import workdir as layout
from mdx.data.collect import bounds as data_bounds
from mdx.data import normalizer as nz
from mdx.data import trajectories as mtraj
from mdx.data.trajectories import Trajectories
from mdx.diffusion import denoising_loss, loss_weights, make_schedule, sampling
from mdx.envs import EnvState, Task, TaskFamily, family_from_config
from mdx.methods.base import Stage
from mdx.methods.mtdiff import data as md_data
from mdx.nets.prompt_denoiser import PromptCondition, PromptTransformerDenoiser
from mdx.training import TrainState, compiled_init, load_params, reporting, train

STAGE = 'mtdiff_s'


def row_dim(family: TaskFamily) -> int:
  return 2 * family.obs_dim + family.act_dim + 1


def build_model(config, family) -> PromptTransformerDenoiser:
  m = config.mtdiff_s
  return PromptTransformerDenoiser(
      out_dim=row_dim(family), max_horizon=m.horizon, prompt_len=m.prompt_len, history_len=0,
      width=m.width, num_layers=m.num_layers, num_heads=m.num_heads, hidden=m.hidden,
      dropout=m.dropout, mlp_layers=m.mlp_layers, use_return=False,
      input_layernorm=m.input_layernorm)


def condition(prompt: jax.Array, obs_dim: int) -> PromptCondition:
  b = prompt.shape[0]
  return PromptCondition(prompt=prompt, history=jnp.zeros((b, 0, obs_dim)),
                         returns=jnp.zeros((b,)))


def normalize_rows(norm: nz.Normalizer, s, a, r, s2) -> jax.Array:
  return jnp.concatenate([nz.normalize_obs(norm, s), nz.normalize_act(norm, a),
                          nz.normalize_rew(norm, r)[..., None], nz.normalize_obs(norm, s2)], -1)


def unnormalize_rows(norm: nz.Normalizer, x: jax.Array):
  """`(s, a, r, s')` in environment units from normalized rows `[..., D]`."""
  o, a = norm.obs_dim, norm.act_lo.shape[-1]
  return (nz.unnormalize_obs(norm, x[..., :o]), nz.unnormalize_act(norm, x[..., o:o + a]),
          nz.unnormalize_rew(norm, x[..., o + a]), nz.unnormalize_obs(norm, x[..., o + a + 1:]))


def sample_batch(rng, data: Trajectories, norm: nz.Normalizer, *, per_task: int, horizon: int,
                 prompt_len: int):
  """`(rows [B, H, D], valid [B, H], prompts [B, J, obs + act])`, `per_task` windows of every
  task from uniform starts over each episode's valid steps, prompts from the same task."""
  ep_rng, start_rng, prompt_rng = jax.random.split(rng, 3)
  task, _, _, valid, take = md_data.sample_windows(ep_rng, start_rng, data, per_task=per_task,
                                                   horizon=horizon)
  rows = normalize_rows(norm, take(data.observations), take(data.actions), take(data.rewards),
                        take(data.next_observations))
  prompts = md_data.sample_prompts(prompt_rng, data, task, prompt_len, norm)
  return jnp.where(valid[..., None], rows, 0.0), valid, prompts


@compiled_init
def init_state(config, family, rng) -> TrainState:
  m = config.mtdiff_s
  params = build_model(config, family).init(
      rng, jnp.zeros((1, m.horizon, row_dim(family))), jnp.zeros((1,), jnp.int32),
      condition(jnp.zeros((1, m.prompt_len, family.obs_dim + family.act_dim)), family.obs_dim),
      jnp.ones((1,), bool))
  return TrainState.create(params, optax.adam(m.learning_rate))


def make_step(config, family, data, norm):
  model, m = build_model(config, family), config.mtdiff_s
  sched = make_schedule(m.num_diffusion_steps, m.schedule)
  weights = loss_weights(m.horizon, 0, row_dim(family), 1.0)
  mesh = mmesh.make_mesh(config)

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state: TrainState, rng):
    batch_rng, loss_rng, dropout_rng = jax.random.split(rng, 3)
    rows, valid, prompts = mmesh.constrain_batch(
        sample_batch(batch_rng, data, norm, per_task=m.batch_per_task, horizon=m.horizon,
                     prompt_len=m.prompt_len), mesh)
    net = lambda p, x, k, c, keep: model.apply(p, x, k, c, keep, train=True,
                                               rngs={'dropout': dropout_rng})
    loss_fn = lambda p: denoising_loss(net, p, sched, loss_rng, rows,
                                       condition(prompts, family.obs_dim), obs_dim=0,
                                       context_dropout=0.0, predict_epsilon=True,
                                       weights=weights, valid=valid)
    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params)
    metrics = {'loss': metrics['loss'], 'grad_norm': optax.global_norm(grads)}
    return state.apply_gradients(grads, ema_decay=m.ema_decay, ema_start=m.ema_start), metrics
  return step


def _scales_path(workdir: str, seed: int) -> str:
  return os.path.join(layout.stage_dir(workdir, STAGE, seed), 'normalizer.npz')


def train_mtdiff_s(config, workdir: str, seed: int) -> TrainState:
  """Trains MTDiff-S of training seed `seed` on the training tasks' `config.mtdiff_s.tiers`."""
  family = family_from_config(config)
  m = config.mtdiff_s
  data = mdata.concat_episodes([mdata.load_dataset(workdir, family, 'train', tier)
                                for tier in m.tiers])
  if m.horizon > data.episode_length:
    raise ValueError(f'mtdiff_s.horizon={m.horizon} exceeds the episode length '
                     f'{data.episode_length}')
  norm = nz.init_normalizer(data)
  nz.save_normalizer(_scales_path(workdir, seed), norm)
  init_rng, train_rng = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 8))
  return train(layout.stage_dir(workdir, STAGE, seed), init_state(config, family, init_rng),
               make_step(config, family, jax.device_put(data), norm), train_rng,
               num_steps=m.num_train_steps, **reporting(config), name=f'{STAGE}/seed_{seed}',
               hparams=m.to_dict())


MTDIFF_S_STAGE = Stage(name=STAGE, train=train_mtdiff_s,
                       num_train_steps=lambda config: config.mtdiff_s.num_train_steps,
                       reads=('mtdiff_s',))


def load_mtdiff_s(config, workdir: str, seed: int, family) -> dict:
  """`{'net': EMA params, 'norm': Normalizer}` of a trained stage."""
  template = init_state(config, family, jax.random.PRNGKey(0))
  return {'net': load_params(layout.checkpoint_dir(workdir, STAGE, seed), template),
          'norm': nz.load_normalizer(_scales_path(workdir, seed))}


def synthesize(config, family, params, rng, prompt_data: Trajectories,
               windows_per_task: int) -> jax.Array:
  """`[N, M, H, D]` normalized rows: `windows_per_task` windows for each task of `prompt_data`
  (`[N, E, T]`), each from its own prompt (a random J-step window of a random episode)."""
  model, m = build_model(config, family), config.mtdiff_s
  n = prompt_data.num_tasks
  prompt_rng, sample_rng = jax.random.split(rng)
  task = jnp.repeat(jnp.arange(n), windows_per_task)
  prompts = md_data.sample_prompts(prompt_rng, jax.tree.map(jnp.asarray, prompt_data), task,
                                   int(m.prompt_len), params['norm'])
  sample_config = sampling.SampleConfig(num_diffusion_steps=m.num_diffusion_steps,
                                        schedule=m.schedule, clip_denoised=m.clip_denoised or None)
  x = sampling.sample(lambda xk, k, c, mask: model.apply(params['net'], xk, k, c, mask),
                      jax.random.split(sample_rng, task.shape[0]),
                      condition(prompts, family.obs_dim), shape=(m.horizon, row_dim(family)),
                      config=sample_config)
  return x.reshape((n, windows_per_task) + x.shape[1:])


def to_trajectories(family: TaskFamily, norm: nz.Normalizer, rows: jax.Array,
                    prompt_data: Trajectories) -> Trajectories:
  """The synthetic rows `[N, M, H, D]` as mdx data: each window one H-step "episode" of its task
  (task parameters and ids from `prompt_data`), actions clipped to the family's box (the format
  stores executed actions), every step valid, a time-limit at its last step."""
  s, a, r, s2 = unnormalize_rows(norm, rows)
  a = jnp.clip(a, family.action_low, family.action_high)
  shape = r.shape
  timeouts = jnp.zeros(shape, bool).at[..., -1].set(True)
  return Trajectories(observations=s, actions=a, rewards=r, next_observations=s2,
                      terminals=jnp.zeros(shape, bool), timeouts=timeouts,
                      valid=jnp.ones(shape, bool), task_params=jnp.asarray(prompt_data.task_params),
                      task_ids=jnp.asarray(prompt_data.task_ids))


def check(family: TaskFamily, data: Trajectories) -> dict:
  """How physical the synthetic transitions are: the means of `|s' - step(s, a)|` and of
  `|r - reward(s, a)|` against the simulator (for families whose observation is their whole
  state: Point-Robot), and the mean gap `|s_{t+1} - s'_t|` between consecutive rows."""
  if family.name != 'point_robot':
    raise NotImplementedError(f'check: the simulator cannot be set to an observed state of '
                              f'{family.name} (only Point-Robot observes its whole state)')
  obs, act = jnp.asarray(data.observations), jnp.asarray(data.actions)
  tasks = Task(params=jnp.asarray(data.task_params), task_id=jnp.asarray(data.task_ids))

  def step_one(task, s, a):
    state = EnvState(obs=s, reward=jnp.zeros(()), done=jnp.zeros((), bool),
                     t=jnp.zeros((), jnp.int32))
    nxt = family.step(task, state, a)
    return nxt.obs, nxt.reward

  per_task = lambda task, s, a: jax.vmap(jax.vmap(lambda x, y: step_one(task, x, y)))(s, a)
  s2, r = jax.vmap(per_task)(tasks, obs, act)
  next_obs = jnp.asarray(data.next_observations)
  return {'dynamics_error': float(jnp.mean(jnp.abs(s2 - next_obs))),
          'reward_error': float(jnp.mean(jnp.abs(r - jnp.asarray(data.rewards)))),
          'consistency_gap': float(jnp.mean(jnp.abs(obs[:, :, 1:] - next_obs[:, :, :-1])))}


def save_synthetic(path: str, family: TaskFamily, data: Trajectories, meta: dict) -> None:
  """Writes a synthetic dataset in mdx's format, validated as collected data are (shapes,
  finiteness, the family's observation and action bounds), through a temporary folder and a
  rename; never over an existing dataset."""
  if mdata.exists(path):
    raise mtraj.DatasetError(f'{path}: a dataset is already there; remove it or choose another '
                             'path')
  arrays = mtraj.to_numpy(jax.tree.map(np.asarray, data))
  mtraj.validate(arrays, obs_dim=family.obs_dim, act_dim=family.act_dim,
                 task_dim=family.task_dim, source=f'synthetic data for {path}',
                 bounds=data_bounds(family))
  mdata.save(path, data, meta)
