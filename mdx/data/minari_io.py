"""Minari (D4RL's successor) import and export of mdx datasets (optional extra:
`pip install -c constraints.txt -e '.[minari]'`).

Export (`to_minari`): one Minari episode per mdx episode, its valid steps only (`L` steps give
`L + 1` observations, Minari's layout), `terminations` / `truncations` from mdx's `terminals` /
`timeouts`. Each episode's metadata holds `task_id`, `task_params` and `tier`; the dataset's
metadata holds mdx's `meta.json` under `mdx_meta`, and the observation and action spaces are the
family's bounds (`Box`).

Import (`from_minari`): episodes are grouped by their `task_id` metadata (a dataset without it,
e.g. a single-task D4RL-style one, takes `task_params` for all its episodes), each padded to the
family's episode length with frozen states (`valid = False`, zero actions and rewards) as mdx's
own collection leaves them, and the whole checked by `trajectories.validate` against the family
(dimensions, finiteness, observation bound, action box) before it is returned.

  data, meta = from_minari('mdx/point_robot/test-expert-v0', family)
"""
from __future__ import annotations

import json
import warnings
from typing import Any, Optional

import numpy as np

from mdx.data import trajectories
from mdx.data.trajectories import DatasetError, Trajectories


def _minari():
  try:
    import minari  # pylint: disable=g-import-not-at-top
  except ImportError as err:
    raise ImportError("Minari import/export needs the 'minari' extra: pip install -c "
                      "constraints.txt -e '.[minari]'") from err
  return minari


def _spaces(family):
  from gymnasium import spaces  # pylint: disable=g-import-not-at-top  (installed with minari)
  bound = float(family.observation_bound())
  obs = spaces.Box(-bound, bound, (family.obs_dim,), np.float32)
  act = spaces.Box(float(family.action_low), float(family.action_high), (family.act_dim,),
                   np.float32)
  return obs, act


def to_minari(data: Trajectories, meta: dict[str, Any], dataset_id: str, family):
  """Writes `data` (an mdx dataset of `family`, with its `meta.json` dict) as the local Minari
  dataset `dataset_id` (under `MINARI_DATASETS_PATH`, default `~/.minari/datasets`).

  Returns:
    The `minari.MinariDataset`.
  """
  minari = _minari()
  from minari.data_collector import EpisodeBuffer  # pylint: disable=g-import-not-at-top
  arrays = trajectories.to_numpy(data)
  trajectories.validate(arrays, obs_dim=family.obs_dim, act_dim=family.act_dim,
                        task_dim=family.task_dim, source='the dataset to export')
  episodes, metadata = [], []
  for n in range(data.num_tasks):
    for e in range(data.episodes_per_task):
      steps = int(arrays['valid'][n, e].sum())  # a prefix of the episode (`validate`)
      obs = np.concatenate([arrays['observations'][n, e, :steps],
                            arrays['next_observations'][n, e, steps - 1:steps]])
      episodes.append(EpisodeBuffer(
          id=len(episodes), observations=obs, actions=arrays['actions'][n, e, :steps],
          rewards=arrays['rewards'][n, e, :steps],
          terminations=arrays['terminals'][n, e, :steps],
          truncations=arrays['timeouts'][n, e, :steps]))
      metadata.append({'task_id': int(arrays['task_ids'][n]),
                       'task_params': arrays['task_params'][n].astype(np.float32),
                       'tier': str(meta.get('tier', ''))})
  obs_space, act_space = _spaces(family)
  with warnings.catch_warnings():  # Minari's advice to name an author, a permalink, an env spec
    warnings.filterwarnings('ignore', category=UserWarning, module='minari')
    dataset = minari.create_dataset_from_buffers(
        dataset_id, episodes, observation_space=obs_space, action_space=act_space,
        algorithm_name=f"mdx behaviour policy: {meta.get('tier', '')}", author='mdx',
        description=f"mdx {family.name} {meta.get('split', '')}/{meta.get('tier', '')} data "
        f"({json.dumps(meta.get('behaviour', ''))})", data_format='hdf5')
  dataset.storage.update_episode_metadata(metadata, range(len(episodes)))
  dataset.storage.update_metadata({'mdx_meta': json.dumps(meta)})
  return dataset


