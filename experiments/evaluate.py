"""Evaluates methods on one split; writes WORKDIR/eval/<split>/results.json, the table and plots.

  python experiments/evaluate.py --config=configs/point_robot.py:cpu --workdir=runs/demo \
      --split=validation [--methods=MetaDiffuser,Oracle,Random]

Tune on `--split=validation`; the test split is run once per committed preset. The trained
stages are checked against the config first (`mdx.provenance`): a stage trained with other values
of the fields it reads stops the evaluation, naming them. The methods of
`config.eval.methods` by default; the reference methods (`config.eval.oracle`, `.random`) are
always added.
"""
import _common  # first: sets up logging before JAX loads
from absl import app, flags
from ml_collections import config_flags

from mdx import provenance
from mdx import workdir as layout
from mdx.envs import SPLITS
from mdx.evaluation import evaluate

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder with trained stages.')
_SPLIT = flags.DEFINE_enum('split', 'validation', list(SPLITS), 'Which tasks.')
_METHODS = flags.DEFINE_list('methods', None, 'Methods (default: config.eval.methods).')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  _common.setup()
  config = _CONFIG.value
  with layout.lock(_WORKDIR.value, 'experiments/evaluate.py'):
    _common.prepare(config, _WORKDIR.value, 'evaluate')
    methods = _common.methods_to_run(config, _METHODS.value)
    # The trained stages must be the config's (a training sweep's variant: pass its setting).
    try:
      provenance.check_stages(config, _WORKDIR.value,
                              list(dict.fromkeys(s for m in methods for s in m.stages)),
                              list(config.train_seeds))
    except provenance.StaleStageError as err:
      raise provenance.StaleStageError(
          str(err).split('\nUse a new')[0] + '\nEvaluate with the config the stages were '
          'trained with (a training sweep\'s variant: add its setting, e.g. '
          '--config.diffusion.context_dropout=0.2), or retrain them with experiments/train.py.'
      ) from None
    with _common.Timings(_WORKDIR.value, 'evaluate') as timings:
      sweep = f' sweep {config.eval.sweep}' if config.eval.sweep else ''
      timings.timed(f'evaluate/{_SPLIT.value}{sweep}',
                    lambda: evaluate(config, _WORKDIR.value, methods, split=_SPLIT.value))


if __name__ == '__main__':
  app.run(_common.clear_errors(main))
