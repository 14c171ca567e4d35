"""Trains the context encoder with the reward and dynamics models (Eq. 1). Resumable.

  python experiments/train_context.py --config=configs/point_robot.py:cpu --workdir=runs/demo
"""
import _common  # first: sets up logging before JAX loads
from absl import app, flags
from ml_collections import config_flags

from mdx.training import trainers

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder (datasets in WORKDIR/data).')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  _common.setup()
  trainers.train_context(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