def from_minari(dataset_id: str, family, *, task_params: Optional[np.ndarray] = None,
                episodes_per_task: Optional[int] = None) -> tuple[Trajectories, dict[str, Any]]:
  """Loads the local Minari dataset `dataset_id` as a validated mdx dataset of `family`.

  Args:
    dataset_id: a dataset under `MINARI_DATASETS_PATH`.
    family: the `TaskFamily` the data must fit.
    task_params: `[task_dim]`, the task of every episode, for datasets whose episodes carry no
      `task_id` / `task_params` metadata.
    episodes_per_task: keep the first this many episodes of each task (needed when the tasks
      hold different numbers of episodes: mdx's arrays are `[tasks, episodes, T]`).

  Returns:
    `(trajectories, meta)`; `meta` is the exported `meta.json` where the dataset came from mdx,
    else a new one naming the Minari source.
  """
  minari = _minari()
  dataset = minari.load_dataset(dataset_id)
  storage = dataset.storage
  source = f'Minari dataset {dataset_id!r}'
  ids = list(range(storage.total_episodes))
  metas = list(storage.get_episode_metadata(ids))
  tasks: dict[int, list[int]] = {}
  params: dict[int, np.ndarray] = {}
  for i, m in zip(ids, metas):
    if 'task_id' in m and 'task_params' in m:
      t = int(m['task_id'])
      params[t] = np.asarray(m['task_params'], np.float32).reshape(-1)
    elif task_params is not None:
      t = 0
      params[t] = np.asarray(task_params, np.float32).reshape(-1)
    else:
      raise DatasetError(f'{source}: episode {i} has no task_id / task_params metadata; pass '
                         'task_params=[...] (the task of every episode) to import it')
    tasks.setdefault(t, []).append(i)
  counts = {t: len(v) for t, v in tasks.items()}
  e = episodes_per_task or min(counts.values())
  if episodes_per_task is None and len(set(counts.values())) > 1:
    raise DatasetError(f'{source}: the tasks hold different numbers of episodes ({counts}); '
                       'pass episodes_per_task=E to keep the first E of each')
  if e > min(counts.values()):
    raise DatasetError(f'{source}: episodes_per_task={e}, but a task holds only '
                       f'{min(counts.values())} episodes ({counts})')
  length = int(family.episode_length)
  order = sorted(tasks)
  shape = (len(order), e, length)
  out = dict(observations=np.zeros(shape + (family.obs_dim,), np.float32),
             actions=np.zeros(shape + (family.act_dim,), np.float32),
             rewards=np.zeros(shape, np.float32),
             next_observations=np.zeros(shape + (family.obs_dim,), np.float32),
             terminals=np.zeros(shape, bool), timeouts=np.zeros(shape, bool),
             valid=np.zeros(shape, bool))
  episodes = {ep.id: ep for ep in dataset.iterate_episodes(
      [i for t in order for i in tasks[t][:e]])}
  for n, t in enumerate(order):
    for j, i in enumerate(tasks[t][:e]):
      ep = episodes[i]
      obs = np.asarray(ep.observations, np.float32)
      steps = len(ep.rewards)
      if steps > length or obs.shape != (steps + 1, family.obs_dim):
        raise DatasetError(f'{source}: episode {i} has {steps} steps and observations of shape '
                           f'{obs.shape}; {family.name} takes at most {length} steps of '
                           f'[steps + 1, {family.obs_dim}] observations')
      out['observations'][n, j, :steps] = obs[:-1]
      out['next_observations'][n, j, :steps] = obs[1:]
      out['observations'][n, j, steps:] = obs[-1]  # frozen after the end, as mdx collects
      out['next_observations'][n, j, steps:] = obs[-1]
      out['actions'][n, j, :steps] = np.asarray(ep.actions, np.float32).reshape(steps, -1)
      out['rewards'][n, j, :steps] = ep.rewards
      out['terminals'][n, j, :steps] = ep.terminations
      out['timeouts'][n, j, :steps] = ep.truncations
      out['valid'][n, j, :steps] = True
  out['task_params'] = np.stack([params[t] for t in order]).astype(np.float32)
  out['task_ids'] = np.asarray(order, np.int32)
  from mdx.data.collect import bounds  # pylint: disable=g-import-not-at-top
  trajectories.validate(out, obs_dim=family.obs_dim, act_dim=family.act_dim,
                        task_dim=family.task_dim, source=source, bounds=bounds(family))
  raw = storage.metadata.get('mdx_meta')
  meta = json.loads(raw) if raw else {'family': family.name, 'source': f'minari:{dataset_id}'}
  return Trajectories(**out), meta
