"""The one module that knows a run folder's layout.

  WORKDIR/
    .lock                            held by the binary writing here (`lock`)
    config.json                      the config of the latest run that passed its checks
    config_history/<time>-<binary>.json   the config of every run
    data/{split}_{tier}/             datasets: data.npz + meta.json (`mdx.data.trajectories`)
    seed_{s}/{stage}/                a training stage of training seed s: stage.json (its config
                                     record and completion marker, `mdx.provenance`),
                                     checkpoints/, metrics.jsonl, TensorBoard files, and what the
                                     stage adds (the context stage's normalizer.npz, ...)
    eval/{split}/                    provenance.json, table.txt, per_task_returns.json, plots,
                                     analyses, and results.json last (its completion marker)
    eval/{split}-sweep-{fields}/     the same for an evaluation sweep (`config.eval.sweep`)
    variants/{field}={value}/        a training sweep's variant (`experiments/train.py --sweep`):
                                     a workdir of its own whose data/ and upstream stages are
                                     links to this one's (`make_variant`)

Datasets are shared by every training seed; `config.train_seeds` lists the seeds.
"""
from __future__ import annotations

import contextlib
import fcntl
import os

from mdx import distributed


def dataset_dir(workdir: str, split: str, tier: str) -> str:
  return os.path.join(workdir, 'data', f'{split}_{tier}')


def stage_dir(workdir: str, stage: str, seed: int) -> str:
  return os.path.join(workdir, f'seed_{seed}', stage)


def checkpoint_dir(workdir: str, stage: str, seed: int) -> str:
  return os.path.join(stage_dir(workdir, stage, seed), 'checkpoints')


def eval_dir(workdir: str, split: str, tag: str = '') -> str:
  """`eval/{split}`, or `eval/{split}-{tag}` for a separate evaluation (a sweep)."""
  return os.path.join(workdir, 'eval', f'{split}-{tag}' if tag else split)


def variant_dir(workdir: str, setting: dict) -> str:
  """`variants/context_dropout=0.1` (fields sorted) for a training sweep's setting."""
  name = ','.join(f'{k}={v:g}' for k, v in sorted(setting.items()))
  return os.path.join(workdir, 'variants', name)


def make_variant(workdir: str, setting: dict, shared: dict[int, list[str]]) -> str:
  """The variant workdir of `setting`, with `data/` and the stages `shared[seed]` of each seed
  linked (relative links) to `workdir`'s, which the variant reads but never writes."""
  out = variant_dir(workdir, setting)
  links = [('data', os.path.join(workdir, 'data'))] + [
      (os.path.join(f'seed_{s}', st), stage_dir(workdir, st, s))
      for s, names in shared.items() for st in names]
  for rel, target in links:
    path = os.path.abspath(os.path.join(out, rel))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.lexists(path):
      os.symlink(os.path.relpath(os.path.abspath(target), os.path.dirname(path)), path)
  return out


LOCK_FILE = '.lock'


class WorkdirLockedError(RuntimeError):
  """Another process holds the workdir's lock."""


@contextlib.contextmanager
def lock(workdir: str, what: str = 'mdx'):
  """An exclusive lock on `workdir` for the life of the block (an `flock` on `WORKDIR/.lock`,
  released by the kernel when the process dies, so a killed run never leaves it stale).

  Raises:
    WorkdirLockedError: at once, naming the holder's process id and command, when another
      process holds it.
  """
  if not distributed.is_writer():  # a multi-process run: process 0 holds it for all
    yield
    return
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_FILE)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    holder = os.pread(fd, 4096, 0).decode(errors='replace').strip() or 'unknown'
    os.close(fd)
    raise WorkdirLockedError(f'{workdir} is in use by another process ({holder}); wait for it '
                             'to finish or stop it, or use another --workdir') from None
  try:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'pid {os.getpid()}: {what}\n'.encode(), 0)
    yield
  finally:
    os.ftruncate(fd, 0)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
