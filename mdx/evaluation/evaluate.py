"""The evaluation of any set of methods on one split: `results.json`, the table and plots.

Each method (`mdx.methods.Method`) gives one `Policy` per training seed. The policies' params are
stacked, and one compiled program runs them all: vmapped over training seeds and over
evaluation seeds, each a batch of (warm-start tiers x) tasks x episodes stepped in-graph.
A method that reads warm-start data runs once per tier of `config.eval.warm_starts` (its rows
in the paper's Tables 1 and 2), the others in the column 'n/a'.

`normalized_score = (R - R_random) / (R_oracle - R_random)` with mean returns over the split's
tasks, episodes and seeds; the reference rows are the methods named by `config.eval.oracle` and
`config.eval.random` (which must be among the methods). Every row names its split and carries a
95% bootstrap interval (`mdx.evaluation.stats`) and its numbers of training and evaluation seeds.
"""
from __future__ import annotations

import dataclasses
import io as pyio
import json
import os
import shutil
import time
import zlib
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mdx import data as mdata
from mdx import distributed
from mdx import io
from mdx import mesh as mmesh
from mdx import provenance
from mdx.sweep import parse_sweep, record_setting, sweep_key, sweep_tag, with_fields
from mdx.config_check import check_config
from mdx import workdir as layout
from mdx.envs import TaskFamily, family_from_config
from mdx.evaluation import stats
from mdx.evaluation.policy import Policy, stack_params
from mdx.evaluation.rollout import Episodes, rollout
from mdx.progress import from_config as progress_from_config

RESULT_KEYS = ('family', 'split', 'method', 'warm_start', 'sweep', 'mean_return', 'std_return',
               'return_ci_low', 'return_ci_high', 'oracle_return', 'random_return',
               'normalized_score', 'ci_low', 'ci_high', 'num_tasks', 'episodes_per_task',
               'num_train_seeds', 'num_eval_seeds')
NO_TIER = 'n/a'


def method_key(rng: jax.Array, name: str) -> jax.Array:
  """Each method's evaluation key: `fold_in` of the evaluation key by a hash of its name, so a
  method's episodes do not depend on which other methods are evaluated with it."""
  return jax.random.fold_in(rng, zlib.crc32(name.encode()))


def _take(tree, index):
  return jax.tree.map(lambda x: jnp.asarray(x)[index], tree)


def _trained_setting(config, workdir: str, method, setting: dict):
  """`(part, config, workdir)` of a sweep setting: its trained fields (`method.trained_fields`),
  the config with them, and where their stages are: the config's own workdir where the part
  changes nothing, else the training sweep's variant (`experiments/train.py --sweep`)."""
  part = {f: v for f, v in setting.items() if f in method.trained_fields}
  cfg = with_fields(config, part)
  same = provenance.flatten(cfg) == provenance.flatten(config)
  return part, cfg, workdir if same else layout.variant_dir(workdir, part)


def _variants(config, workdir: str, method, settings: Sequence[dict], seeds):
  """`[(config, workdir)]` of each setting's trained stages (`_trained_setting`), each checked
  against its config (`mdx.provenance`)."""
  out = []
  for setting in settings:
    part, cfg, wd = _trained_setting(config, workdir, method, setting)
    # The setting as a whole must be a valid config (beta = 0 allows no CFG weight but 1).
    check_config(with_fields(cfg, {f'planner.{k}': v for k, v in setting.items()
                                   if k not in part and k in config.planner}))
    if wd != workdir and not os.path.isdir(wd):
      raise FileNotFoundError(
          f'{method.name}: the sweep setting {part} has no trained variant at {wd}; train it '
          f'with experiments/train.py --method={method.name} --workdir={workdir} '
          f"--sweep='{';'.join(f'{k}={v:g}' for k, v in part.items())}'")
    status = provenance.check_stages(cfg, wd, method.stages, seeds)
    missing = sorted(f'{k[0]}/seed_{k[1]}' for k, v in status.items() if v != 'done')
    if missing:
      raise FileNotFoundError(f'{method.name}: the stages {missing} of {wd} are not trained')
    out.append((cfg, wd))
  return out


