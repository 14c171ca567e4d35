"""Trains the stages of any registered method, for every training seed of the config.

  python experiments/train.py --config=configs/point_robot.py:cpu --workdir=runs/demo \
      --method=MetaDiffuser [--stage=context] [--seeds=0,1] [--stack_seeds]

Each stage resumes from its last checkpoint; a stage already trained with this config is skipped,
one trained with another config stops the run naming the changed fields (`mdx.provenance`; the
pipeline's `--redo` retrains; `--extend` trains a finished denoiser on to a raised step count).
The datasets must have been collected (`experiments/collect.py`). Each stage's wall time in this
invocation goes to `WORKDIR/timings.json` (one JSON line per invocation, as the pipeline's).
"""
import time

import _common  # first: sets up logging before JAX loads
from absl import app, flags
from ml_collections import config_flags

from mdx import methods
from mdx.config_check import check_config
from mdx.sweep import parse_sweep, with_fields
from mdx import provenance
from mdx import workdir as layout

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder with collected datasets.')
_METHOD = flags.DEFINE_enum('method', 'MetaDiffuser', sorted(methods.REGISTRY), 'The method.')
_STAGE = flags.DEFINE_string('stage', None, 'Only this stage (default: all, in order).')
_SEEDS = flags.DEFINE_list('seeds', None, 'Training seeds (default: config.train_seeds).')
_SWEEP = flags.DEFINE_string(
    'sweep', '', "A training sweep, 'field=v1,v2' over fields the stages allow (the denoiser: "
    "'diffusion.context_dropout', Table 6): every setting x seed of those stages as one stack, "
    'each setting in WORKDIR/variants/<field>=<value>/ (data and upstream stages linked).')
_EXTEND = flags.DEFINE_bool(
    'extend', False, 'Train a finished stage whose only changed field is its raised step count '
    'on from its last checkpoint (stages that offer it: the denoisers); evaluate again with '
    'experiments/evaluate.py, or the pipeline with --force_eval.')
_STACK = flags.DEFINE_bool('stack_seeds', False, 'Train the seeds of a stage as one vmapped '
                           'stack (each seed writes what its own run writes) where the stage '
                           'offers it.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  _common.setup()
  config = _CONFIG.value
  method = methods.get_method(_METHOD.value)
  stages = [s for s in method.stages if _STAGE.value in (None, s.name)]
  if not stages:
    raise app.UsageError(f'--stage={_STAGE.value!r}: {method.name} has stages '
                         f'{[s.name for s in method.stages]}')
  seeds = [int(s) for s in _SEEDS.value] if _SEEDS.value else list(config.train_seeds)
  settings = parse_sweep(_SWEEP.value)
  swept = [s for s in stages if settings != [{}] and set(settings[0]) <= set(s.member_fields)]
  if settings != [{}] and not swept:
    raise app.UsageError(f'--sweep={_SWEEP.value!r}: no stage of {method.name} can vary '
                         f'{sorted(settings[0])}; they vary '
                         f'{sorted({f for s in method.stages for f in s.member_fields})}')
  with layout.lock(_WORKDIR.value, 'experiments/train.py'):
    _common.prepare(config, _WORKDIR.value, 'train')
    plain = [s for s in stages if s not in swept]
    provenance.check_stages(config, _WORKDIR.value, plain, seeds,  # all, before any work
                            extend=_EXTEND.value)
    for stage in swept:
      if any(stage.name in s.after for s in method.stages):
        raise app.UsageError(f'--sweep: stages after {stage.name} would need the variants too')
    with _common.Timings(_WORKDIR.value, 'train') as timings:
      for stage in plain:
        _train_stage(config, stage, seeds, timings)
      for stage in swept:
        _train_sweep(config, stage, settings, seeds, timings)


def _train_stage(config, stage, seeds, timings):
  """Every seed of `stage` not yet trained: one stack (`--stack_seeds`) or one run per seed."""
  if _STACK.value and stage.train_stack is not None:
    t0 = time.time()
    trained = provenance.run_stage_stack(config, _WORKDIR.value, stage, seeds,
                                         extend=_EXTEND.value)
    if trained:
      timings.add(f'{stage.name}/seeds_{"_".join(map(str, trained))}', time.time() - t0)
    for seed in sorted(set(seeds) - set(trained)):
      print(f'[train] {stage.name}/seed_{seed}: complete, skipped', flush=True)
    return
  for seed in seeds:
    t0 = time.time()
    if provenance.run_stage(config, _WORKDIR.value, stage, seed, extend=_EXTEND.value):
      timings.add(f'{stage.name}/seed_{seed}', time.time() - t0)
    else:
      print(f'[train] {stage.name}/seed_{seed}: complete, skipped', flush=True)


def _train_sweep(config, stage, settings, seeds, timings):
  """Every setting x seed of a training sweep over `stage` as one stack."""
  t0 = time.time()
  members = []
  for setting in settings:
    variant = with_fields(config, setting)
    check_config(variant)
    vdir = layout.make_variant(_WORKDIR.value, setting, {s: list(stage.after) for s in seeds})
    _common.record_config(variant, vdir)
    members += [(variant, vdir, s) for s in seeds]
  for m in members:  # every member's record, before any work
    provenance.check_stages(m[0], m[1], [stage], [m[2]], extend=_EXTEND.value)
  trained = provenance.run_members(stage, members, extend=_EXTEND.value)
  if trained:
    timings.add(f'{stage.name}/sweep_{_SWEEP.value}', time.time() - t0)
  print(f'[train] {stage.name}: {len(trained)} of {len(members)} sweep members trained '
        f"({len(members) - len(trained)} complete); evaluate one with --workdir="
        f"{layout.variant_dir(_WORKDIR.value, settings[0])} and the setting as a config "
        'override', flush=True)


if __name__ == '__main__':
  app.run(_common.clear_errors(main))
