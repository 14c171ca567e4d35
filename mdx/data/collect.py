"""In-graph data collection: episodes stepped with `lax.scan`, vmapped over tasks and episodes."""
from __future__ import annotations

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np

from mdx import distributed
from mdx import workdir as layout
from mdx.data import policies, trajectories
from mdx.data.policies import BehaviourFn
from mdx.data.trajectories import Trajectories
from mdx.envs import Task, TaskFamily
from mdx.progress import Progress, from_config, steps


def episode(family: TaskFamily, task: Task, policy: BehaviourFn, rng: jax.Array,
            progress: Progress = Progress()) -> Trajectories:
  """One episode of one task (no batch axes); returns arrays with `N = E = 1` squeezed away;
  `progress` reports from inside its scan (`mdx.progress`).

  Returns:
    A `Trajectories` whose step arrays are `[T, ...]` and `task_params` `[task_dim]`.
  """
  reset_rng, step_rng = jax.random.split(rng)
  state = family.reset(task, reset_rng)

  def body(state, xs):
    rng, t = xs
    progress.tick(t, family.episode_length)
    action = family.clip_action(policy(task, state, rng))
    nxt = family.step(task, state, action)
    terminal = nxt.done & (nxt.t < family.episode_length)
    out = dict(observations=state.obs, actions=action, rewards=nxt.reward,
               next_observations=nxt.obs, terminals=terminal & ~state.done,
               timeouts=(nxt.t >= family.episode_length) & ~state.done, valid=~state.done)
    return nxt, out

  _, out = jax.lax.scan(body, state, (jax.random.split(step_rng, family.episode_length),
                                      steps(family.episode_length)))
  out['rewards'] = jnp.where(out['valid'], out['rewards'], 0.0)
  return Trajectories(task_params=task.params, task_ids=task.task_id, **out)


def collect(family: TaskFamily, tasks: Task, policy: BehaviourFn, rng: jax.Array,
            episodes: int, progress: Progress = Progress()) -> Trajectories:
  """`episodes` episodes of every task in `tasks` (`[N]`), all in one compiled program
  (`progress`: its progress lines, one per reported step of the vmapped episodes).

  Returns:
    `Trajectories` with step arrays `[N, episodes, T, ...]`.
  """
  num_tasks = tasks.task_id.shape[0]
  rngs = jax.random.split(rng, (num_tasks, episodes))
  per_episode = lambda task, r: episode(family, task, policy, r, progress)
  batched = jax.vmap(jax.vmap(per_episode, in_axes=(None, 0)), in_axes=(0, 0))(tasks, rngs)
  # Task fields came out with an episode axis; keep one copy per task.
  return batched.replace(task_params=batched.task_params[:, 0], task_ids=batched.task_ids[:, 0])


