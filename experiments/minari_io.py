"""Exports a workdir's dataset to Minari, or imports a local Minari dataset into a workdir
(`mdx.data.minari_io`; needs `pip install -c constraints.txt -e '.[minari]'`).

  # WORKDIR/data/test_expert -> the local Minari dataset mdx/point_robot/test-expert-v0
  python experiments/minari_io.py --config=configs/point_robot.py:cpu --workdir=runs/demo \
      --split=test --tier=expert --export=mdx/point_robot/test-expert-v0
  # a local Minari dataset -> WORKDIR/data/test_expert (never over an existing dataset)
  python experiments/minari_io.py --config=configs/point_robot.py:cpu --workdir=runs/other \
      --split=test --tier=expert --import=mdx/point_robot/test-expert-v0

Minari keeps its datasets under `MINARI_DATASETS_PATH` (default `~/.minari/datasets`).
"""
import os

import _common  # first: sets up logging before JAX loads
from absl import app, flags
from ml_collections import config_flags

from mdx import workdir as layout
from mdx.data import DatasetError, TIERS, load_dataset, save
from mdx.data import minari_io
from mdx.envs import SPLITS, family_from_config

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset): the '
                                          'family.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder (datasets in WORKDIR/data).')
_SPLIT = flags.DEFINE_enum('split', None, list(SPLITS), 'Dataset split.')
_TIER = flags.DEFINE_enum('tier', None, list(TIERS), 'Dataset tier.')
_EXPORT = flags.DEFINE_string('export', '', 'Minari dataset id to write the dataset to.')
_IMPORT = flags.DEFINE_string('import', '', 'Minari dataset id to read into the workdir.')
flags.mark_flags_as_required(['config', 'workdir', 'split', 'tier'])


def main(argv):
  del argv
  _common.setup()
  if bool(_EXPORT.value) == bool(_IMPORT.value):
    raise app.UsageError('give exactly one of --export=DATASET_ID and --import=DATASET_ID')
  family = family_from_config(_CONFIG.value)
  split, tier, workdir = _SPLIT.value, _TIER.value, _WORKDIR.value
  path = layout.dataset_dir(workdir, split, tier)
  if _EXPORT.value:
    data = load_dataset(workdir, family, split, tier)  # validated
    import json  # pylint: disable=g-import-not-at-top
    with open(os.path.join(path, 'meta.json')) as f:
      meta = json.load(f)
    dataset = minari_io.to_minari(data, meta, _EXPORT.value, family)
    print(f'[minari] {path} -> {_EXPORT.value}: {dataset.total_episodes} episodes, '
          f'{dataset.total_steps} steps', flush=True)
    return
  with layout.lock(workdir, 'experiments/minari_io.py'):
    if os.path.exists(path):
      raise DatasetError(f'{path} exists; import into a new --workdir, or move that folder '
                         'aside first (an existing dataset is never overwritten)')
    data, meta = minari_io.from_minari(_IMPORT.value, family)
    meta = dict(meta, family=family.name, split=split, tier=tier,
                source=meta.get('source', f'minari:{_IMPORT.value}'))
    save(path, data, meta)  # atomic
    print(f'[minari] {_IMPORT.value} -> {path}: {data.num_tasks} tasks x '
          f'{data.episodes_per_task} episodes', flush=True)


if __name__ == '__main__':
  app.run(_common.clear_errors(main))
