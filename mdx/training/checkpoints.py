"""Checkpoints that are verified when read: Orbax steps with a digest of every array.

`save` writes a step with Orbax (a temporary folder renamed into place), waits for it, then writes
`mdx_digest.json` into the step folder: for every leaf of the saved pytree its path, shape, dtype
and SHA-256. `restore` reads the newest step and checks it against that digest (same structure,
same bytes) and that every floating-point leaf is finite. A step that fails is named as corrupt
(folder, step, the first bad leaf) and the previous kept step is used instead, said so on the
terminal; a mismatch of structure against the digest is a changed config, not corruption, and is
reported as such (every kept step would mismatch alike).

A step without a digest (written by an older mdx, or killed between Orbax's rename and the
digest) is read with the finiteness check only, and says so.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from mdx import distributed, io

DIGEST_FILE = 'mdx_digest.json'


class CorruptCheckpointError(RuntimeError):
  """No kept step of a checkpoint folder could be restored intact."""


class CheckpointMismatchError(ValueError):
  """A checkpoint's arrays do not have the structure the config builds (a changed model)."""


def checkpoint_manager(ckpt_dir: str, max_to_keep: int = 2) -> ocp.CheckpointManager:
  """Orbax manager for `ckpt_dir`; Orbax writes each step to a temporary folder then renames it."""
  return ocp.CheckpointManager(os.path.abspath(ckpt_dir),
                               options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                                                    create=True))


def _leaf_path(path) -> str:
  """A leaf's path with container kinds erased (`params/Dense_0/kernel`), so that a dataclass
  state and the dict of its fields give the same names."""
  return jax.tree_util.keystr(path, simple=True, separator='/')


def digest(tree: Any) -> dict[str, dict]:
  """`{leaf path: {shape, dtype, sha256}}` of a pytree of arrays."""
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(distributed.to_host(tree))[0]:
    x = np.ascontiguousarray(np.asarray(leaf))
    out[_leaf_path(path)] = dict(shape=list(x.shape), dtype=x.dtype.name,
                                 sha256=hashlib.sha256(x.tobytes()).hexdigest())
  return out


def step_dir(manager: ocp.CheckpointManager, step: int) -> str:
  return os.path.join(str(manager.directory), str(step))


def save(manager: ocp.CheckpointManager, step: int, state: Any) -> None:
  """Saves `state` as `step` and writes its digest beside Orbax's files (atomically, last). In a
  multi-process run every process takes part in Orbax's save and process 0 writes the digest
  (`io`); the others wait for it."""
  manager.save(step, args=ocp.args.StandardSave(state))
  manager.wait_until_finished()
  io.write_json(os.path.join(step_dir(manager, step), DIGEST_FILE), digest(state))
  distributed.barrier(f'mdx_checkpoint_{step}')


def _move_step(manager: ocp.CheckpointManager, step: int, folder: str) -> str:
  """Moves checkpoint `step` to `<checkpoints>/../<folder>/<step>-<time>` (never deletes it),
  so that training can write that step again; returns the new path."""
  dest = os.path.join(os.path.dirname(str(manager.directory)), folder,
                      f'{step}-{time.strftime("%Y%m%d-%H%M%S")}')
  if distributed.is_writer():  # a multi-process run: process 0 moves it, the others wait
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    shutil.move(step_dir(manager, step), dest)
  distributed.barrier(f'mdx_move_{step}_{folder}')
  manager.reload()
  return dest


def set_aside_after(manager: ocp.CheckpointManager, step: int) -> list[str]:
  """Moves the steps newer than `step` to `<checkpoints>/../superseded_checkpoints/`; returns
  the new folders."""
  moved = []
  for newer in sorted(s for s in manager.all_steps() if s > step):
    moved.append(_move_step(manager, newer, 'superseded_checkpoints'))
    print(f'[checkpoint] moved step {newer} of {manager.directory} to {moved[-1]}', flush=True)
  return moved


def _read_digest(manager, step) -> dict | None:
  path = os.path.join(step_dir(manager, step), DIGEST_FILE)
  if not os.path.isfile(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}  # unreadable: verification fails below and names the file


def _structure_mismatch(recorded: dict, template: dict) -> str | None:
  """The first leaf whose presence, shape or dtype differs (template leaves only)."""
  for path, want in template.items():
    got = recorded.get(path)
    if got is None:
      return f'{path}: in this config, not in the checkpoint'
    if got['shape'] != want['shape'] or got['dtype'] != want['dtype']:
      return (f"{path}: checkpoint {got['dtype']}{got['shape']}, this config "
              f"{want['dtype']}{want['shape']}")
  return None


