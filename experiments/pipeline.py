"""collect -> every stage of every method of `config.eval.methods`, per training seed -> evaluate
on each split of `--splits`, in one workdir.

A stage whose outputs are complete is skipped, so an interrupted pipeline resumes where it stopped
(training stages also resume from their last checkpoint). Writes each stage's wall time to
`WORKDIR/timings.json` and copies the test split's `results.json` to the workdir.

  python experiments/pipeline.py --config=configs/point_robot.py:cpu --workdir=runs/demo
"""
import json
import os
import shutil
import time

import _common  # first: sets up logging before JAX loads
from absl import app, flags
from ml_collections import config_flags

from mdx import io
from mdx import workdir as layout
from mdx.data import collect_datasets
from mdx.envs import SPLITS, family_from_config
from mdx.evaluation import evaluate
from mdx.training import latest_step

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder.')
_SPLITS = flags.DEFINE_list('splits', ['validation', 'test'], f'Splits to evaluate ({SPLITS}).')
_FORCE_EVAL = flags.DEFINE_bool('force_eval', False, 'Re-run the evaluation even if done.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  _common.setup()
  config, workdir = _CONFIG.value, _WORKDIR.value
  for split in _SPLITS.value:
    if split not in SPLITS:
      raise app.UsageError(f'--splits: {split!r} is not one of {SPLITS}')
  os.makedirs(workdir, exist_ok=True)
  io.write_atomic(os.path.join(workdir, 'config.json'), config.to_json_best_effort(indent=1))
  family = family_from_config(config)
  methods = _common.methods_to_run(config)
  timings = {}

  def run(name, done, fn):
    if done:
      print(f'[pipeline] {name}: complete, skipped', flush=True)
      return
    t0 = time.time()
    fn()
    timings[name] = round(time.time() - t0, 1)
    print(f'[pipeline] {name}: {timings[name]}s', flush=True)

  run('collect', False, lambda: collect_datasets(config, workdir, family))
  trained = set()
  for method in methods:
    for stage in method.stages:
      for seed in config.train_seeds:
        if (stage.name, seed) in trained:
          continue
        trained.add((stage.name, seed))
        done = latest_step(layout.checkpoint_dir(workdir, stage.name, seed)) == (
            stage.num_train_steps(config))
        run(f'{stage.name}/seed_{seed}', done,
            lambda stage=stage, seed=seed: stage.train(config, workdir, seed))
  for split in _SPLITS.value:
    results = os.path.join(layout.eval_dir(workdir, split), 'results.json')
    run(f'evaluate/{split}', os.path.exists(results) and not _FORCE_EVAL.value,
        lambda split=split: evaluate(config, workdir, methods, split=split))
    with open(os.path.join(layout.eval_dir(workdir, split), 'table.txt')) as f:
      print(f.read())
  if 'test' in _SPLITS.value:
    shutil.copyfile(os.path.join(layout.eval_dir(workdir, 'test'), 'results.json'),
                    os.path.join(workdir, 'results.json'))
  with open(os.path.join(workdir, 'timings.json'), 'a') as f:
    f.write(json.dumps(timings) + '\n')
  print(f'[pipeline] results in {layout.eval_dir(workdir, "<split>")}', flush=True)


if __name__ == '__main__':
  app.run(main)
