"""Task-conditioned expert policies for the locomotion families, and what they are trained with.

One Brax-PPO policy per family sees the observation concatenated with the task features
(`family.task_features(task.params)`: the target velocity, the direction, `(cos, sin)` of the
angle, or the four log-scale physics exponents) and acts in every task of the family. The
parameters live next to this file:

  <family>.msgpack          the final ("expert") policy: normalizer statistics + policy MLP
  <family>_medium.msgpack   an earlier policy of the same run (Cheetah-Dir: of a re-run of its
                            first run), about half-way between uniform actions and the expert in
                            return on the validation tasks (Ant-Dir: in speed along the goal)
  <family>_random.msgpack   (Hopper/Walker-Param) an early policy of a re-run of the same PPO
                            configuration, chosen on validation tasks to be low-return
                            (`experiments/select_tier.py`); its data is sampled, as the
                            paper's random tier is rollouts early in SAC's training
  <family>.json             command, config, steps, wall time and measured quality of the run
                            (and `random_tier`, `medium_tier`: how those checkpoints were chosen
                            on validation tasks, `experiments/select_tier.py`)

`experiments/train_expert.py` writes them; `load_expert` reads them back as a pure, vmappable
`policy_fn(task, state, rng) -> action`.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Callable, Union

import jax
import jax.numpy as jnp
from brax.envs import base as brax_env_base
from brax.envs.wrappers import training as brax_wrappers
from brax.training.acme import running_statistics
from brax.training.agents.ppo import networks as ppo_networks
from flax import linen, serialization

from mdx.envs.base import EnvState, Task, TaskFamily

EXPERT_DIR = pathlib.Path(__file__).resolve().parent
TIERS = ('expert', 'medium')  # committed for every locomotion family
EARLY_TIER = 'random'  # an optional early checkpoint: `<family>_random.msgpack`

PolicyFn = Callable[[Task, EnvState, jax.Array], jax.Array]


def observation(family: TaskFamily, task: Task, state: EnvState) -> jax.Array:
  """What a task-conditioned expert sees: `[obs_dim + feature_dim]` = obs ++ task features."""
  return jnp.concatenate([state.obs, family.task_features(task.params)], axis=-1)


class TaskConditionedEnv(brax_env_base.Env):
  """A `brax.envs.Env` view of a family for Brax's trainers.

  `reset(rng)` draws a task from `family.sample_task_params` (the training distribution) and
  starts an episode of it; the observation is `observation(family, task, state)`. The family is
  used with an unbounded episode length, so `done` means termination only (a fall) and Brax's
  `EpisodeWrapper` applies the time limit (`truncation`), as Brax's trainers expect.
  """

  def __init__(self, family: TaskFamily, task_params: jax.Array | None = None):
    """`task_params [k, task_dim]`, if given, replaces the training distribution by a uniform
    draw among these k tasks (a feasibility probe on chosen tasks, never a committed expert)."""
    self._family = dataclasses.replace(family, episode_length=2**30)
    if task_params is not None:
      task_params = jnp.asarray(task_params, jnp.float32)
      if task_params.ndim != 2 or task_params.shape[1] != family.task_dim:
        raise ValueError(f'task_params must have shape [k, {family.task_dim}] '
                         f'(k tasks of {family.name}), got {task_params.shape}')
    self._task_params = task_params

  @property
  def family(self) -> TaskFamily:
    return self._family

  def reset(self, rng: jax.Array) -> brax_env_base.State:
    task_rng, reset_rng = jax.random.split(rng)
    if self._task_params is None:
      params = self._family.sample_task_params(task_rng, 1)[0]
    else:
      params = jax.random.choice(task_rng, self._task_params)
    task = Task(params=params, task_id=jnp.zeros((), jnp.int32))
    state = self._family.reset(task, reset_rng)
    return brax_env_base.State(
        pipeline_state=(task, state), obs=observation(self._family, task, state),
        reward=state.reward, done=state.done.astype(jnp.float32), metrics={})

  def step(self, state: brax_env_base.State, action: jax.Array) -> brax_env_base.State:
    task, env_state = state.pipeline_state
    env_state = self._family.step(task, env_state, action)
    return state.replace(pipeline_state=(task, env_state),
                         obs=observation(self._family, task, env_state),
                         reward=env_state.reward, done=env_state.done.astype(jnp.float32))

  @property
  def observation_size(self) -> int:
    return self._family.obs_dim + self._family.feature_dim

  @property
  def action_size(self) -> int:
    return self._family.act_dim

  @property
  def backend(self) -> str:
    return getattr(self._family, 'backend', 'none')


class RedrawAutoResetWrapper(brax_wrappers.Wrapper):
  """Brax's `AutoResetWrapper`, except that a finished episode restarts from a fresh `reset`.

  Brax's wrapper restarts every finished episode from the first state of its slot, so with
  `TaskConditionedEnv` each of the `num_envs` slots keeps one task until PPO's next full reset
  (`num_resets_per_eval`): 64 slots train on 64 tasks for a long stretch. Here a finished
  episode draws a new task and initial state (the inner batched env's `reset` with a per-slot key
  kept in `info['redraw_rng']`), computed only on steps where some episode ended.
  """

  def reset(self, rng: jax.Array) -> brax_env_base.State:
    state = self.env.reset(rng)
    state.info['redraw_rng'] = _split_keys(rng)[0]
    return state

  def step(self, state: brax_env_base.State, action: jax.Array) -> brax_env_base.State:
    if 'steps' in state.info:
      state.info.update(steps=jnp.where(state.done, jnp.zeros_like(state.info['steps']),
                                        state.info['steps']))
    state = self.env.step(state.replace(done=jnp.zeros_like(state.done)), action)
    next_rng, reset_rng = _split_keys(state.info['redraw_rng'])
    state.info.update(redraw_rng=next_rng)

    def restart(state):
      fresh = self.env.reset(reset_rng)
      where_done = lambda new, old: jnp.where(  # noqa: E731
          jnp.reshape(state.done, state.done.shape + (1,) * (old.ndim - state.done.ndim)) > 0,
          new, old)
      return state.replace(
          pipeline_state=jax.tree.map(where_done, fresh.pipeline_state, state.pipeline_state),
          obs=jax.tree.map(where_done, fresh.obs, state.obs))

    return jax.lax.cond(jnp.any(state.done > 0), restart, lambda state: state, state)


def _split_keys(keys: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Two new raw keys per raw key of `keys [..., 2]` (any leading batch axes)."""
  split = jax.vmap(jax.random.split)(jnp.reshape(keys, (-1, 2)))
  return jnp.reshape(split[:, 0], keys.shape), jnp.reshape(split[:, 1], keys.shape)