def _verify(restored: Any, recorded: dict | None) -> str | None:
  """Why `restored` is not the saved tree (digest or finiteness), or None."""
  actual = digest(restored)
  if recorded is not None:
    for path, got in actual.items():
      if path not in recorded or recorded[path]['sha256'] != got['sha256']:
        return f'{path}: its bytes differ from the digest written with the checkpoint'
  for path, leaf in jax.tree_util.tree_flatten_with_path(restored)[0]:
    x = np.asarray(leaf)
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
      bad = int(x.size - np.isfinite(x).sum())
      return f'{_leaf_path(path)}: {bad} non-finite values'
  return None


def restore(manager: ocp.CheckpointManager, template: Any, *, partial: bool = False,
            quarantine: bool = False, at_most: int | None = None
            ) -> tuple[Any, int] | tuple[None, None]:
  """The newest intact step (at most `at_most`, when given) restored into `template`'s
  structure, and its step number.

  Steps are tried newest first; each corrupt one is reported and skipped (and, with
  `quarantine`, moved to `<checkpoints>/../corrupt_checkpoints/` so that training can write that
  step again). `partial`: restore only `template`'s leaves (a dict of some of the state's fields).

  Returns:
    `(tree, step)`, or `(None, None)` when the folder has no step.

  Raises:
    CheckpointMismatchError: the checkpoint holds arrays of other shapes (another config).
    CorruptCheckpointError: every kept step is corrupt.
  """
  steps = sorted((s for s in manager.all_steps() if at_most is None or s <= at_most),
                 reverse=True)
  if not steps:
    return None, None
  wanted = digest(template)
  problems = []
  for step in steps:
    recorded = _read_digest(manager, step)
    if recorded:
      mismatch = _structure_mismatch(recorded, wanted)
      if mismatch:
        raise CheckpointMismatchError(
            f'{step_dir(manager, step)}: the checkpoint does not match the training state of '
            f'this config ({mismatch}). Use the config it was written with, or a new workdir.')
    try:
      if partial:
        args = ocp.args.PyTreeRestore(
            item=template, restore_args=ocp.checkpoint_utils.construct_restore_args(template),
            partial_restore=True)
      else:
        args = ocp.args.StandardRestore(template)
      restored = manager.restore(step, args=args)
      problem = (f'{DIGEST_FILE} is unreadable' if recorded == {}
                 else _verify(restored, recorded))
    except Exception as err:  # Orbax/TensorStore raise many types for damaged files
      if recorded is None and isinstance(err, ValueError) and 'strict' in str(err):
        raise CheckpointMismatchError(
            f'{step_dir(manager, step)}: the checkpoint does not match the training state of this '
            'config (a changed model, optimizer or learning-rate schedule?). Use the config it '
            'was written with, or a new workdir.') from err
      problem = f'cannot be read ({type(err).__name__}: {str(err).splitlines()[0][:200]})'
    if problem is None:
      if recorded is None:
        print(f'[checkpoint] {step_dir(manager, step)}: no digest (an older mdx, or killed right '
              'after saving); checked for finite values only', flush=True)
      if problems:
        print(f'[checkpoint] {manager.directory}: using step {step} instead', flush=True)
      return restored, step
    print(f'[checkpoint] {step_dir(manager, step)} (step {step}) is CORRUPT: {problem}',
          flush=True)
    problems.append(f'step {step}: {problem}')
    if quarantine:
      print(f'[checkpoint] moved it to {_move_step(manager, step, "corrupt_checkpoints")}',
            flush=True)
  raise CorruptCheckpointError(
      f'{manager.directory}: every kept checkpoint is corrupt ({"; ".join(problems)}). Delete the '
      'folder to train this stage again.')


def latest_step(ckpt_dir: str) -> int | None:
  """The newest complete checkpoint step in `ckpt_dir` (unverified), or None."""
  if not os.path.isdir(ckpt_dir):
    return None
  with checkpoint_manager(ckpt_dir) as m:
    return m.latest_step()


def load_params(ckpt_dir: str, state: Any, *, ema: bool = True) -> Any:
  """The (EMA) parameters of the newest intact checkpoint in `ckpt_dir`, given a template state.

  Only the parameters are read (an Orbax partial restore), so a trained stage loads whatever
  optimizer or learning-rate schedule trained it; they are verified against the digest."""
  item = {'params': state.params, 'ema_params': state.ema_params}
  with checkpoint_manager(ckpt_dir) as m:
    restored, step = restore(m, item, partial=True)
  if restored is None:
    raise FileNotFoundError(f'{ckpt_dir}: no checkpoint found (train this stage first)')
  return restored['ema_params' if ema else 'params']
