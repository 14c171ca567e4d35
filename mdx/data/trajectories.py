"""The offline data container, `Trajectories`, and its storage as `.npz` + `meta.json`.

Arrays keep D4RL's names but are laid out per task and episode, `[num_tasks, episodes, T, ...]`,
so that a segment sampler can draw a task, then an episode, then a window, without index tables.

On disk a dataset is a folder holding `data.npz` and `meta.json` (family, split, tier, seed,
per-task returns, format version). `save` writes both to a temporary folder and renames it into
place, so an interrupted write never leaves a half dataset under the final name. `load` validates
every array (presence, dtype, shape against the family's dimensions, finiteness) and raises
`DatasetError` naming the file, the field and what was expected.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import jax
import numpy as np
from flax import struct

from mdx import distributed

FORMAT_VERSION = 1
DATA_FILE = 'data.npz'
META_FILE = 'meta.json'


class DatasetError(ValueError):
  """A dataset on disk is missing, malformed or does not match the family."""


@struct.dataclass
class Trajectories:
  """Episodes of several tasks. N tasks, E episodes per task, T steps per episode."""
  observations: jax.Array  # [N, E, T, obs_dim] float32: s_t
  actions: jax.Array  # [N, E, T, act_dim] float32: a_t (as executed, after clipping)
  rewards: jax.Array  # [N, E, T] float32: r_t
  next_observations: jax.Array  # [N, E, T, obs_dim] float32: s_{t+1}
  terminals: jax.Array  # [N, E, T] bool: the episode terminated at this step (not a time limit)
  timeouts: jax.Array  # [N, E, T] bool: the episode hit its time limit at this step
  valid: jax.Array  # [N, E, T] bool: the step was taken before the episode ended
  task_params: jax.Array  # [N, task_dim] float32: each task's parameter vector
  task_ids: jax.Array  # [N] int32: each task's index in its family's task list

  @property
  def num_tasks(self) -> int:
    return self.observations.shape[0]

  @property
  def episodes_per_task(self) -> int:
    return self.observations.shape[1]

  @property
  def episode_length(self) -> int:
    return self.observations.shape[2]

  def returns(self) -> np.ndarray:
    """Undiscounted return of every episode, `[N, E]`."""
    return np.asarray((self.rewards * self.valid).sum(-1))


_FLOAT, _BOOL, _INT = np.float32, np.bool_, np.int32


def _expected_fields(obs_dim: int, act_dim: int, task_dim: int) -> dict[str, tuple[Any, tuple]]:
  """Field -> (dtype, shape pattern). Pattern entries: int = exact, str = a shared named size."""
  nets = ('N', 'E', 'T')
  return {
      'observations': (_FLOAT, nets + (obs_dim,)),
      'actions': (_FLOAT, nets + (act_dim,)),
      'rewards': (_FLOAT, nets),
      'next_observations': (_FLOAT, nets + (obs_dim,)),
      'terminals': (_BOOL, nets),
      'timeouts': (_BOOL, nets),
      'valid': (_BOOL, nets),
      'task_params': (_FLOAT, ('N', task_dim)),
      'task_ids': (_INT, ('N',)),
  }


# Relative slack of the range checks: actions are stored as executed (clipped to the box), so
# they match it up to float32 rounding.
RANGE_SLACK = 1e-5


def validate(arrays: dict[str, np.ndarray], *, obs_dim: int, act_dim: int, task_dim: int,
             source: str = 'dataset', bounds: tuple[float, float, float] | None = None) -> None:
  """Checks names, dtypes, shapes, finiteness, that every episode has a valid step and, with
  `bounds = (obs_bound, action_low, action_high)`, that the valid steps' observations satisfy
  `|obs| <= obs_bound` and their actions lie in the action box (both with `RANGE_SLACK`);
  raises `DatasetError` on the first problem."""
  sizes: dict[str, int] = {}
  for field, (dtype, pattern) in _expected_fields(obs_dim, act_dim, task_dim).items():
    if field not in arrays:
      raise DatasetError(f'{source}: missing array {field!r} (expected shape '
                         f'{_fmt(pattern)}, dtype {np.dtype(dtype).name})')
    value = arrays[field]
    if value.dtype != dtype:
      raise DatasetError(f'{source}: {field!r} has dtype {value.dtype}, expected '
                         f'{np.dtype(dtype).name}')
    if value.ndim != len(pattern):
      raise DatasetError(f'{source}: {field!r} has shape {value.shape}, expected '
                         f'{_fmt(pattern)} ({len(pattern)} axes)')
    for axis, (want, got) in enumerate(zip(pattern, value.shape)):
      if isinstance(want, str):
        if sizes.setdefault(want, got) != got:
          raise DatasetError(f'{source}: {field!r} has shape {value.shape}: axis {axis} ({want}) '
                             f'is {got}, but other arrays have {want}={sizes[want]}')
      elif want != got:
        raise DatasetError(f'{source}: {field!r} has shape {value.shape}: axis {axis} must be '
                           f'{want} (the family\'s dimension), expected {_fmt(pattern)}')
    if value.dtype == _FLOAT and not np.all(np.isfinite(value)):
      bad = int(np.size(value) - np.isfinite(value).sum())
      raise DatasetError(f'{source}: {field!r} has {bad} non-finite values (NaN or inf)')
  if min(sizes.values()) < 1:
    raise DatasetError(f'{source}: empty dataset (sizes {sizes})')
  valid = arrays['valid']
  empty = np.argwhere(~valid.any(-1))
  if len(empty):
    n, e = empty[0]
    raise DatasetError(f"{source}: 'valid' is all False in {len(empty)} episodes (first: task "
                       f'{n}, episode {e}); every episode must have at least one valid step')
  gaps = np.argwhere(valid[..., 1:] & ~valid[..., :-1])
  if len(gaps):  # the samplers count an episode's valid steps as a prefix of it
    n, e, t = gaps[0]
    raise DatasetError(f"{source}: 'valid' is not a prefix of the episode in {len(gaps)} places "
                       f'(first: task {n}, episode {e}, step {t + 1} valid after an invalid step); '
                       'an episode ends at its first invalid step')
  if bounds is not None:
    obs_bound, low, high = bounds
    slack = RANGE_SLACK * max(abs(low), abs(high), 1.0)
    for field in ('observations', 'next_observations'):
      x = np.abs(arrays[field][valid])
      if x.size and x.max() > obs_bound * (1 + RANGE_SLACK):
        raise DatasetError(f'{source}: {field!r} reaches {x.max():.6g} in absolute value, '
                           f"above the family's bound {obs_bound:g} (`observation_bound()`)")
    a = arrays['actions'][valid]
    if a.size and (a.min() < low - slack or a.max() > high + slack):
      raise DatasetError(f"{source}: 'actions' span [{a.min():.6g}, {a.max():.6g}], outside "
                         f"the family's action box [{low:g}, {high:g}]")


def _fmt(pattern) -> str:
  return '[' + ', '.join(str(p) for p in pattern) + ']'


def to_numpy(data: Trajectories) -> dict[str, np.ndarray]:
  return {k: np.asarray(v) for k, v in vars(data).items()}


def save(path: str, data: Trajectories, meta: dict[str, Any]) -> None:
  """Writes `data` and `meta` to the folder `path` atomically (temp folder, then rename).

  An existing dataset at `path` is replaced only after the new one is completely written. In a
  multi-process run only process 0 writes (`mdx.distributed`).
  """
  if not distributed.is_writer():
    return
  arrays = to_numpy(data)
  returns = data.returns()
  meta = dict(meta, format_version=FORMAT_VERSION,
              num_tasks=int(data.num_tasks), episodes_per_task=int(data.episodes_per_task),
              episode_length=int(data.episode_length),
              task_ids=[int(i) for i in arrays['task_ids']],
              task_params=arrays['task_params'].tolist(),
              per_task_return_mean=returns.mean(1).tolist(),
              per_task_return_std=returns.std(1).tolist(),
              mean_return=float(returns.mean()))
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix='.tmp-', dir=parent)
  try:
    with open(os.path.join(tmp, DATA_FILE), 'wb') as f:
      np.savez(f, **arrays)
    with open(os.path.join(tmp, META_FILE), 'w') as f:
      json.dump(meta, f, indent=1)
    if os.path.exists(path):
      old = tempfile.mkdtemp(prefix='.old-', dir=parent)
      os.rename(path, os.path.join(old, 'd'))
      os.rename(tmp, path)
      shutil.rmtree(old)
    else:
      os.rename(tmp, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def exists(path: str) -> bool:
  """True when a complete dataset (both files) is at `path`."""
  return (os.path.isfile(os.path.join(path, DATA_FILE))
          and os.path.isfile(os.path.join(path, META_FILE)))


def load(path: str, *, obs_dim: int, act_dim: int, task_dim: int,
         family: str | None = None, bounds: tuple[float, float, float] | None = None
         ) -> tuple[Trajectories, dict[str, Any]]:
  """Loads and validates a dataset folder written by `save`.

  Args:
    path: the dataset folder.
    obs_dim, act_dim, task_dim: the family's dimensions the arrays must match.
    family: if given, `meta.json`'s `family` must equal it.
    bounds: `(obs_bound, action_low, action_high)` of the family, checked by `validate`.

  Returns:
    `(trajectories, meta)`.

  Raises:
    DatasetError: naming the file and field that is missing or malformed, and how to recover.
  """
  try:
    return _load(path, obs_dim=obs_dim, act_dim=act_dim, task_dim=task_dim, family=family,
                 bounds=bounds)
  except DatasetError as err:
    if not os.path.isdir(path):
      raise
    raise DatasetError(f'{err}\n  The dataset {path} is damaged or foreign: delete that folder '
                       'and rerun experiments/collect.py (or the pipeline) to collect it '
                       'again.') from None


def _load(path, *, obs_dim, act_dim, task_dim, family, bounds):
  data_file, meta_file = os.path.join(path, DATA_FILE), os.path.join(path, META_FILE)
  for f in (data_file, meta_file):
    if not os.path.isfile(f):
      raise DatasetError(f'{f}: not found (a dataset folder holds {DATA_FILE} and {META_FILE}; '
                         'run experiments/collect.py to create it)')
  try:
    with open(meta_file) as f:
      meta = json.load(f)
  except json.JSONDecodeError as e:
    raise DatasetError(f'{meta_file}: not valid JSON ({e})') from e
  if meta.get('format_version') != FORMAT_VERSION:
    raise DatasetError(f'{meta_file}: format_version is {meta.get("format_version")!r}, '
                       f'this mdx reads version {FORMAT_VERSION}')
  if family is not None and meta.get('family') != family:
    raise DatasetError(f'{meta_file}: family is {meta.get("family")!r}, expected {family!r}')
  try:
    with np.load(data_file, allow_pickle=False) as npz:
      arrays = {k: npz[k] for k in npz.files}
  except Exception as e:  # zipfile/pickle/OS errors all mean the same thing to the user.
    raise DatasetError(f'{data_file}: cannot be read as .npz ({type(e).__name__}: {e})') from e
  validate(arrays, obs_dim=obs_dim, act_dim=act_dim, task_dim=task_dim, source=data_file,
           bounds=bounds)
  fields = _expected_fields(obs_dim, act_dim, task_dim)
  return Trajectories(**{k: arrays[k] for k in fields}), meta


def concat_episodes(datasets):
  """Joins datasets of the same tasks along the episode axis."""
  first = datasets[0]
  for d in datasets[1:]:
    if not bool(np.all(d.task_ids == first.task_ids)):
      raise ValueError('datasets to join must hold the same tasks in the same order')
  cat = lambda *xs: np.concatenate(xs, axis=1)
  fields = {k: cat(*[getattr(d, k) for d in datasets])
            for k in ('observations', 'actions', 'rewards', 'next_observations', 'terminals',
                      'timeouts', 'valid')}
  return first.replace(**fields)
