"""Few-step sampling: MetaDiffuser's quality against its planning speed with DDIM sub-steps.

  python experiments/few_step.py --config=configs/point_robot.py:cpu --workdir=runs/point_robot \\
      --split=validation [--steps=1,2,5,10,20] [--eta=0]

The denoiser trained with K steps samples with DDIM on K' of them (`planner.sampler='ddim'`,
`planner.num_sample_steps=K'`, `planner.eta`), through the same planner (CFG, the dual guide, the
candidates). For the preset's own sampler and for every K' of `--steps`: MetaDiffuser evaluated
on `--split` (one compiled program per setting: K' sets the scan's length), with Oracle and Random
for the normalized score, and the speed of one planning call of the trained policy at batch 1
and at batch = the split's tasks (compile apart; the median of at least `--repeats` calls and of
`--min_time_s` seconds). Writes `WORKDIR/few_step/<split>.json` (one record per setting: the
evaluation's records and `plans_per_s`; written after every setting, so an interrupted run
resumes, keeping the settings made with the same config and models) and `few_step_<split>.png`
(normalized score with its 95% interval against plans per second at batch 1). Choose K' on validation tasks; run the test split
for the curve once.
"""
import json
import os
import statistics
import time

import _common  # first: sets up logging before JAX loads
import jax
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from mdx import data as mdata
from mdx import io
from mdx import methods
from mdx import provenance
from mdx.envs.base import SPLITS
from mdx.envs import family_from_config
from mdx.evaluation.evaluate import make_records, run_method
from mdx.sweep import with_fields

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder with MetaDiffuser trained.')
_SPLIT = flags.DEFINE_enum('split', 'validation', list(SPLITS), 'Which tasks.')
_STEPS = flags.DEFINE_list('steps', ['1', '2', '5', '10', '20'], "DDIM's K' values (each at "
                           'most the trained K).')
_ETA = flags.DEFINE_float('eta', 0.0, "DDIM's eta (0: deterministic; 1: DDPM's variance).")
_REPEATS = flags.DEFINE_integer('repeats', 20, 'Timed planning calls at least.')
_REPLOT = flags.DEFINE_bool('replot', False, 'Only redraw the plot of WORKDIR/few_step/<split>.json.')
_MIN_TIME = flags.DEFINE_float('min_time_s', 3.0, 'Seconds of timed planning calls at least.')
flags.mark_flags_as_required(['config', 'workdir'])


def _median_time(fn, args, repeats, min_time_s):
  jax.block_until_ready(fn(*args))  # warm-up (compiled before)
  times = []
  while len(times) < repeats or (sum(times) < min_time_s and len(times) < 2000):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return statistics.median(times), len(times)


def plan_speed(policy, workdir, family, split, batch):
  """Plans per second of `policy`'s `act` (one planning call) at `batch` environments of
  `split`'s tasks, from their expert warm-start contexts; `(plans_per_s, compile_s, runs)`."""
  tasks = family.split_tasks(split)
  index = np.arange(batch) % int(tasks.task_id.shape[0])
  tasks = jax.tree.map(lambda x: x[index], tasks)
  warm = jax.tree.map(lambda x: x[index], mdata.load_dataset(workdir, family, split, 'expert'))
  rng = jax.random.PRNGKey(11)
  state = policy.init_fn(policy.params, rng, tasks, warm)
  obs = jax.vmap(lambda t, k: family.reset(t, k).obs)(tasks, jax.random.split(rng, batch))
  act = jax.jit(lambda p, s, o, r: policy.act_fn(p, s, o, r)[0])
  t0 = time.perf_counter()
  compiled = act.lower(policy.params, state, obs, rng).compile()
  compile_s = time.perf_counter() - t0
  median, runs = _median_time(compiled, (policy.params, state, obs, rng), _REPEATS.value,
                              _MIN_TIME.value)
  return batch / median, compile_s, runs


def _plot(path, rows, family_name, split):
  import matplotlib  # pylint: disable=g-import-not-at-top
  import matplotlib.ticker  # pylint: disable=g-import-not-at-top,unused-import
  matplotlib.use('Agg')
  from mdx.evaluation import plots  # pylint: disable=g-import-not-at-top
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(6, 4))
  tiers = sorted({r['warm_start'] for row in rows for r in row['records']})
  colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
  for i, tier in enumerate(tiers):
    pts = sorted(((row['plans_per_s_batch1'], r, row) for row in rows for r in row['records']
                  if r['warm_start'] == tier), key=lambda p: p[0])
    for is_ddim in (True, False):  # the DDIM curve by speed; the preset's sampler on its own
      sel = [p for p in pts if (p[2]['fields'] != {}) == is_ddim]
      if not sel:
        continue
      err = [[p[1]['normalized_score'] - p[1]['ci_low'] for p in sel],
             [p[1]['ci_high'] - p[1]['normalized_score'] for p in sel]]
      ax.errorbar([p[0] for p in sel], [p[1]['normalized_score'] for p in sel], yerr=err,
                  marker='o' if is_ddim else '*', markersize=6 if is_ddim else 12, capsize=3,
                  color=colors[i % len(colors)], linestyle='-' if is_ddim else 'none',
                  label=f'warm start: {tier}' + ('' if is_ddim else ', preset'))
      for x, r, row in sel if i == 0 else ():  # the settings' names, once
        ax.annotate(row['label'].replace('DDIM ', ''), (x, r['normalized_score']),
                    textcoords='offset points', xytext=(4, 6), fontsize=7)
  ax.set_xscale('log')
  ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
  ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
  ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  ax.set_xlabel('plans per second at batch 1 (this machine)')
  ax.set_ylabel('normalized score (95% interval)')
  ax.set_title(f'{family_name}, {split} split: DDIM sub-steps of MetaDiffuser\'s denoiser')
  ax.legend(fontsize=8)
  plots.save_figure(fig, path)


