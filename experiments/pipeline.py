"""collect -> every stage of every method of `config.eval.methods`, per training seed -> evaluate
on each split of `--splits`, in one workdir.

Before any work the config is validated (`mdx.config_check`), the workdir is locked against a
second process, and every finished output is checked against the config it was made with
(`mdx.provenance`): datasets by their `meta.json`, stages by their `stage.json`, evaluations by
their `provenance.json`. A finished output made with this config is skipped, so an interrupted
pipeline resumes where it stopped (training stages also resume from their last checkpoint); one
made with another config stops the run with the changed fields, unless `--redo=STAGE` (retrain it
and the stages after it; the old folders are moved aside), `--extend` (a stage whose only change
is a raised step count trains on from its checkpoint) or `--force_eval`. Writes each stage's
wall time to `WORKDIR/timings.json` and copies the test split's `results.json` to the workdir.

  python experiments/pipeline.py --config=configs/point_robot.py:cpu --workdir=runs/demo
"""
import os
import shutil

import _common  # first: sets up logging before JAX loads
from absl import app, flags
from ml_collections import config_flags

from mdx import provenance
from mdx import workdir as layout
from mdx.data import collect_datasets
from mdx.envs import SPLITS
from mdx.evaluation import evaluate

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder.')
_SPLITS = flags.DEFINE_list('splits', ['validation', 'test'], f'Splits to evaluate ({SPLITS}).')
_FORCE_EVAL = flags.DEFINE_bool('force_eval', False, 'Re-run the evaluation even if done.')
_REDO = flags.DEFINE_list('redo', [], 'Stages to train again, with every stage after them and '
                          'the evaluation (their old folders are moved aside).')
_EXTEND = flags.DEFINE_bool(
    'extend', False, 'Train a finished stage whose only changed field is its raised step count '
    "on from its last checkpoint (stages that offer it: the denoisers, whose learning rate is "
    'constant); the evaluations of the shorter run are redone.')
_STACK = flags.DEFINE_bool('stack_seeds', False, 'Train the seeds of each stage as one vmapped '
                           'stack where the stage offers it (each seed writes what its own run '
                           'writes).')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  _common.setup()
  config, workdir = _CONFIG.value, _WORKDIR.value
  for split in _SPLITS.value:
    if split not in SPLITS:
      raise app.UsageError(f'--splits: {split!r} is not one of {SPLITS}')
  if config.eval.sweep:
    raise app.UsageError('config.eval.sweep: sweeps run with experiments/evaluate.py on a '
                         'trained workdir, not in the pipeline')
  with layout.lock(workdir, 'experiments/pipeline.py'):
    run_pipeline(config, workdir, _common.prepare(config, workdir, 'pipeline'))


def run_pipeline(config, workdir, family):
  methods = _common.methods_to_run(config)
  stages = list(dict.fromkeys(s for m in methods for s in m.stages))
  seeds = list(config.train_seeds)
  redone = provenance.redo_stages(workdir, stages, _REDO.value, seeds) if _REDO.value else []
  # Every finished stage is checked against this config before any work (raises when stale).
  status = provenance.check_stages(config, workdir, stages, seeds, extend=_EXTEND.value)
  _common.record_config(config, workdir)
  with _common.Timings(workdir, 'pipeline') as timings:  # written also when a stage fails
    timed = timings.timed
    timed('collect', lambda: collect_datasets(config, workdir, family))  # checks every dataset
    trained = bool(redone)
    for stage in stages:
      todo = [s for s in seeds if status[(stage.name, s)] != 'done']
      if _STACK.value and stage.train_stack is not None and len(todo) > 1:
        timed(f'{stage.name}/seeds_{"_".join(map(str, todo))}',
              lambda stage=stage: provenance.run_stage_stack(config, workdir, stage, todo,
                                                             extend=_EXTEND.value))
        trained = True
        continue
      for seed in seeds:
        name = f'{stage.name}/seed_{seed}'
        if status[(stage.name, seed)] == 'done':
          print(f'[pipeline] {name}: complete, skipped', flush=True)
          continue
        timed(name, lambda stage=stage, seed=seed: provenance.run_stage(
            config, workdir, stage, seed, extend=_EXTEND.value))
        trained = True
    for split in _SPLITS.value:
      out = layout.eval_dir(workdir, split)
      if trained or _FORCE_EVAL.value:  # new stages: an older evaluation is of other models
        if os.path.exists(os.path.join(out, 'results.json')):
          provenance.move_aside(out)
        done = False
      else:
        done = provenance.check_evaluation(config, workdir, split, stages, seeds)
      if done:
        print(f'[pipeline] evaluate/{split}: complete, skipped', flush=True)
      else:
        timed(f'evaluate/{split}',
              lambda split=split: evaluate(config, workdir, methods, split=split))
      with open(os.path.join(out, 'table.txt')) as f:
        print(f.read())
    if 'test' in _SPLITS.value:
      shutil.copyfile(os.path.join(layout.eval_dir(workdir, 'test'), 'results.json'),
                      os.path.join(workdir, 'results.json'))
  print(f'[pipeline] results in {layout.eval_dir(workdir, "<split>")}', flush=True)


if __name__ == '__main__':
  app.run(_common.clear_errors(main))
