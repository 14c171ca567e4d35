"""Trains a family's task-conditioned expert with Brax PPO and writes it to mdx/experts/.

  python experiments/train_expert.py --family=cheetah_vel --workdir=runs/experts/cheetah_vel

Writes <family>.msgpack (final policy), <family>_medium.msgpack (the checkpoint whose
validation-task return, or with `--config.medium_by=metric` the family's task metric such as the
speed along the goal, is closest to half-way between uniform actions and the final policy; the
test tasks only report quality) and <family>.json (command, config, steps, wall time, quality on
the test tasks, every checkpoint's validation score and test return), each through a temporary
file and a rename.

`--config.init_from=PATH.msgpack` starts the policy (and its observation normalizer) from an
earlier expert, with a fresh value function; every checkpoint of such a run is near-expert, so
the medium tier is then `--config.medium_from=PATH.msgpack` (e.g. the earlier run's medium).
Every checkpoint is kept as `checkpoints/<PPO steps>.msgpack` in the workdir (normalizer, policy
and value function; `experiments/select_expert.py` picks one by validation), and also written as
the run's resume state (`resume.msgpack`, with `resume.json`: PPO steps so far).
`--config.resume_from=WORKDIR` continues such a run, value function included (Adam's moments
start afresh), and like `init_from` it needs `medium_from`.
`--config.train_episode_length=N` lets training episodes run N steps (Brax's `wrap_env_fn`) while
Brax's evaluation and the recorded quality keep the family's episode length.
`--config.redraw_tasks` draws a new task at every finished training episode (by default Brax
replays each env slot's task until the next full reset). `--config.probe_test_tasks=0,2` trains on
those test tasks only: a feasibility probe, not an expert to commit.
`--config.stop_after_env_steps=N` ends the run at its first checkpoint at or past N PPO steps and
writes checkpoints only (no expert files): the early part of a run, re-run with its own
`num_timesteps` and `num_evals` so that its checkpoints are the original's, for
`experiments/select_tier.py` to pick a tier from on validation tasks.
"""
import functools
import importlib.util
import json
import pathlib
import sys
import time

import brax
from brax.envs.wrappers import training as brax_training
import jax
import jax.numpy as jnp
from absl import app, flags, logging
from brax.training.agents.ppo import train as ppo
from ml_collections import config_flags

import _common
from mdx import experts, io
from mdx.envs import make_family

_FAMILY = flags.DEFINE_string('family', 'cheetah_vel', 'Family (preset of configs/experts.py).')
_CONFIG = config_flags.DEFINE_config_file('config', None, 'Overrides the preset (path:family).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder (progress log).', required=True)
_NUM_TIMESTEPS = flags.DEFINE_integer('num_timesteps', None, 'Overrides config.ppo.num_timesteps.')
_OUTPUT = flags.DEFINE_string('output_dir', str(experts.EXPERT_DIR), 'Where the files go.')