def sweep_policy(config, workdir: str, method, family: TaskFamily, settings: Sequence[dict],
                 seeds) -> Policy:
  """The policies of `method` for every setting and training seed, params stacked
  `[S_set, S_train, ...]` (`[S_train, ...]` without a sweep, `settings == [{}]`): a knob's value
  under `params['knobs']`, a trained field's setting by its variant's stages (`_variants`)."""
  fields = tuple(settings[0])
  trained = method.trained_fields
  knob_fields = tuple(f for f in fields if f not in trained)
  if fields:
    unknown = [f for f in knob_fields if f not in method.sweepable]
    if unknown:
      raise ValueError(f'{method.name} cannot sweep {unknown} in one program; it sweeps '
                       f'{list(method.sweep_fields)}')
    traced = {'traced': knob_fields} if knob_fields else {}
    # Trained settings: each one's own stages (a variant); else the config's, for every setting.
    pairs = (_variants(config, workdir, method, settings, seeds)
             if len(knob_fields) < len(fields) else [(config, workdir)])
    policy = stack_params([stack_params([method.make_policy(cfg, wd, s, family, **traced)
                                         for s in seeds]) for cfg, wd in pairs])
    if len(pairs) < len(settings):
      policy = policy.replace(params=jax.tree.map(
          lambda x: jnp.repeat(x, len(settings), axis=0), policy.params))
    if knob_fields:
      knobs = {f: jnp.asarray([[st[f]] * len(seeds) for st in settings], jnp.float32)
               for f in knob_fields}  # [S_set, S_train]
      policy = policy.replace(params={**policy.params, 'knobs': knobs})
  else:
    policy = stack_params([method.make_policy(config, workdir, s, family) for s in seeds])
  return policy


