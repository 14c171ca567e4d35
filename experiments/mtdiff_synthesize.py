"""MTDiff-S: trains the transition generator (stage `mtdiff_s`) and synthesizes data for the tasks
of a split from their warm-start data of one tier, as prompts.

  python experiments/mtdiff_synthesize.py --config=configs/point_robot.py:cpu \
      --workdir=runs/point_robot --split=validation --tier=expert --windows=64

Writes `WORKDIR/synthetic/<split>_<tier>_seed<s>/` (`data.npz` + `meta.json`, mdx's dataset
format, validated as collected data; each window an H-step episode of its task) and prints the
synthetic transitions' check against the simulator where the family allows it (Point-Robot):
the dynamics error `|s' - step(s, a)|`, the reward error, and the gap `|s_{t+1} - s'_t|`
between consecutive rows. An existing synthetic dataset is never overwritten.
"""
import json
import os

import _common  # first: sets up logging before JAX loads
import jax
from absl import app, flags
from ml_collections import config_flags

from mdx import data as mdata
from mdx import provenance
from mdx import workdir as layout
from mdx.envs import SPLITS, family_from_config
from mdx.methods.mtdiff import synthesis

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder with collected datasets.')
_SPLIT = flags.DEFINE_enum('split', 'validation', list(SPLITS), 'Whose tasks to synthesize for.')
_TIER = flags.DEFINE_string('tier', 'expert', "The prompts' warm-start tier.")
_WINDOWS = flags.DEFINE_integer('windows', 64, 'Synthetic windows (H steps each) per task.')
_SEED = flags.DEFINE_integer('seed', None, 'Training seed (default: the first of train_seeds).')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  _common.setup()
  config, workdir = _CONFIG.value, _WORKDIR.value
  seed = config.train_seeds[0] if _SEED.value is None else _SEED.value
  if _WINDOWS.value < 1:
    raise app.UsageError(f'--windows={_WINDOWS.value}: must be >= 1')
  family = family_from_config(config)
  with layout.lock(workdir, 'experiments/mtdiff_synthesize.py'):
    _common.prepare(config, workdir, 'mtdiff_synthesize')
    provenance.check_stages(config, workdir, [synthesis.MTDIFF_S_STAGE], [seed])
    if not provenance.run_stage(config, workdir, synthesis.MTDIFF_S_STAGE, seed):
      print(f'[mtdiff_s] seed_{seed}: complete, skipped', flush=True)
    out = os.path.join(workdir, 'synthetic', f'{_SPLIT.value}_{_TIER.value}_seed{seed}')
    prompts = mdata.load_dataset(workdir, family, _SPLIT.value, _TIER.value)
    params = synthesis.load_mtdiff_s(config, workdir, seed, family)
    rows = jax.jit(lambda p, key: synthesis.synthesize(config, family, p, key, prompts,
                                                       _WINDOWS.value))(
        params, jax.random.fold_in(jax.random.PRNGKey(config.seed), 9))
    data = synthesis.to_trajectories(family, params['norm'], rows, prompts)
    meta = {'family': family.name, 'split': _SPLIT.value, 'tier': f'synthetic ({_TIER.value})',
            'source': f'MTDiff-S, training seed {seed}, prompts from the {_TIER.value} '
                      'warm-start data', 'windows_per_task': _WINDOWS.value}
    try:
      meta['check'] = synthesis.check(family, data)
    except NotImplementedError as err:
      print(f'[mtdiff_s] {err}', flush=True)
    synthesis.save_synthetic(out, family, data, meta)
    print(f'[mtdiff_s] wrote {out}: {data.num_tasks} tasks x {data.episodes_per_task} windows x '
          f'{data.episode_length} steps; check {json.dumps(meta.get("check"))}', flush=True)


if __name__ == '__main__':
  app.run(_common.clear_errors(main))