def wrap_for_training(env: brax_env_base.Env, episode_length: int, action_repeat: int = 1,
                      randomization_fn: Any = None) -> brax_env_base.Env:
  """Brax's `wrap` (vmap, episode limit) with `RedrawAutoResetWrapper` as the auto-reset."""
  if randomization_fn is not None:
    raise ValueError('RedrawAutoResetWrapper does not support Brax domain randomization')
  env = brax_wrappers.VmapWrapper(env)
  env = brax_wrappers.EpisodeWrapper(env, episode_length, action_repeat)
  return RedrawAutoResetWrapper(env)


def make_networks(obs_size: int, act_size: int, network: dict[str, Any]) -> ppo_networks.PPONetworks:
  """Brax PPO networks of the recorded architecture (`network` from `<family>.json`)."""
  normalize = (running_statistics.normalize if network.get('normalize_observations', True)
               else (lambda x, y: x))
  return ppo_networks.make_ppo_networks(
      (obs_size,), act_size, preprocess_observations_fn=normalize,
      policy_hidden_layer_sizes=tuple(network['policy_hidden_layer_sizes']),
      value_hidden_layer_sizes=tuple(network['value_hidden_layer_sizes']),
      activation=getattr(linen, network.get('activation', 'swish')))


def params_template(obs_size: int, act_size: int, network: dict[str, Any], *,
                    with_value: bool = False) -> tuple[Any, ...]:
  """`(normalizer_params, policy_params)` of the right structure, for restoring.

  With `with_value`, `(normalizer_params, policy_params, value_params)`: a training run's resume
  state (`experiments/train_expert.py --config.resume_from`).
  """
  nets = make_networks(obs_size, act_size, network)
  normalizer = running_statistics.init_state(jax.ShapeDtypeStruct((obs_size,), jnp.float32))
  params = (normalizer, nets.policy_network.init(jax.random.PRNGKey(0)))
  return params + (nets.value_network.init(jax.random.PRNGKey(0)),) if with_value else params


def to_bytes(params: tuple[Any, ...]) -> bytes:
  """Serializes `(normalizer_params, policy_params[, value_params])` (msgpack)."""
  return serialization.msgpack_serialize(serialization.to_state_dict(jax.device_get(params)))


def from_bytes(template: tuple[Any, ...], data: bytes) -> tuple[Any, ...]:
  return serialization.from_state_dict(template, serialization.msgpack_restore(data))


def paths(name: str, tier: str = 'expert',
          directory: Union[str, pathlib.Path, None] = None) -> tuple[pathlib.Path, pathlib.Path]:
  """`(params_path, meta_path)` of a family's expert files."""
  if tier not in TIERS + (EARLY_TIER,):
    raise ValueError(f'tier must be one of {TIERS + (EARLY_TIER,)}, got {tier!r}')
  directory = pathlib.Path(directory) if directory is not None else EXPERT_DIR
  stem = name if tier == 'expert' else f'{name}_{tier}'
  return directory / f'{stem}.msgpack', directory / f'{name}.json'