def run_method(config, workdir: str, method, family: TaskFamily, split: str, *,
               keep_episodes: bool = False, settings: Sequence[dict] = ({},)):
  """Every (sweep setting x) training seed x evaluation seed x (tier x) task x episode of
  `method` on `split`, in one compiled program.

  Args:
    settings: values of the knobs `method.sweepable` and of the trained fields
      `method.trained_fields` (`parse_sweep`), each one more entry of a vmapped axis (a trained
      field's setting evaluates that training sweep variant's stages); `({},)` runs the config
      as it is.

  Returns:
    `(returns {(tier, sweep_key): [S_train, S_eval, tasks, episodes]}, episodes or None)`;
    `episodes` (with `keep_episodes`) are the `Episodes` of the first (kept) setting, training
    and evaluation seed, batch `[tiers x tasks x episodes]` in that order. A sweep setting with
    a non-finite action or return in any episode is left out (and printed), so that a diverging
    guide scale does not cost the other settings' results.

  Raises:
    FloatingPointError: non-finite actions or returns and no setting left to score.
  """
  e = config.eval
  tasks = family.split_tasks(split)
  n_tasks, eps = int(tasks.task_id.shape[0]), int(e.episodes_per_task)
  seeds = tuple(config.train_seeds) if method.stages else (None,)
  settings = list(settings)
  fields = tuple(settings[0])
  policy = sweep_policy(config, workdir, method, family, settings, seeds)
  tiers = list(e.warm_starts) if method.uses_warm_start else [NO_TIER]
  # Environment b of the batch: tier b // (n_tasks eps), task (b // eps) % n_tasks. With a mesh
  # (`config.mesh_devices`) the batch is padded to a multiple of its devices and sharded.
  task_index = np.tile(np.repeat(np.arange(n_tasks), eps), len(tiers))
  mesh = mmesh.make_mesh(config)
  padded = mmesh.padded_index(len(task_index), mesh)
  batch_tasks = mmesh.shard_batch(_take(tasks, task_index[padded]), mesh)
  warm = None
  if method.uses_warm_start:
    data = [mdata.load_dataset(workdir, family, split, t) for t in tiers]
    warm = jax.tree.map(lambda *xs: jnp.concatenate(xs), *[_take(d, np.repeat(
        np.arange(n_tasks), eps)) for d in data])
    warm = mmesh.shard_batch(_take(warm, padded), mesh)
  rng = method_key(jax.random.fold_in(jax.random.PRNGKey(config.seed), 7), method.name)
  eval_keys = mmesh.replicate(jax.random.split(rng, e.num_eval_seeds), mesh)
  policy = policy.replace(params=mmesh.replicate(policy.params, mesh))  # restored on one device

  report = progress_from_config(config, f'eval/{split} {method.name}')

  def one(pol, key, batch_tasks, warm):
    ep = rollout(family, batch_tasks, pol, key, warm_start=warm, keep_info=False,
                 progress=report)
    finite = jnp.isfinite(ep.returns) & jnp.all(
        jnp.isfinite(ep.actions) | ~ep.alive[..., None], axis=(1, 2))
    return (ep if keep_episodes else ep.returns), finite

  t0 = time.time()
  shared = (None, None)  # the batch's tasks and warm-start data, the same for every seed
  run = jax.vmap(one, in_axes=(None, 0) + shared)  # evaluation seeds
  if jax.tree.leaves(policy.params):  # the training seeds' stacked params
    run = jax.vmap(run, in_axes=(0, None) + shared)
    if fields:  # and the settings'
      run = jax.vmap(run, in_axes=(0, None) + shared)
    out = jax.jit(run)(policy, eval_keys, batch_tasks, warm)
  else:  # nothing trained: a training-seed axis of one
    out = jax.tree.map(lambda x: x[None], jax.jit(run)(policy, eval_keys, batch_tasks, warm))
  if not fields:
    out = jax.tree.map(lambda x: x[None], out)  # a settings axis of one
  out, finite = distributed.to_host(jax.block_until_ready(out))  # all processes' shards
  out, finite = jax.tree.map(lambda x: x[:, :, :, :len(task_index)], (out, finite))  # unpad
  returns = np.asarray(out.returns if keep_episodes else out)  # [S_set, S_train, S_eval, B]
  swept = f'{len(settings)} settings x ' if fields else ''
  print(f'[eval/{split}] {method.name}: {swept}{len(seeds)} training seeds x '
        f'{e.num_eval_seeds} evaluation seeds x {len(tiers)} tiers x {n_tasks} tasks x {eps} '
        f'episodes in one program, {time.time() - t0:.1f}s (with compile)', flush=True)
  finite = np.asarray(finite)
  kept = [h for h in range(len(settings)) if np.all(finite[h])]
  if len(kept) < len(settings):
    bad = np.argwhere(~finite)
    h, i, j, b = bad[0]
    task_id = int(np.asarray(tasks.task_id)[task_index[b]])
    where = f'setting {settings[h]}, ' if fields else ''
    message = (
        f'{method.name} on {split}: non-finite actions or returns in {len(bad)} of '
        f'{finite.size} episodes; the first: {where}warm start {tiers[b // (n_tasks * eps)]!r}, '
        f'task {task_id}, training seed {seeds[i]}, evaluation seed {j}. Check the planner '
        'settings (guide_scale, noise_scale, cfg_weight) and the trained stages.')
    if not kept:  # nothing to score (without a sweep: the one setting)
      raise FloatingPointError(message)
    # A sweep keeps its finite settings; a setting with any non-finite episode is not scored.
    for h in (h for h in range(len(settings)) if h not in kept):
      print(f'[eval/{split}] {method.name}: setting {settings[h]} dropped, non-finite in '
            f'{int(np.sum(~finite[h]))} of {finite[h].size} episodes', flush=True)
    print(f'[eval/{split}] {message}', flush=True)
  shaped = returns.reshape(returns.shape[:3] + (len(tiers), n_tasks, eps))
  per_tier = {(t, sweep_key(record_setting(settings[h]))): shaped[h, :, :, i]
              for h in kept for i, t in enumerate(tiers)}
  episodes = jax.tree.map(lambda x: x[kept[0], 0, 0], out) if keep_episodes else None
  return per_tier, episodes


