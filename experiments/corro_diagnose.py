"""Why a trained CORRO scores what it does (`mdx.methods.corro.diagnose`): how well z identifies
a split's tasks from each tier's episodes, and the critic's values of the data's and the actor's
actions along the training tasks' expert episodes. Prints JSON (also to --out).

  python experiments/corro_diagnose.py --config=configs/point_robot.py:cpu \
      --workdir=runs/point_robot --split=validation
"""
import json

import _common  # first: sets up logging before JAX loads
from absl import app, flags
from ml_collections import config_flags

from mdx import io
from mdx.config_check import check_config
from mdx.data import policies
from mdx.envs import SPLITS, family_from_config
from mdx.methods.corro import diagnose

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder with trained CORRO stages.')
_SPLIT = flags.DEFINE_enum('split', 'validation', list(SPLITS), 'Which tasks to probe.')
_SEED = flags.DEFINE_integer('seed', 0, 'Training seed.')
_OUT = flags.DEFINE_string('out', None, 'Also write the JSON here.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  _common.setup()
  config, workdir = _CONFIG.value, _WORKDIR.value
  check_config(config)
  family = family_from_config(config)
  report = dict(
      split=_SPLIT.value, seed=_SEED.value,
      task_probe=diagnose.task_probe(config, workdir, _SEED.value, family, _SPLIT.value,
                                     policies.TIERS),
      critic_check=diagnose.critic_check(config, workdir, _SEED.value, family))
  print(json.dumps(report, indent=1))
  if _OUT.value:
    io.write_json(_OUT.value, report)


if __name__ == '__main__':
  app.run(main)