def load_expert(family: Union[str, TaskFamily], tier: str = 'expert', *,
                deterministic: bool = True,
                directory: Union[str, pathlib.Path, None] = None) -> PolicyFn:
  """Loads a task-conditioned policy as a pure `policy_fn(task, state, rng) -> action [act_dim]`.

  Args:
    family: a locomotion family or its registered name.
    tier: 'expert' (final policy), 'medium' (an earlier checkpoint of the same run) or 'random'
      (an early checkpoint, where the family has one; `select_tier.py`).
    deterministic: True returns the mode `tanh(mean)` and ignores `rng`; False samples from the
      policy's tanh-Gaussian with `rng` (more diverse data for offline datasets).
    directory: where the files are (default: this package's folder).

  Returns:
    `policy_fn`; unbatched, so `jax.vmap` it over tasks/states/keys.

  Raises:
    FileNotFoundError: naming the missing parameter or metadata file.
    ValueError: if the family's backend or dimensions differ from the ones trained on.
  """
  if isinstance(family, str):
    from mdx.envs import make_family  # pylint: disable=g-import-not-at-top
    family = make_family(family)
  params_path, meta_path = paths(family.name, tier, directory)
  for path in (params_path, meta_path):
    if not path.exists():
      raise FileNotFoundError(
          f'No {tier} policy for {family.name!r}: {path} is missing. Train one with '
          f'`python experiments/train_expert.py --family={family.name}`.')
  meta = json.loads(meta_path.read_text())
  obs_size, act_size = family.obs_dim + family.feature_dim, family.act_dim
  if (meta['obs_size'], meta['act_size']) != (obs_size, act_size):
    raise ValueError(f'{params_path} was trained with obs/act sizes '
                     f'{(meta["obs_size"], meta["act_size"])}, family has {(obs_size, act_size)}')
  backend = getattr(family, 'backend', None)
  if meta.get('backend') != backend:
    raise ValueError(f'{params_path} was trained on backend {meta.get("backend")!r}, '
                     f'the family uses {backend!r}')
  params = from_bytes(params_template(obs_size, act_size, meta['network']),
                      params_path.read_bytes())
  return make_policy_fn(family, params, meta['network'], deterministic=deterministic)


def make_policy_fn(family: TaskFamily, params: tuple[Any, Any], network: dict[str, Any], *,
                   deterministic: bool = True) -> PolicyFn:
  """`policy_fn(task, state, rng) -> action` from `(normalizer_params, policy_params)`."""
  nets = make_networks(family.obs_dim + family.feature_dim, family.act_dim, network)
  dist = nets.parametric_action_distribution

  def policy_fn(task: Task, state: EnvState, rng: jax.Array) -> jax.Array:
    logits = nets.policy_network.apply(params[0], params[1], observation(family, task, state))
    if deterministic:
      return dist.mode(logits)
    return dist.sample(logits, rng)

  return policy_fn


# --- measuring a policy on a family's tasks ------------------------------------------------------


def rollout(family: TaskFamily, policy_fn: PolicyFn, tasks: Task, rng: jax.Array) -> dict:
  """One episode per task; the library never jits, so wrap this in `jax.jit` with static args.

  Args:
    family: the family.
    policy_fn: `policy_fn(task, state, rng) -> action`.
    tasks: `[n]` tasks.
    rng: key.

  Returns:
    dict with `reward [n, T]`, `velocity [n, T, 3]` (torso, from positions over `dt`),
    `alive [n, T]` (the step happened before `done`), `ret [n]` (masked return).
  """
  n = tasks.params.shape[0]
  reset_rng, step_rng = jax.random.split(rng)
  state = jax.vmap(family.reset)(tasks, jax.random.split(reset_rng, n))

  def body(state, key):
    actions = jax.vmap(policy_fn)(tasks, state, jax.random.split(key, n))
    new = jax.vmap(family.step)(tasks, state, actions)
    velocity = (family.torso_position(new) - family.torso_position(state)) / family.dt
    return new, (new.reward, velocity, ~state.done)

  _, (reward, velocity, alive) = jax.lax.scan(
      body, state, jax.random.split(step_rng, family.episode_length))
  reward, velocity, alive = (jnp.swapaxes(x, 0, 1) for x in (reward, velocity, alive))
  return dict(reward=reward, velocity=velocity, alive=alive, ret=jnp.sum(reward * alive, axis=1))