PARTIAL_DIR = 'partial'


def partial_fingerprint(config, workdir: str, method, split: str, settings) -> dict:
  """What a method's evaluation depends on: its name, the split, the sweep settings, every field
  the evaluation reads (`provenance.eval_fields`) and the run ids of the trained stages it loads
  (the workdir's, and each trained setting's variant's). A method's evaluation key depends on its
  name alone (`method_key`), so equal fingerprints mean equal programs and equal returns."""
  seeds = tuple(config.train_seeds) if method.stages else ()
  runs = provenance.stage_runs(workdir, method.stages, seeds)
  for setting in settings:
    _, _, wd = _trained_setting(config, workdir, method, setting)
    if wd != workdir:
      runs.update({f'{os.path.basename(wd)}/{k}': v
                   for k, v in provenance.stage_runs(wd, method.stages, seeds).items()})
  made = dict(method=method.name, split=split, settings=[dict(s) for s in settings],
              config=provenance.eval_fields(config), stages=runs)
  return json.loads(json.dumps(made))  # as it reads back from JSON (tuples as lists)


def _partial_paths(out: str, name: str) -> tuple[str, str]:
  base = os.path.join(out, PARTIAL_DIR, name.replace('/', '_'))
  return base + '.json', base + '.npz'


def save_partial(out: str, name: str, made: dict, per_tier: dict,
                 episodes: Episodes | None) -> None:
  """A finished method's returns and kept episodes under `out/partial/`, so that an evaluation
  stopped in a later method resumes without re-running it (removed once `results.json` is
  written). The arrays go first and the fingerprint last: a kill between them leaves nothing
  that is read back."""
  keys = list(per_tier)
  arrays = {f'returns/{i}': np.asarray(per_tier[k]) for i, k in enumerate(keys)}
  if episodes is not None:
    for f in dataclasses.fields(episodes):
      value = getattr(episodes, f.name)
      if f.name == 'info':
        arrays.update({f'info/{k}': np.asarray(v) for k, v in value.items()})
      elif value is not None:
        arrays[f'episodes/{f.name}'] = np.asarray(value)
  meta, data = _partial_paths(out, name)
  buf = pyio.BytesIO()
  np.savez(buf, **arrays)
  io.write_atomic(data, buf.getvalue())
  io.write_json(meta, dict(made, keys=[list(k) for k in keys], episodes=episodes is not None))


def load_partial(out: str, name: str, made: dict):
  """`(per_tier, episodes)` that `save_partial` kept for `made`, or None where there is none, it
  was made otherwise (printed), or this is one of several processes (each must run every
  program, and they may not share a file system)."""
  meta, data = _partial_paths(out, name)
  if distributed.process_count() > 1 or not (os.path.isfile(meta) and os.path.isfile(data)):
    return None
  with open(meta) as f:
    saved = json.load(f)
  keys = [tuple(k) for k in saved.pop('keys')]
  has_episodes = saved.pop('episodes')
  if saved != made:
    diffs = provenance.differences(saved.get('config', {}), made['config'])
    diffs += [k for k in ('method', 'split', 'settings', 'stages') if saved.get(k) != made[k]]
    print(f'[eval] {meta}: made with other settings or stages ({", ".join(diffs[:5])}); '
          f'{name} runs again', flush=True)
    return None
  with np.load(data) as z:
    per_tier = {k: z[f'returns/{i}'] for i, k in enumerate(keys)}
    episodes = None
    if has_episodes:
      fields = {n.split('/', 1)[1]: z[n] for n in z.files if n.startswith('episodes/')}
      info = {n.split('/', 1)[1]: z[n] for n in z.files if n.startswith('info/')}
      episodes = Episodes(info=info, **fields)
  return per_tier, episodes


