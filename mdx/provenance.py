"""What each output of a workdir was made with, so that a changed config never mixes silently.

Every training stage writes `seed_{s}/{stage}/stage.json` when it starts (`status: running`) and
again, last, when it is complete (`status: done`, its completion marker). The record holds the
config fields the stage reads (`Stage.reads`, flattened, e.g. `diffusion.horizon`), a run id, and
the run ids of the stages it loads (`Stage.after`). Before a stage is trained or skipped,
`check_stage` compares the record with the current config and upstream records:

- the same fields and upstream runs: a finished stage is skipped, an unfinished one resumes;
- a difference: `StaleStageError` names each changed field (recorded and current value) and the
  two ways on: a new workdir, or `--redo=STAGE`, which moves the stage and everything downstream
  aside (`seed_{s}/{stage}.stale-<time>`; nothing is deleted) and trains them again;
- with `extend=True` (the binaries' `--extend`), a stage (finished or not) whose only difference
  is a raised step count (`Stage.steps_field`, offered by stages whose training reads the count
  nowhere else: a constant learning rate, step keys `fold_in(rng, step)`) is `'extend'`: it
  trains on from its last checkpoint to the new count, the parameters an unbroken run of that
  count would reach, under a new run id (so every evaluation of the shorter run is stale).

An evaluation writes `eval/{split}/provenance.json` (its whole config and the run ids it read)
before its completion marker `results.json`; `check_evaluation` compares them the same way.
Datasets compare their `meta.json` with the config (`mdx.data.collect`).

Workdirs written before stage records existed hold checkpoints without `stage.json`: their
stages are compared with the workdir's `config.json` (the config of the run that wrote them), and
adopted with a warning.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any, Iterable, Optional

from mdx import distributed, io
from mdx import workdir as layout

RECORD_FILE = 'stage.json'
EVAL_RECORD_FILE = 'provenance.json'
# Fields that change how a run is reported, not what it computes.
NOT_READ = ('log_every', 'checkpoint_every', 'progress_every', 'wandb.project', 'wandb.entity',
            'wandb.mode')
# Fields added to the config after runs were recorded, each with the value that reproduces those
# runs: a record without the field compares equal to a config holding that value.
ADDED_DEFAULTS = {'planner.compute_dtype': 'float32', 'corro.negatives': 'generative',
                  'corro.reward_std': 0.5, 'corro.context': 'encoder',
                  'focal.context': 'encoder', 'focal.value_penalty': True}


class StaleStageError(RuntimeError):
  """A finished (or started) output of the workdir was made with another config."""


def flatten(config) -> dict[str, Any]:
  """`{'diffusion.horizon': 4, ...}` of a ConfigDict (or dict), JSON-normalized (tuples become
  lists), so that a record read back from disk compares equal."""
  tree = config.to_dict() if hasattr(config, 'to_dict') else dict(config)
  out = {}

  def walk(prefix, node):
    if isinstance(node, dict):
      for k in sorted(node):
        walk(f'{prefix}.{k}' if prefix else str(k), node[k])
    else:
      out[prefix] = json.loads(json.dumps(node))

  walk('', tree)
  return out


def fields(config, reads: Iterable[str]) -> dict[str, Any]:
  """The flattened fields of `config` under the prefixes `reads` ('context' or 'context.h'),
  less those under a prefix marked with '-' ('-diffusion.num_train_steps': a field under a read
  prefix that the stage does not read)."""
  return select(flatten(config), reads)


def select(flat: dict[str, Any], reads: Iterable[str]) -> dict[str, Any]:
  """`fields` of an already flattened config (a record's), so that a record written before a
  stage stopped reading a field compares without it."""
  under = lambda k, prefixes: any(k == r or k.startswith(r + '.') for r in prefixes)
  keep = tuple(r for r in reads if not r.startswith('-'))
  skip = tuple(r[1:] for r in reads if r.startswith('-'))
  return {k: v for k, v in flat.items() if under(k, keep) and not under(k, skip)}


def differences(recorded: dict, current: dict) -> list[str]:
  """`'field: recorded -> current'` for each field that differs (or exists on one side only)."""
  missing = object()
  out = []
  for k in sorted(set(recorded) | set(current)):
    a, b = recorded.get(k, ADDED_DEFAULTS.get(k, missing)), current.get(k, missing)
    if a != b:
      show = lambda v: 'absent' if v is missing else json.dumps(v)
      out.append(f'{k}: {show(a)} -> {show(b)}')
  return out


def _read(path: str) -> Optional[dict]:
  if not os.path.isfile(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as err:
    raise StaleStageError(f'{path}: unreadable ({err}); move the folder aside to redo it') from err


def record_path(workdir: str, stage: str, seed: int) -> str:
  return os.path.join(layout.stage_dir(workdir, stage, seed), RECORD_FILE)


def read_record(workdir: str, stage: str, seed: int) -> Optional[dict]:
  return _read(record_path(workdir, stage, seed))


def _legacy_record(workdir, stage, seed) -> Optional[dict]:
  """A record for a stage trained before records existed, from the workdir's `config.json`."""
  from mdx.training import latest_step  # pylint: disable=g-import-not-at-top
  if latest_step(layout.checkpoint_dir(workdir, stage.name, seed)) is None:
    return None
  path = os.path.join(workdir, 'config.json')
  config = _read(path)
  if config is None:
    return None
  print(f'[provenance] {layout.stage_dir(workdir, stage.name, seed)}: no stage record (an older '
        f'mdx); compared with {path}', flush=True)
  return dict(status='legacy', run_id=f'legacy-{stage.name}-{seed}', upstream={},
              config=fields(config, stage.reads))


def _stale(where: str, diffs: list[str], redo: str) -> StaleStageError:
  shown = '\n  '.join(diffs[:12]) + (f'\n  ... and {len(diffs) - 12} more' if len(diffs) > 12
                                      else '')
  return StaleStageError(
      f'{where} was made with another config or from other upstream outputs:\n  {shown}\n'
      f'Use a new --workdir, or pass {redo} to redo it and everything after it (the old outputs '
      'are moved aside, not deleted).')


def check_stage(config, workdir: str, stage, seed: int, *, extend: bool = False) -> str:
  """`'absent'`, `'partial'` (started with this config) or `'done'`; raises `StaleStageError`
  when the stage's record disagrees with `config` or with its upstream stages' records. With
  `extend`, `'extend'` for a stage that differs only by a raised `stage.steps_field`."""
  rec = read_record(workdir, stage.name, seed) or _legacy_record(workdir, stage, seed)
  if rec is None:
    return 'absent'
  where = layout.stage_dir(workdir, stage.name, seed)
  diffs = differences(select(rec['config'], stage.reads), fields(config, stage.reads))
  for up in stage.after:
    now = read_record(workdir, up, seed)
    was = rec['upstream'].get(up)
    if rec['status'] != 'legacy' and (now is None or now['run_id'] != was):
      diffs.append(f'{up} (seed {seed}): run {was} -> {now["run_id"] if now else "absent"}')
  if diffs and extend and _only_steps_raised(rec, config, stage, diffs):
    if _checkpoint_step(workdir, stage, seed) is None:
      raise StaleStageError(f'{where}: --extend needs its checkpoints (there are none), or the '
                            f'stage would train from step 0 under a record that says it was '
                            f'extended; pass --redo={stage.name} to train it again')
    return 'extend'
  if diffs:
    raise _stale(where, diffs, f'--redo={stage.name}')
  if rec['status'] == 'legacy':
    done = _checkpoint_step(workdir, stage, seed) == stage.num_train_steps(config)
    write_record(config, workdir, stage, seed, status='done' if done else 'running',
                 run_id=rec['run_id'])
    return 'done' if done else 'partial'
  return 'done' if rec['status'] == 'done' else 'partial'


def _only_steps_raised(rec: dict, config, stage, diffs: list[str]) -> bool:
  """Whether the only difference of a record (finished or not) with `config` is a raised step
  count (one difference, and the count differs: so that one is the count)."""
  field = stage.steps_field
  if field is None or rec['status'] == 'legacy' or len(diffs) != 1:
    return False
  was, now = rec['config'].get(field), flatten(config).get(field)
  count = lambda v: isinstance(v, int) and not isinstance(v, bool)
  return count(was) and count(now) and now > was


def _checkpoint_step(workdir: str, stage, seed: int) -> Optional[int]:
  """The newest checkpoint step of the stage, or None."""
  from mdx.training import latest_step  # pylint: disable=g-import-not-at-top
  return latest_step(layout.checkpoint_dir(workdir, stage.name, seed))


def check_stages(config, workdir: str, stages, seeds, *,
                 extend: bool = False) -> dict[tuple[str, int], str]:
  """`check_stage` of every stage and seed: `{(stage, seed): status}`; one `StaleStageError`
  listing every stale stage (and the one `--redo` that fixes them all) when any is."""
  status, stale, messages = {}, [], []
  for stage in stages:
    for seed in seeds:
      try:
        status[(stage.name, seed)] = check_stage(config, workdir, stage, seed, extend=extend)
      except StaleStageError as err:
        if stage.name not in stale:
          stale.append(stage.name)
        messages.append(str(err).split('\nUse a new')[0])
  if messages:
    raise StaleStageError('\n'.join(messages) + f'\nUse a new --workdir, or pass '
                          f'--redo={",".join(stale)} to redo them and everything after them (the '
                          'old outputs are moved aside, not deleted).')
  return status


def write_record(config, workdir: str, stage, seed: int, *, status: str,
                 run_id: Optional[str] = None, extra: Optional[dict] = None) -> dict:
  upstream = {}
  for up in stage.after:
    rec = read_record(workdir, up, seed)
    if rec is None or rec['status'] != 'done':
      raise StaleStageError(f'{layout.stage_dir(workdir, stage.name, seed)} needs the finished '
                            f'stage {up!r} of seed {seed} first')
    upstream[up] = rec['run_id']
  rec = dict(stage=stage.name, seed=seed, status=status,
             run_id=run_id or f'{time.strftime("%Y%m%d-%H%M%S")}-{uuid.uuid4().hex[:8]}',
             upstream=upstream, config=fields(config, stage.reads), **(extra or {}))
  io.write_json(record_path(workdir, stage.name, seed), rec)
  return rec


def run_stage(config, workdir: str, stage, seed: int, *, extend: bool = False) -> bool:
  """Trains `stage` of `seed` unless it is done with this config; returns True when it trained.

  The record is written before training (`running`) and, as the completion marker, after it
  (`done`); a kill in between leaves a stage that resumes from its last checkpoint. `extend`:
  see `check_stage`."""
  state = check_stage(config, workdir, stage, seed, extend=extend)
  if state == 'done':
    return False
  rec = read_record(workdir, stage.name, seed)
  run_id = rec['run_id'] if state == 'partial' and rec else None
  rec = write_record(config, workdir, stage, seed, status='running', run_id=run_id,
                     extra=_extended_from(state, rec, stage))
  t0 = time.time()
  stage.train(config, workdir, seed)
  write_record(config, workdir, stage, seed, status='done', run_id=rec['run_id'],
               extra=dict(wall_time_s=round(time.time() - t0, 1),
                          **_extended_from('partial', rec, stage)))
  distributed.barrier(f'mdx_stage_{stage.name}_{seed}')  # the record, before others read it
  return True


def run_stage_stack(config, workdir: str, stage, seeds, *, extend: bool = False) -> list[int]:
  """`run_stage` for several seeds at once: the seeds not done with this config train as one
  stack (`stage.train_stack`), each with its own record; returns the seeds that trained."""
  return [s for _, _, s in run_members(stage, [(config, workdir, s) for s in seeds],
                                       extend=extend)]


def run_members(stage, members, *, extend: bool = False) -> list[tuple]:
  """`run_stage` of every `(config, workdir, seed)` of `members`, those not done as one stack
  (`stage.train_stack`; one by one when it has none or one is left), each with its own record
  (naming the stack's members); returns the members that trained."""
  status = [check_stage(c, w, stage, s, extend=extend) for c, w, s in members]
  todo = [m for m, st in zip(members, status) if st != 'done']
  if len(todo) < 2 or stage.train_stack is None:
    return [m for m in todo if run_stage(*m[:2], stage, m[2], extend=extend)]
  if 'extend' in status and any(st not in ('done', 'extend') for st in status):
    # A stack resumes every member from their lowest common step: extensions go on their own,
    # so that none retrains from the step of a new or partial member.
    grown = [m for m, st in zip(members, status) if st == 'extend']
    rest = [m for m, st in zip(members, status) if st not in ('done', 'extend')]
    return run_members(stage, grown, extend=True) + run_members(stage, rest)
  records = []
  for (config, workdir, seed), st in zip(members, status):
    if st == 'done':
      continue
    rec = read_record(workdir, stage.name, seed)
    records.append(write_record(config, workdir, stage, seed, status='running',
                                run_id=rec['run_id'] if st == 'partial' and rec else None,
                                extra=_extended_from(st, rec, stage)))
  t0 = time.time()
  stage.train_stack(todo)
  wall = round(time.time() - t0, 1)
  names = [f'{os.path.relpath(w, todo[0][1])}:seed_{s}' for _, w, s in todo]
  for (config, workdir, seed), rec in zip(todo, records):
    write_record(config, workdir, stage, seed, status='done', run_id=rec['run_id'],
                 extra=dict(wall_time_s=wall, stacked_with=names,
                            stacked_seeds=sorted({s for _, _, s in todo}),
                            **_extended_from('partial', rec, stage)))
  distributed.barrier(f'mdx_stack_{stage.name}')  # the records, before others read them
  return todo


def _extended_from(state: str, rec: Optional[dict], stage) -> dict:
  """The record's `extended_from` entry (the run and step count an extension started from):
  new for `state == 'extend'` of a finished run, carried over while an extension runs (also when
  an unfinished extension is raised again) and when it finishes."""
  if rec is None:
    return {}
  if state == 'extend' and not (rec['status'] == 'running' and 'extended_from' in rec):
    return dict(extended_from={'run_id': rec['run_id'],
                               stage.steps_field: rec['config'][stage.steps_field]})
  return {'extended_from': rec['extended_from']} if 'extended_from' in rec else {}


def downstream(stages, names: Iterable[str]) -> list:
  """`stages` (in training order) that are named or load, directly or not, a named one."""
  chosen = set(names)
  out = []
  for s in stages:
    if s.name in chosen or chosen & set(s.after):
      chosen.add(s.name)
      out.append(s)
  return out


def move_aside(path: str) -> Optional[str]:
  """Renames `path` to `path.stale-<time>` (never deletes); returns the new name."""
  if not os.path.exists(path):
    return None
  dest = f'{path.rstrip(os.sep)}.stale-{time.strftime("%Y%m%d-%H%M%S")}'
  os.rename(path, dest)
  print(f'[provenance] moved {path} to {dest}', flush=True)
  return dest


def redo_stages(workdir: str, stages, names: Iterable[str], seeds: Iterable[int]) -> list:
  """Moves the named stages and their downstream stages aside for `seeds`; returns them."""
  names = list(names)
  known = {s.name for s in stages}
  unknown = [n for n in names if n not in known]
  if unknown:
    raise ValueError(f'--redo: unknown stage(s) {unknown}; stages: {sorted(known)}')
  todo = downstream(stages, names)
  for s in todo:
    for seed in seeds:
      move_aside(layout.stage_dir(workdir, s.name, seed))
  return todo


def eval_fields(config) -> dict[str, Any]:
  return {k: v for k, v in flatten(config).items() if k not in NOT_READ}


def stage_runs(workdir: str, stages, seeds) -> dict[str, Optional[str]]:
  return {f'{s.name}/seed_{seed}': (read_record(workdir, s.name, seed) or {}).get('run_id')
          for s in stages for seed in seeds}


def write_evaluation(config, workdir: str, split: str, stages, seeds, tag: str = '') -> None:
  io.write_json(os.path.join(layout.eval_dir(workdir, split, tag), EVAL_RECORD_FILE),
                dict(config=eval_fields(config), stages=stage_runs(workdir, stages, seeds)))


def check_evaluation(config, workdir: str, split: str, stages, seeds) -> bool:
  """True when `eval/{split}` is complete and was made with `config` and the current stages;
  raises `StaleStageError` when it is complete but was not."""
  out = layout.eval_dir(workdir, split)
  if not os.path.isfile(os.path.join(out, 'results.json')):
    return False
  rec = _read(os.path.join(out, EVAL_RECORD_FILE))
  if rec is None:
    print(f'[provenance] {out}: no provenance record (an older mdx); kept as complete',
          flush=True)
    return True
  diffs = differences(rec['config'], eval_fields(config))
  diffs += [f'{k}: run {rec["stages"].get(k)} -> {v}' for k, v in
            stage_runs(workdir, stages, seeds).items() if rec['stages'].get(k) != v]
  if diffs:
    raise _stale(out, diffs, '--force_eval')
  return True
