"""Picks a training run's expert checkpoint by validation on the training distribution.

  python experiments/select_expert.py --family=walker_param --workdir=runs/experts/walker_long

A PPO run's last checkpoint is not always its best: late in a Walker run the test-task return rose
while falls on heavy bodies came and went from one checkpoint to the next. This binary scores each
of the run's last `--last` checkpoints (`<workdir>/checkpoints/<PPO steps>.msgpack`, written by
`train_expert.py`) on `--num_tasks` tasks drawn from the family's *training* distribution with
`--seed` (one deterministic episode each; never the test tasks):
- Walker/Hopper-Param: the fraction of episodes that finish without a fall at >= 1 m/s;
- the other families: the task metric (`experts.task_metric`).
Ties go to the higher mean return. The highest-scoring checkpoint becomes `<family>.msgpack` in
`--output_dir`. Beside it go the run's medium tier and `<family>.json`. The json is the run's,
with the chosen checkpoint's test-task quality and a `selection` record: every score, the seed,
and each checkpoint's test return. That test return is checked against the run's own record, so
a checkpoint file that does not belong to the run is an error. `experiments/expert_map.py` draws
its tasks with another seed (123), so its numbers stay an unbiased estimate.
"""
import json
import pathlib
import sys

import _common  # first: sets up logging before JAX loads
import jax
import numpy as np
from absl import app, flags, logging

from mdx import experts, io
from mdx.envs import locomotion, make_family

_FAMILY = flags.DEFINE_enum('family', None, sorted(locomotion.FAMILIES), 'Family.', required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'The run folder (with checkpoints/).',
                               required=True)
_RUN_DIR = flags.DEFINE_string('run_dir', None, "Where the run wrote <family>.json and its medium "
                               "tier (train_expert's --output_dir); default: --workdir.")
_LAST = flags.DEFINE_integer('last', 20, 'How many of the last checkpoints compete.')
_NUM_TASKS = flags.DEFINE_integer('num_tasks', 200, 'Validation tasks (training distribution).')
_SEED = flags.DEFINE_integer('seed', 7, 'Seed of the validation draw (expert_map.py uses 123).')
_OUTPUT = flags.DEFINE_string('output_dir', str(experts.EXPERT_DIR), 'Where the files go.')


def main(argv):
  del argv
  _common.setup()
  if _LAST.value < 1 or _NUM_TASKS.value < 1:
    raise ValueError(f'--last and --num_tasks must be >= 1, got {_LAST.value}, {_NUM_TASKS.value}')
  name, workdir = _FAMILY.value, pathlib.Path(_WORKDIR.value)
  run_dir = pathlib.Path(_RUN_DIR.value or workdir)
  meta = json.loads((run_dir / f'{name}.json').read_text())
  config, network = meta['config'], meta['network']
  family = make_family(name, **{**config['env'], 'backend': meta['backend']})
  files = sorted((workdir / 'checkpoints').glob('*.msgpack'), key=lambda p: int(p.stem))
  if not files:
    raise FileNotFoundError(f'no checkpoints in {workdir / "checkpoints"}')
  files = files[-_LAST.value:]
  template = experts.params_template(meta['obs_size'], meta['act_size'], network, with_value=True)

  n = _NUM_TASKS.value
  val_tasks = family.distribution_tasks(_SEED.value, n)
  # the run's own test-task evaluation, to check against
  test_tasks, test_rng = experts.recorded_test(family, config['eval_episodes_per_task'],
                                               config['seed'])
  run = jax.jit(lambda params, tasks, rng: experts.rollout(
      family, experts.make_policy_fn(family, params, network), tasks, rng))
  recorded = {int(s): r for s, r in meta['test_return_by_checkpoint']}
  prior = meta.get('init_env_steps', 0)

  rows = []
  for path in files:
    step = int(path.stem)
    params = experts.from_bytes(template, path.read_bytes())[:2]
    val = jax.device_get(run(params, val_tasks, jax.random.PRNGKey(1)))
    test = jax.device_get(run(params, test_tasks, test_rng))
    test_return = float(test['ret'].mean())
    want = recorded.get(step - prior)
    if want is None or abs(want - test_return) > 1e-3 * max(1.0, abs(want)):
      raise ValueError(f'{path}: test return {test_return:.3f} differs from the run\'s record '
                       f'{want} at step {step - prior}: not a checkpoint of this run')
    q = experts.quality(family, val_tasks, val)
    score = (float(np.mean(q['no_fall_and_1mps'])) if 'no_fall_and_1mps' in q
             else experts.task_metric(family, val_tasks, val))
    rows.append({'step': step, 'score': score, 'val_return': q['return_mean'],
                 'test_return': test_return, 'params': params, 'test': test})
    logging.info('checkpoint %d: validation score %.3f, return %.1f; test return %.1f', step,
                 score, q['return_mean'], test_return)
  best = max(rows, key=lambda r: (r['score'], r['val_return'], r['step']))
  logging.info('selected the checkpoint at %d steps (score %.3f)', best['step'], best['score'])

  out = pathlib.Path(_OUTPUT.value)
  out.mkdir(parents=True, exist_ok=True)
  medium = run_dir / f'{name}_medium.msgpack'
  if medium.resolve() != (out / medium.name).resolve():
    io.write_atomic(out / medium.name, medium.read_bytes())
  io.write_atomic(out / f'{name}.msgpack', experts.to_bytes(best['params']))
  meta['quality']['expert'] = experts.quality(family, test_tasks, best['test'])
  meta['run_env_steps'] = meta['num_env_steps']
  meta['num_env_steps'] = best['step'] - prior
  meta['selection'] = {
      'command': ' '.join(sys.argv), 'selected_env_steps': best['step'],
      'by': ('fraction without a fall at >= 1 m/s' if family.name.endswith('_param')
             else 'task metric') + f' on {n} training-distribution tasks, seed {_SEED.value}',
      'scores': [[r['step'], r['score'], r['val_return'], r['test_return']] for r in rows],
      'columns': ['env_steps', 'validation score', 'validation return', 'test return'],
  }
  io.write_atomic(out / f'{name}.json', json.dumps(meta, indent=1).encode())
  print(f'{name}: the checkpoint at {best["step"]} PPO steps, validation score '
        f'{best["score"]:.3f}; test return {best["test_return"]:.1f}; written to {out}')


if __name__ == '__main__':
  app.run(main)
