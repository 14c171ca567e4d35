"""Collects every dataset of a family: the training tasks' tiers, and warm-start data of every tier
for the validation and test tasks.

  python experiments/collect.py --config=configs/point_robot.py:cpu --workdir=runs/demo
"""
import _common  # first: sets up logging before JAX loads
from absl import app, flags
from ml_collections import config_flags

from mdx import workdir as layout
from mdx.data import collect_datasets

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder; datasets go to WORKDIR/data.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  _common.setup()
  with layout.lock(_WORKDIR.value, 'experiments/collect.py'):
    family = _common.prepare(_CONFIG.value, _WORKDIR.value, 'collect')
    collect_datasets(_CONFIG.value, _WORKDIR.value, family)


if __name__ == '__main__':
  app.run(_common.clear_errors(main))