def make_records(family: TaskFamily, split: str, per_method: dict, *, oracle: str,
                 random: str, trained: dict) -> list[dict]:
  """One row per (method, tier, sweep setting) from
  `{(method, tier, sweep_key): returns [S_train, S_eval, tasks, eps]}`."""
  r_or = float(np.mean(per_method[(oracle, NO_TIER, sweep_key({}))]))
  r_ra = float(np.mean(per_method[(random, NO_TIER, sweep_key({}))]))
  records = []
  for (name, tier, key), returns in per_method.items():
    mean = float(np.mean(returns))
    lo, hi = stats.interval(returns)
    records.append(dict(
        family=family.name, split=split, method=name, warm_start=tier, sweep=json.loads(key),
        mean_return=mean,
        std_return=float(np.std(returns.mean(axis=(0, 1, 3)))),  # across tasks (the paper's ±)
        return_ci_low=lo, return_ci_high=hi, oracle_return=r_or, random_return=r_ra,
        normalized_score=float(stats.normalized(mean, r_or, r_ra)),
        ci_low=float(stats.normalized(lo, r_or, r_ra)),
        ci_high=float(stats.normalized(hi, r_or, r_ra)),
        num_tasks=int(returns.shape[2]), episodes_per_task=int(returns.shape[3]),
        num_train_seeds=int(returns.shape[0]) if trained[name] else 0,
        num_eval_seeds=int(returns.shape[1])))
  return records


def evaluate(config, workdir: str, methods: Sequence, *, split: str = 'test') -> list[dict]:
  """Evaluates `methods` (`mdx.methods.Method`) on `split`; writes `WORKDIR/eval/{split}/`
  (`results.json`, `per_task_returns.json`, `table.txt`, `config.json`, plots, the methods'
  analyses, the videos of `config.eval.videos`; a sweep `config.eval.sweep` to
  `eval/{split}-sweep-<fields>/`) and returns the records. Resumable: each method's finished
  program is kept under `partial/` until the results are written, and a rerun of the same
  evaluation (same fields, trained stages, split and sweep) reads it back rather than running it
  again (`partial_fingerprint`; one-process runs).

  Raises:
    FloatingPointError: a method's actions or returns are not finite (naming the method, the
      warm-start tier and the task); nothing is written then. In a sweep, the settings that
      diverged are left out and named under the table, the others written.
  """
  family = family_from_config(config)
  check_config(config, family)
  e = config.eval
  wanted = list(methods)
  for ref in (e.oracle, e.random):
    if ref not in [m.name for m in wanted]:
      raise ValueError(f'evaluate needs the reference method {ref!r} (config.eval.oracle / '
                       f'config.eval.random) among the methods, got {[m.name for m in wanted]}')
  sweep = parse_sweep(e.sweep)
  out = layout.eval_dir(workdir, split, sweep_tag(sweep))
  marker = os.path.join(out, 'results.json')
  if os.path.exists(marker):  # the old marker goes first: a kill below leaves no stale "done"
    os.replace(marker, marker + '.previous')
  per_method, episodes, dropped = {}, {}, []
  for method in wanted:
    swept = sweep != [{}] and set(sweep[0]) <= set(method.sweep_fields)
    settings = sweep if swept else ({},)
    made = partial_fingerprint(config, workdir, method, split, settings)
    done = load_partial(out, method.name, made)
    if done is None:
      per_tier, eps = run_method(config, workdir, method, family, split, keep_episodes=True,
                                 settings=settings)
      save_partial(out, method.name, made, per_tier, eps)
    else:
      per_tier, eps = done
      print(f'[eval/{split}] {method.name}: its finished program of an interrupted run of this '
            f'evaluation reused ({os.path.join(out, PARTIAL_DIR)})', flush=True)
    for (tier, key), returns in per_tier.items():
      per_method[(method.name, tier, key)] = returns
    episodes[method.name] = eps
    scored = {key for _, key in per_tier}
    dropped += [row_label(method.name, record_setting(st)) for st in (sweep if swept else ())
                if sweep_key(record_setting(st)) not in scored]
  records = make_records(family, split, per_method, oracle=e.oracle, random=e.random,
                         trained={m.name: bool(m.stages) for m in wanted})
  detail = {f'{m}/{t}' + ('' if k == sweep_key({}) else f'/{k}'): np.asarray(r).tolist()
            for (m, t, k), r in per_method.items()}
  io.write_json(os.path.join(out, 'per_task_returns.json'), detail)
  table = format_table(records)
  if dropped:  # settings that diverged, named where the rows are read
    table += ''.join(f'\n{d}: not scored (non-finite actions or returns)' for d in dropped)
  io.write_atomic(os.path.join(out, 'table.txt'), table + '\n')
  # The whole config this evaluation ran with (the workdir's `config.json` is the last pipeline's).
  io.write_atomic(os.path.join(out, 'config.json'), config.to_json_best_effort(indent=1))
  try:
    from mdx.evaluation import plots  # pylint: disable=g-import-not-at-top
    first = {}  # the plots show each method's first setting
    for (m, t, _), r in per_method.items():
      first.setdefault((m, t), r)
    plots.plot_all(out, family, family.split_tasks(split), first, episodes,
                   tiers=list(e.warm_starts), episodes_per_task=int(e.episodes_per_task))
  except Exception as err:  # plotting must never lose the results  # pylint: disable=broad-except
    print(f'[eval] plots skipped: {type(err).__name__}: {err}', flush=True)
  for method in wanted:
    for analysis in method.analyses if sweep == [{}] else ():  # a sweep: the returns only
      analysis(config, workdir, split, out)
  if sweep == [{}] and e.videos:
    try:
      from mdx.evaluation import video  # pylint: disable=g-import-not-at-top
      video.evaluation_videos(config, workdir, split, out, wanted, family)
    except Exception as err:  # a video must never lose the results  # pylint: disable=broad-except
      print(f'[eval] videos skipped: {type(err).__name__}: {err}', flush=True)
  provenance.write_evaluation(config, workdir, split,
                              list(dict.fromkeys(s for m in wanted for s in m.stages)),
                              config.train_seeds, sweep_tag(sweep))
  io.write_json(marker, records)  # last: the evaluation's completion marker
  if distributed.is_writer():
    shutil.rmtree(os.path.join(out, PARTIAL_DIR), ignore_errors=True)
  print(table, flush=True)
  return records