def _normalized(value):
  return json.loads(json.dumps(value))


def _write(path, family_name, split, rows, complete):
  io.write_json(path, dict(family=family_name, split=split, eta=_ETA.value,
                           devices=str(jax.devices()), cpu_count=os.cpu_count(),
                           complete=complete, rows=rows))


def _finished_rows(path, family_name, split) -> dict:
  """The rows of an earlier (possibly interrupted) run at `path`, by label; each is reused only
  when its `made_with` (the evaluation's config fields, DDIM's included, and the trained models'
  run ids) equals this run's."""
  if not os.path.isfile(path):
    return {}
  with open(path) as f:
    old = json.load(f)
  if old.get('family') != family_name or old.get('split') != split:
    return {}
  return {row['label']: row for row in old.get('rows', ()) if 'made_with' in row}


def main(argv):
  del argv
  _common.setup()
  config, workdir, split = _CONFIG.value, _WORKDIR.value, _SPLIT.value
  family = family_from_config(config)
  k = int(config.diffusion.num_diffusion_steps)
  steps = [int(s) for s in _STEPS.value]
  if any(not 1 <= s <= k for s in steps):
    raise app.UsageError(f'--steps must be in [1, {k}] (the trained K), got {steps}')
  settings = [(f'preset ({config.planner.sampler} K={k})', {})] + [
      (f"DDIM K'={s}", {'planner.sampler': 'ddim', 'planner.num_sample_steps': s,
                        'planner.eta': _ETA.value}) for s in steps]
  out = os.path.join(workdir, 'few_step')
  path = os.path.join(out, f'{split}.json')
  if _REPLOT.value:
    with open(path) as f:
      _plot(os.path.join(out, f'few_step_{split}.png'), json.load(f)['rows'], family.name, split)
    return
  stages = methods.get_method('MetaDiffuser').stages
  done = _finished_rows(path, family.name, split)
  refs = {}  # Oracle's and Random's results, evaluated when a setting first needs them
  n_tasks = int(family.split_tasks(split).task_id.shape[0])
  rows = []
  for label, fields in settings:
    cfg = with_fields(config, fields)
    made_with = _normalized(dict(config=provenance.eval_fields(cfg),
                                 stages=provenance.stage_runs(workdir, stages, cfg.train_seeds)))
    if done.get(label, {}).get('made_with') == made_with:
      rows.append(done[label])
      print(f'[few_step/{split}] {label}: in {path} already (same config and models), kept',
            flush=True)
      continue
    for name in () if refs else (config.eval.oracle, config.eval.random):
      per_tier, _ = run_method(config, workdir, methods.get_method(name), family, split)
      refs.update({(name, t, key): r for (t, key), r in per_tier.items()})
    t0 = time.time()
    per_tier, _ = run_method(cfg, workdir, methods.get_method('MetaDiffuser'), family, split)
    eval_s = time.time() - t0
    per_method = dict(refs)
    per_method.update({('MetaDiffuser', t, key): r for (t, key), r in per_tier.items()})
    records = [r for r in make_records(family, split, per_method, oracle=config.eval.oracle,
                                       random=config.eval.random,
                                       trained={'MetaDiffuser': True, config.eval.oracle: False,
                                                config.eval.random: False})
               if r['method'] == 'MetaDiffuser']
    policy = methods.get_method('MetaDiffuser').make_policy(cfg, workdir, cfg.train_seeds[0],
                                                            family)  # loaded once, timed twice
    speed1, compile1, runs1 = plan_speed(policy, workdir, family, split, 1)
    speed_n, _, runs_n = plan_speed(policy, workdir, family, split, n_tasks)
    row = dict(label=label, fields=fields, sampler=cfg.planner.sampler,
               sample_steps=int(cfg.planner.num_sample_steps or k), trained_k=k,
               plans_per_s_batch1=round(speed1, 2), plan_compile_s=round(compile1, 2),
               timed_runs_batch1=runs1, plans_per_s_batch_tasks=round(speed_n, 2),
               batch_tasks=n_tasks, timed_runs_batch_tasks=runs_n,
               evaluation_s_with_compile=round(eval_s, 1), records=records,
               loadavg_1m=os.getloadavg()[0], made_with=made_with)
    rows.append(row)
    _write(path, family.name, split, rows, complete=False)  # an interrupted run resumes here
    scores = ', '.join(f"{r['warm_start']} {r['normalized_score']:.2f} [{r['ci_low']:.2f}, "
                       f"{r['ci_high']:.2f}]" for r in records)
    print(f'[few_step/{split}] {label}: {scores}; {speed1:.1f} plans/s at batch 1, '
          f'{speed_n:.1f} at batch {n_tasks}', flush=True)
  _write(path, family.name, split, rows, complete=True)
  _plot(os.path.join(out, f'few_step_{split}.png'), rows, family.name, split)
  print(f'[few_step/{split}] wrote {out}', flush=True)


if __name__ == '__main__':
  app.run(_common.clear_errors(main))