def main(argv):
  del argv
  _common.setup()
  config = _CONFIG.value or _preset(_FAMILY.value)
  if _NUM_TIMESTEPS.value:
    config.ppo.num_timesteps = _NUM_TIMESTEPS.value
  overrides = {**config.env.to_dict(), **({'backend': config.backend} if config.backend else {})}
  family = make_family(config.family, **overrides)
  probe = None
  if config.probe_test_tasks:
    ids = list(config.probe_test_tasks)
    test_params = family.test_tasks().params
    if not all(0 <= i < len(test_params) for i in ids):
      raise ValueError(f'config.probe_test_tasks must index the {len(test_params)} test tasks, '
                       f'got {ids}')
    probe = test_params[jnp.asarray(ids)]
    logging.warning('feasibility probe: training on test tasks %s only', ids)
  env = experts.TaskConditionedEnv(family, task_params=probe)
  network = config.network.to_dict()
  workdir = pathlib.Path(_WORKDIR.value)
  (workdir / 'checkpoints').mkdir(parents=True, exist_ok=True)
  if ((workdir / 'resume.msgpack').exists()
      and pathlib.Path(config.resume_from or '/nonexistent').resolve() != workdir.resolve()):
    raise ValueError(f'{workdir} holds an earlier run\'s resume state: continue it with '
                     f'--config.resume_from={workdir} (and --config.medium_from), or pick '
                     'another --workdir')

  checkpoints, curve = [], []  # (step, (normalizer, policy)) and Brax's eval metrics

  def save_checkpoint(step, params):
    params = jax.device_get(params)  # (normalizer, policy, value)
    checkpoints.append((int(step), params[:2]))
    data = experts.to_bytes(params)
    io.write_atomic(workdir / 'checkpoints' / f'{prior_steps + int(step)}.msgpack', data)
    io.write_atomic(workdir / 'resume.msgpack', data)
    io.write_atomic(workdir / 'resume.json', json.dumps(
        {'family': family.name, 'env_steps': prior_steps + int(step),
         'config': config.to_dict()}, indent=1).encode())
    if config.stop_after_env_steps and prior_steps + int(step) >= config.stop_after_env_steps:
      raise _StopEarly(prior_steps + int(step))

  def progress_fn(step, metrics):
    row = {'step': int(step), 'time': time.time() - start,
           **{k: float(v) for k, v in metrics.items() if k.startswith('eval/episode_reward')}}
    curve.append(row)
    logging.info('%s', row)
    with open(workdir / 'progress.jsonl', 'a') as f:
      f.write(json.dumps(row) + '\n')

  network_factory = functools.partial(_ppo_networks, network=network)
  template = experts.params_template(env.observation_size, env.action_size, network)
  extra = {}
  if config.medium_by not in experts.MEDIUM_BY:
    raise ValueError(f'config.medium_by must be one of {experts.MEDIUM_BY}, got '
                     f'{config.medium_by!r}')
  if config.init_from and config.resume_from:
    raise ValueError('set config.init_from (policy only) or config.resume_from (a run folder '
                     'to continue), not both')
  start_from = 'init_from' if config.init_from else 'resume_from' if config.resume_from else None
  if start_from and not config.medium_from:
    raise ValueError(f'config.{start_from} needs config.medium_from: every checkpoint of a '
                     'continued run is near-expert, so none of them can be the medium tier')
  if config.init_from:
    norm_params, policy_params = _read_params(config.init_from, template, 'init_from')
    extra.update(restore_params=(norm_params, policy_params, None), restore_value_fn=False)
  lineage = _lineage(config)  # read before this run's checkpoints overwrite resume.json
  prior_steps = lineage.get('init_env_steps', 0)
  if config.resume_from:
    full = experts.params_template(env.observation_size, env.action_size, network,
                                   with_value=True)
    path = pathlib.Path(config.resume_from) / 'resume.msgpack'
    extra.update(restore_params=_read_params(str(path), full, 'resume_from'),
                 restore_value_fn=True)
  medium_params = (_read_params(config.medium_from, template, 'medium_from')
                   if config.medium_from else None)
  length = config.train_episode_length or family.episode_length
  if length != family.episode_length or config.redraw_tasks:
    extra['wrap_env_fn'] = functools.partial(_wrap_for_training, length=length,
                                             redraw=config.redraw_tasks)
  start = time.time()
  try:
    ppo.train(environment=env, episode_length=family.episode_length, seed=config.seed,
              network_factory=network_factory,
              normalize_observations=network['normalize_observations'],
              progress_fn=progress_fn, deterministic_eval=True,
              policy_params_fn=lambda step, _, params: save_checkpoint(step, params),
              **extra, **config.ppo.to_dict())
  except _StopEarly as stop:
    logging.info('stopped at %d PPO steps (config.stop_after_env_steps = %d): %d checkpoints in '
                 '%s, no expert files written', stop.steps, config.stop_after_env_steps,
                 len(checkpoints), workdir / 'checkpoints')
    return
  train_time = time.time() - start

  # Every checkpoint, `eval_episodes_per_task` deterministic episodes per task, on the test
  # tasks (the recorded quality) and on the validation tasks (the medium tier's pick).
  tasks, rng = experts.recorded_test(family, config.eval_episodes_per_task, config.seed)
  val_tasks = experts.split_episodes(family, 'validation', config.eval_episodes_per_task)
  run = jax.jit(lambda params, tasks, rng: experts.rollout(
      family, experts.make_policy_fn(family, params, network), tasks, rng))
  random_policy = lambda task, state, key: jax.random.uniform(  # noqa: E731
      key, (family.act_dim,), minval=-1.0, maxval=1.0)
  run_random = jax.jit(lambda tasks, rng: experts.rollout(family, random_policy, tasks, rng))
  trajs = [jax.device_get(run(params, tasks, rng)) for _, params in checkpoints]
  returns = [float(t['ret'].mean()) for t in trajs]
  random_traj = run_random(tasks, rng)
  random_return = float(random_traj['ret'].mean())
  val_scores = None
  if medium_params is not None:  # a fine-tuning run: the medium tier comes from elsewhere
    medium_traj = jax.device_get(run(medium_params, tasks, rng))
    medium_return = float(medium_traj['ret'].mean())
    steps = _prior_meta(config.medium_from, config.family).get('medium_env_steps')
    medium_steps = steps if isinstance(steps, int) else config.medium_from
  else:
    # Half-way between uniform actions and the final policy on the validation tasks, in the
    # return or in the family's task metric.
    val_scores = [experts.tier_score(family, val_tasks, jax.device_get(run(p, val_tasks, rng)),
                                     config.medium_by) for _, p in checkpoints]
    low = experts.tier_score(family, val_tasks, run_random(val_tasks, rng), config.medium_by)
    medium, halfway = experts.pick_tier(val_scores[:-1], low, val_scores[-1], 0.5)
    logging.info('medium tier: checkpoint at %d steps, validation %s %.3f (half-way %.3f)',
                 checkpoints[medium][0], config.medium_by, val_scores[medium], halfway)
    medium_steps, medium_params = checkpoints[medium]
    medium_traj, medium_return = trajs[medium], returns[medium]
  eval_time = time.time() - start - train_time

  out = pathlib.Path(_OUTPUT.value)
  out.mkdir(parents=True, exist_ok=True)
  for stem, params in ((family.name, checkpoints[-1][1]), (f'{family.name}_medium', medium_params)):
    io.write_atomic(out / f'{stem}.msgpack', experts.to_bytes(params))
  meta = {
      'family': family.name, 'backend': family.backend, 'command': ' '.join(sys.argv),
      'config': config.to_dict(), 'network': network,
      'obs_size': env.observation_size, 'act_size': env.action_size,
      'num_env_steps': checkpoints[-1][0], 'medium_env_steps': medium_steps,
      **lineage,
      'train_wall_time_s': round(train_time, 1), 'eval_wall_time_s': round(eval_time, 1),
      'versions': {'jax': jax.__version__, 'brax': brax.__version__},
      'policy': 'deterministic tanh(mean) of the PPO tanh-Gaussian',
      'quality': {'expert': experts.quality(family, tasks, trajs[-1]),
                  'medium': experts.quality(family, tasks, medium_traj),
                  'random': experts.quality(family, tasks, random_traj)},
      'test_return_by_checkpoint': [[s, r] for (s, _), r in zip(checkpoints, returns)],
      **({'medium_selected_on': 'validation', 'validation_score_by_checkpoint':
          [[s, v] for (s, _), v in zip(checkpoints, val_scores)]} if val_scores else {}),
      'brax_eval_curve': curve,
  }
  io.write_atomic(out / f'{family.name}.json', json.dumps(meta, indent=1).encode())
  logging.info('expert %.1f medium %.1f random %.1f; train %.0fs', returns[-1], medium_return,
               random_return, train_time)


