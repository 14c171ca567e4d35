"""collect -> train_context -> train_diffusion (+ UDiffuser) -> evaluate, in one workdir.

A stage whose outputs are complete is skipped, so an interrupted pipeline resumes where it stopped
(training stages also resume from their last checkpoint). Copies `results.json` to the workdir.

  python experiments/pipeline.py --config=configs/point_robot.py:cpu --workdir=runs/demo
"""
import json
import os
import shutil
import time

import _common  # first: sets up logging before JAX loads
from absl import app, flags
from ml_collections import config_flags

from mdx.data import collect_datasets
from mdx.evaluation import evaluate
from mdx.training import latest_step, trainers

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder.')
_FORCE_EVAL = flags.DEFINE_bool('force_eval', False, 'Re-run the evaluation even if done.')
flags.mark_flags_as_required(['config', 'workdir'])


def _done(workdir, stage, steps):
  return latest_step(os.path.join(workdir, stage, 'checkpoints')) == steps


def main(argv):
  del argv
  _common.setup()
  config, workdir = _CONFIG.value, _WORKDIR.value
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort(indent=1))
  family = trainers.family_from_config(config)
  timings = {}

  def stage(name, done, fn):
    if done:
      print(f'[pipeline] {name}: complete, skipped', flush=True)
      return
    t0 = time.time()
    fn()
    timings[name] = round(time.time() - t0, 1)
    print(f'[pipeline] {name}: {timings[name]}s', flush=True)

  stage('collect', False, lambda: collect_datasets(config, workdir, family))
  stage('train_context', _done(workdir, 'context', config.context.num_steps),
        lambda: trainers.train_context(config, workdir))
  stage('train_diffusion', _done(workdir, 'diffusion', config.diffusion.num_train_steps),
        lambda: trainers.train_diffusion(config, workdir))
  if 'UDiffuser' in config.eval.methods:
    stage('train_udiffuser', _done(workdir, 'udiffuser', config.udiffuser.num_train_steps),
          lambda: trainers.train_diffusion(config, workdir, unconditional=True))
  results = os.path.join(workdir, 'eval', 'results.json')
  stage('evaluate', os.path.exists(results) and not _FORCE_EVAL.value,
        lambda: evaluate(config, workdir))
  shutil.copyfile(results, os.path.join(workdir, 'results.json'))
  with open(os.path.join(workdir, 'eval', 'table.txt')) as f:
    print(f.read())
  with open(os.path.join(workdir, 'timings.json'), 'a') as f:
    f.write(json.dumps(timings) + '\n')
  print(f'[pipeline] results in {os.path.join(workdir, "results.json")}', flush=True)


if __name__ == '__main__':
  app.run(main)