def quality(family: TaskFamily, tasks: Task, traj: dict) -> dict[str, float]:
  """The family's headline expert-quality numbers (see docs/locomotion.md) from `rollout`."""
  v, alive, params = traj['velocity'], traj['alive'], tasks.params
  out = {'return_mean': float(jnp.mean(traj['ret'])),
         'returns': [float(r) for r in traj['ret']]}
  if family.name == 'cheetah_vel':
    err = jnp.abs(v[:, 50:, 0] - params[:, :1])
    out['abs_vel_error_50_200'] = float(jnp.mean(err))
    out['abs_vel_error_per_task'] = [float(e) for e in jnp.mean(err, axis=1)]
    out['targets'] = [float(p) for p in params[:, 0]]
  elif family.name == 'cheetah_dir':
    speed = jnp.mean(v[:, :, 0] * params[:, :1], axis=1)
    out['velocity_along_direction'] = [float(s) for s in speed]
  elif family.name == 'ant_dir':
    along = v[:, :, 0] * jnp.cos(params[:, :1]) + v[:, :, 1] * jnp.sin(params[:, :1])
    speed = jnp.sum(along * alive, axis=1) / jnp.maximum(jnp.sum(alive, axis=1), 1)
    out['velocity_along_goal'] = [float(s) for s in speed]
    out['velocity_along_goal_mean'] = float(jnp.mean(speed))
    out['episode_lengths'] = [int(a) for a in jnp.sum(alive, axis=1)]
  else:  # walker_param, hopper_param: forward speed over the whole episode, falls.
    length = jnp.sum(alive, axis=1)
    speed = jnp.sum(v[:, :, 0] * alive, axis=1) / family.episode_length
    out['forward_velocity'] = [float(s) for s in speed]
    out['episode_lengths'] = [int(x) for x in length]
    ok = (length == family.episode_length) & (speed >= 1.0)  # the target, per episode
    out['no_fall_and_1mps'] = [bool(x) for x in ok]
    out['tasks_no_fall_and_1mps'] = int(jnp.sum(ok))
  return out


def task_metric(family: TaskFamily, tasks: Task, traj: dict) -> float:
  """The family's headline number from `quality`, as one scalar where higher is better: mean
  speed along the task's direction (Cheetah-Dir, Ant-Dir), mean forward speed (Walker/Hopper),
  or minus the velocity-tracking error (Cheetah-Vel)."""
  q = quality(family, tasks, traj)
  if family.name == 'cheetah_vel':
    return -q['abs_vel_error_50_200']
  key = {'cheetah_dir': 'velocity_along_direction', 'ant_dir': 'velocity_along_goal'}.get(
      family.name, 'forward_velocity')
  return float(sum(q[key]) / len(q[key]))


def nearest_checkpoint(scores: list[float], target: float) -> int:
  """The index of the score nearest `target`; ties go to the earlier checkpoint. How the medium
  tier (half-way) and the early random tier (`select_tier.py`) pick from a run."""
  if not scores:
    raise ValueError('nearest_checkpoint needs at least one score')
  return min(range(len(scores)), key=lambda i: (abs(scores[i] - target), i))


MEDIUM_BY = ('return', 'metric')


def split_episodes(family: TaskFamily, split: str, episodes: int) -> Task:
  """The tasks of `split`, each repeated `episodes` times: one `rollout` episode per entry."""
  return jax.tree.map(lambda x: jnp.repeat(x, episodes, axis=0), family.split_tasks(split))


def recorded_test(family: TaskFamily, episodes_per_task: int, seed: int
                  ) -> tuple[Task, jax.Array]:
  """The test episodes and key of an expert run's recorded quality (`train_expert.py`'s
  `eval_episodes_per_task` and `seed`): a checkpoint rolled out with them reproduces the test
  return the run recorded for it."""
  return split_episodes(family, 'test', episodes_per_task), jax.random.PRNGKey(seed + 1)


def tier_score(family: TaskFamily, tasks: Task, traj: dict, by: str) -> float:
  """A checkpoint's score for picking a tier: its mean return (`by='return'`) or the family's
  `task_metric` (`by='metric'`) over the episodes of `rollout`."""
  if by not in MEDIUM_BY:
    raise ValueError(f'the tier score must be one of {MEDIUM_BY}, got {by!r}')
  return float(jnp.mean(traj['ret'])) if by == 'return' else task_metric(family, tasks, traj)


def pick_tier(scores: list[float], low: float, high: float, fraction: float) -> tuple[int, float]:
  """The checkpoint whose score is nearest `low + fraction * (high - low)` (uniform actions'
  score and the expert's): `(index, target)`. The medium tier is `fraction = 0.5`, picked on
  validation tasks, as is the early random tier (1/6)."""
  if not 0 < fraction < 1:
    raise ValueError(f'the tier fraction must be in (0, 1), got {fraction}')
  target = low + fraction * (high - low)
  return nearest_checkpoint(scores, target), target