def row_label(method: str, setting: dict) -> str:
  """A table row's name: the method and its sweep setting, e.g. `MetaDiffuser guide_scale=0.1`."""
  return method + ''.join(f' {k}={v:g}' for k, v in setting.items())


def format_table(records: list[dict]) -> str:
  """The paper's layout: one row per method, one column per warm-start tier,
  `mean return (normalized score [95% interval])`."""
  tiers = [t for t in mdata.TIERS if any(r['warm_start'] == t for r in records)]
  label = lambda r: row_label(r['method'], r.get('sweep', {}))  # noqa: E731
  methods = list(dict.fromkeys(label(r) for r in records))
  first = records[0] if records else {}
  cell = lambda r: (f"{r['mean_return']:.2f} ({r['normalized_score']:.2f} "
                    f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}])")
  width, name = 30, max([14] + [len(m) + 2 for m in methods])
  lines = [f"{first.get('family', '')}, {first.get('split', '')} split: mean return "
           '(normalized score [95% bootstrap interval])',
           f"{'method':<{name}}" + ''.join(f'{"warm start: " + t:<{width}}' for t in tiers)
           + 'seeds']
  for m in methods:
    rows = {r['warm_start']: r for r in records if label(r) == m}
    any_row = next(iter(rows.values()))
    seeds = f"train {any_row['num_train_seeds']}, eval {any_row['num_eval_seeds']}"
    if NO_TIER in rows:
      lines.append(f'{m:<{name}}{cell(rows[NO_TIER]):<{width}}'
                   + ' ' * (width * (len(tiers) - 1)) + seeds)
    else:
      lines.append(f'{m:<{name}}' + ''.join(f'{cell(rows[t]) if t in rows else "-":<{width}}'
                                            for t in tiers) + seeds)
  return '\n'.join(lines)