def collect_datasets(config, workdir: str, family: TaskFamily) -> list[str]:
  """Collects every dataset the pipeline needs into `workdir/data/{split}_{tier}`.

  Training tasks: the tiers and episode counts of `config.data.train_episodes`; validation and
  test tasks: `config.data.warm_start_episodes` warm-start episodes of every tier. A dataset
  already complete on disk is kept (so an interrupted collection resumes); each is written
  atomically. Job `i` draws from `fold_in(PRNGKey(config.seed), 1000 + i)`, the validation jobs
  last (so adding them left the train and test data of earlier runs unchanged).

  Returns:
    The dataset folders, in collection order.
  """
  jobs = [('train', tier, n) for tier, n in dict(config.data.train_episodes).items()]
  jobs += [('test', tier, config.data.warm_start_episodes) for tier in policies.TIERS]
  jobs += [('validation', tier, config.data.warm_start_episodes) for tier in policies.TIERS]
  if distributed.is_writer():  # process 0's own temporaries may be in the making otherwise
    remove_stale_temporaries(os.path.join(workdir, 'data'))
  paths = []
  for index, (split, tier, episodes) in enumerate(jobs):
    path = layout.dataset_dir(workdir, split, tier)
    paths.append(path)
    if trajectories.exists(path):
      load_dataset(workdir, family, split, tier)  # every array checked, or a named error
      check_meta(config, workdir, family, split, tier, episodes)
      print(f'[collect] {split}/{tier}: exists, checked, kept', flush=True)
      continue
    tasks = family.split_tasks(split)
    policy = policies.behaviour_policy(family, tier, config.data.random_from)
    rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1000 + index)
    report = from_config(config, f'collect {split}/{tier}')
    run = jax.jit(lambda t, r, p=policy: collect(family, t, p, r, episodes, report))
    data = jax.device_get(run(tasks, rng))
    trajectories.validate(trajectories.to_numpy(data), obs_dim=family.obs_dim,
                          act_dim=family.act_dim, task_dim=family.task_dim,
                          source=f'the collected {split}/{tier} data', bounds=bounds(family))
    meta = dict(family=family.name, split=split, tier=tier, seed=int(config.seed),
                collection_index=index, env=_env(config),
                behaviour=policies.behaviour_id(family, tier, config.data.random_from))
    trajectories.save(path, data, meta)
    print(f'[collect] {split}/{tier}: {data.num_tasks} tasks x {episodes} episodes, '
          f'mean return {data.returns().mean():.3f}', flush=True)
  # A multi-process run: every process collects the same data, process 0 writes it
  # (`trajectories.save`), and none goes on before it is written.
  distributed.barrier('mdx_collect')
  return paths


def bounds(family: TaskFamily) -> tuple[float, float, float]:
  """`(obs_bound, action_low, action_high)`: the ranges datasets of `family` are checked against."""
  return (float(family.observation_bound()), float(family.action_low), float(family.action_high))


def _env(config) -> dict:
  return json.loads(json.dumps(dict(config.env)))


def remove_stale_temporaries(data_dir: str) -> None:
  """Removes the temporary folders of collections that were killed (`.tmp-*`, `.old-*`)."""
  if not os.path.isdir(data_dir):
    return
  for name in os.listdir(data_dir):
    if name.startswith(('.tmp-', '.old-')):
      shutil.rmtree(os.path.join(data_dir, name), ignore_errors=True)
      print(f'[collect] removed {os.path.join(data_dir, name)} (left by a killed collection)',
            flush=True)


def check_meta(config, workdir: str, family: TaskFamily, split: str, tier: str,
               episodes: int) -> None:
  """Raises `DatasetError` when a kept dataset's `meta.json` contradicts the config (family,
  seed, environment overrides, tasks, episode counts and length) or the behaviour policy (its
  noise, the expert checkpoint's hash). Fields an older `meta.json` lacks are not compared."""
  path = layout.dataset_dir(workdir, split, tier)
  with open(os.path.join(path, trajectories.META_FILE)) as f:
    meta = json.load(f)
  want = dict(family=family.name, split=split, tier=tier, seed=int(config.seed),
              episodes_per_task=int(episodes), episode_length=int(family.episode_length),
              task_ids=[int(i) for i in np.asarray(family.split_tasks(split).task_id)],
              env=_env(config),
              behaviour=policies.behaviour_id(family, tier, config.data.random_from))
  diffs = [f'{k}: {meta.get(k, "absent")!r} in meta.json, {v!r} in this config'
           for k, v in want.items() if k in meta and meta[k] != v]
  if diffs:
    raise trajectories.DatasetError(
        f'{path} was collected with another config:\n  ' + '\n  '.join(diffs)
        + '\n  Use a new --workdir, or delete that folder to collect it again with this config.')


def load_dataset(workdir: str, family: TaskFamily, split: str, tier: str) -> Trajectories:
  """The dataset `workdir/data/{split}_{tier}`, validated against `family` (`trajectories.load`:
  dimensions, finiteness, valid steps, observation and action ranges)."""
  data, _ = trajectories.load(layout.dataset_dir(workdir, split, tier), obs_dim=family.obs_dim,
                              act_dim=family.act_dim, task_dim=family.task_dim,
                              family=family.name, bounds=bounds(family))
  return data