class _StopEarly(Exception):
  """Raised from the checkpoint callback to end a run at `config.stop_after_env_steps`."""

  def __init__(self, steps: int):
    super().__init__(steps)
    self.steps = steps


def _prior_meta(path: str, family: str) -> dict:
  """The `<family>.json` written beside an expert .msgpack, or {} when there is none."""
  meta = pathlib.Path(path).with_name(f'{family}.json')
  return json.loads(meta.read_text()) if meta.exists() else {}


def _lineage(config) -> dict:
  """Where a continued run started: the files it read and the PPO steps behind them."""
  out = {'medium_from': config.medium_from} if config.medium_from else {}
  if config.init_from:
    before = _prior_meta(config.init_from, config.family)
    out['init_from'] = config.init_from
    out['init_env_steps'] = before.get('num_env_steps', 0) + before.get('init_env_steps', 0)
  if config.resume_from:
    path = pathlib.Path(config.resume_from) / 'resume.json'
    before = json.loads(path.read_text()) if path.exists() else {}
    out['resume_from'] = config.resume_from
    out['init_env_steps'] = before.get('env_steps', 0)
  return out


def _read_params(path: str, template, field: str):
  """Parameters of an expert (or resume) .msgpack, checked against this network."""
  try:
    params = experts.from_bytes(template, pathlib.Path(path).read_bytes())
  except FileNotFoundError as err:
    raise FileNotFoundError(f'config.{field}: no file {path}') from err
  except (ValueError, KeyError, TypeError) as err:
    raise ValueError(f'{path} does not hold parameters of this family\'s expert network '
                     f'({err})') from err
  want = [jnp.shape(x) for x in jax.tree.leaves(template)]
  got = [jnp.shape(x) for x in jax.tree.leaves(params)]
  if want != got:
    raise ValueError(f'{path}: parameter shapes {got} differ from this family\'s expert network '
                     f'{want} (observation {template[0].mean.shape}, a different family?)')
  return params


def _wrap_for_training(env, episode_length, action_repeat, randomization_fn, *, length, redraw):
  del episode_length  # training episodes get `length`; Brax's evaluator still unrolls its own
  wrap = experts.wrap_for_training if redraw else brax_training.wrap
  return wrap(env, episode_length=length, action_repeat=action_repeat,
              randomization_fn=randomization_fn)


def _preset(family: str):
  path = pathlib.Path(__file__).resolve().parents[1] / 'configs' / 'experts.py'
  spec = importlib.util.spec_from_file_location('experts_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(family)


def _ppo_networks(obs_shape, act_size, preprocess_observations_fn, network):
  del preprocess_observations_fn  # make_networks picks it from `network`.
  return experts.make_networks(obs_shape[0] if isinstance(obs_shape, tuple) else obs_shape,
                               act_size, network)


if __name__ == '__main__':
  app.run(main)
