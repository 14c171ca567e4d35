"""Why a CORRO run scores what it does: does z identify the task, and does the actor follow the
critic? (`experiments/corro_diagnose.py` prints both for a trained workdir.)

- `task_probe`: z of every episode of a split's tasks (the trained aggregator over the frozen
  encoder, as the policy infers it), scored by `nearest_task_accuracy` (leave-one-episode-out
  task centroids) and by `ridge_r2` (a linear map from z to the task parameters fit on the
  training tasks' expert episodes, scored on the split's tasks: whether z varies linearly with
  the task) and by `knn_r2` (the mean task parameters of the k training episodes nearest in z:
  whether nearby z mean nearby tasks, however curved the map; acting on unseen tasks needs at
  least this).
- `critic_check`: along the training tasks' expert episodes, the critic's min-Q of the data's
  action, of the actor's deterministic action and of the zero action, and how large and how
  aligned the actor's action is with the data's: under-trained or over-penalized actors show
  Q(data) > Q(actor); extrapolation error shows Q(actor) > Q(data).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from mdx import data as mdata
from mdx.methods.corro import model, train
from mdx.rl.networks import TanhGaussianPolicy, TwinQ


def nearest_task_accuracy(z: np.ndarray) -> float:
  """`z [M tasks, E episodes, D]`: the fraction of episodes whose nearest task centroid (the
  episode's own task's computed without it) is its own task. Chance is 1 / M."""
  m, e, _ = z.shape
  if e < 2:
    raise ValueError(f'z: needs at least 2 episodes per task, got shape {z.shape}')
  total = z.sum(1)
  hits = 0
  for i in range(m):
    for j in range(e):
      cent = total / e
      cent[i] = (total[i] - z[i, j]) / (e - 1)
      hits += int(np.argmin(np.square(cent - z[i, j]).sum(-1)) == i)
  return hits / (m * e)


def spread(z: np.ndarray) -> dict:
  """`z [M tasks, E episodes, D]`: the standard deviation of the task centroids (between
  tasks) and of the episodes about their task's centroid (within), each averaged over D: an
  embedding the learner can read has the first well above the second."""
  return dict(between_task_std=float(z.mean(1).std(0).mean()),
              within_task_std=float(z.std(1).mean()))


def _r2(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
  """R^2 per column of `pred` against `target` (both `[N, P]`)."""
  return 1.0 - np.square(pred - target).sum(0) / np.square(target - target.mean(0)).sum(0)


def ridge_r2(z_fit, p_fit, z_eval, p_eval, ridge: float = 1e-3) -> np.ndarray:
  """R^2 per task parameter of the ridge regression `p ~ [z, 1]` fit on `(z_fit [N, D], p_fit
  [N, P])` and scored on `(z_eval, p_eval)`."""
  ones = lambda x: np.concatenate([x, np.ones((len(x), 1))], 1)
  x = ones(z_fit)
  w = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ p_fit)
  return _r2(ones(z_eval) @ w, p_eval)


def knn_r2(z_fit, p_fit, z_eval, p_eval, k: int = 5) -> np.ndarray:
  """R^2 per task parameter of predicting each `z_eval [N, D]` row's parameters as the mean of
  `p_fit` over its `k` nearest rows of `z_fit [N_fit, D]` (Euclidean)."""
  if not 1 <= k <= len(z_fit):
    raise ValueError(f'k: expected 1 <= k <= {len(z_fit)} (rows of z_fit), got {k}')
  d = np.square(z_eval[:, None] - z_fit[None]).sum(-1)  # [N, N_fit]
  nearest = np.argsort(d, axis=1, kind='stable')[:, :k]
  return _r2(p_fit[nearest].mean(1), p_eval)


def episode_contexts(config, params, family, dataset) -> tuple[np.ndarray, np.ndarray]:
  """z `[M, E, D]` of every episode of a dataset (`params`: 'encoder' and 'aggregator'), and its
  tasks' parameters `[M, P]`."""
  m, e = dataset.valid.shape[:2]
  rows, valid = train.episode_rows(dataset, np.arange(m)[:, None], np.arange(e)[None],
                                   model.action_scale(family))  # [M, E, T, row]
  emb = model.build_encoder(config).apply(params['encoder'], rows)
  z = model.AttentionAggregator().apply(params['aggregator'],
                                        emb.reshape((m * e,) + emb.shape[2:]),
                                        valid.reshape(m * e, -1))
  task_params = np.asarray(dataset.task_params).reshape(m, -1, dataset.task_params.shape[-1])
  return np.asarray(z).reshape(m, e, -1), task_params[:, 0]


