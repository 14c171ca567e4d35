"""Collects every dataset of a family: the training tasks' tiers, and warm-start data of every tier
for the validation and test tasks.

  python experiments/collect.py --config=configs/point_robot.py:cpu --workdir=runs/demo
"""
import _common  # first: sets up logging before JAX loads
from absl import app, flags
from ml_collections import config_flags

from mdx.data import collect_datasets
from mdx.envs import family_from_config

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder; datasets go to WORKDIR/data.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  _common.setup()
  collect_datasets(_CONFIG.value, _WORKDIR.value, family_from_config(_CONFIG.value))


if __name__ == '__main__':
  app.run(main)