def task_probe(config, workdir: str, seed: int, family, split: str, tiers) -> dict:
  """`{tier: {'nearest_task', 'chance', 'between_task_std', 'within_task_std', 'ridge_r2',
  'knn_r2'}}`
  of the split's episodes of each tier
  (`{}` with `corro.context = 'task'`, whose z is the task itself)."""
  if config.corro.context == 'task':
    return {}
  params = train.load_corro(config, workdir, seed, family)
  z_fit, p_fit = episode_contexts(config, params, family,
                                  mdata.load_dataset(workdir, family, 'train', 'expert'))
  fit = (z_fit.reshape(-1, z_fit.shape[-1]), np.repeat(p_fit, z_fit.shape[1], 0))
  out = {}
  for tier in tiers:
    z, p = episode_contexts(config, params, family,
                            mdata.load_dataset(workdir, family, split, tier))
    probe = (z.reshape(-1, z.shape[-1]), np.repeat(p, z.shape[1], 0))
    out[tier] = dict(nearest_task=nearest_task_accuracy(z), chance=1.0 / z.shape[0],
                     **spread(z),
                     ridge_r2=ridge_r2(*fit, *probe).tolist(), knn_r2=knn_r2(*fit, *probe).tolist())
  return out


def critic_check(config, workdir: str, seed: int, family, steps=(0, 2, 5, 10)) -> list[dict]:
  """Per episode step: mean min-Q of the data's, the actor's and the zero action over the
  training tasks' first expert episodes (each task's own z), `|a|` and the cosine of the
  actor's action with the data's."""
  state = train.load_sac(config, workdir, seed, family)
  data = mdata.load_dataset(workdir, family, 'train', 'expert')
  if config.corro.context == 'task':
    z = family.standardize_params(jnp.asarray(data.task_params))[:, None]  # [M, 1, task_dim]
  else:
    params = {'encoder': train.load_encoder(config, workdir, seed, family),
              'aggregator': state.aggregator.params}
    z, _ = episode_contexts(config, params, family, data)
  scale, hidden = model.action_scale(family), tuple(config.corro.hidden)
  s, a = data.observations[:, 0], data.actions[:, 0] / scale
  x = jnp.concatenate([s, jnp.broadcast_to(z[:, :1], s.shape[:2] + z.shape[-1:])], -1)
  q = lambda act: TwinQ(hidden).apply(state.sac.critic.params, x, act).min(0)
  pa = jnp.tanh(TanhGaussianPolicy(hidden, family.act_dim).apply(state.sac.actor.params, x)[0])
  norm = lambda v: jnp.linalg.norm(v, axis=-1)
  cos = jnp.sum(a * pa, -1) / jnp.maximum(norm(a) * norm(pa), 1e-8)
  q_data, q_actor, q_zero = q(a), q(pa), q(jnp.zeros_like(a))
  return [dict(step=t, q_data=float(q_data[:, t].mean()), q_actor=float(q_actor[:, t].mean()),
               q_zero=float(q_zero[:, t].mean()), abs_action_data=float(jnp.abs(a[:, t]).mean()),
               abs_action_actor=float(jnp.abs(pa[:, t]).mean()), cosine=float(cos[:, t].mean()))
          for t in steps if t < s.shape[1]]
