"""A restore-or-init training loop shared by the context model and the denoiser.

The loop follows `flax/examples/ogbg_molpcba/train.py`: restore the latest checkpoint (or start
from the initial state), then run from `initial_step` to `num_steps`, logging `train/*` metrics,
progress with rate and ETA (`jax_loop_utils.periodic_actions.ReportProgress`), and checkpointing
with Orbax every `checkpoint_every` steps and at the end. The step's randomness is
`fold_in(rng, step)`, so a run killed and restarted resumes to exactly the parameters of an
unbroken run.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax_loop_utils import periodic_actions

from mdx.training.state import TrainState
from mdx.training.writers import create_writer

StepFn = Callable[[TrainState, jax.Array], tuple[TrainState, dict[str, jax.Array]]]


def checkpoint_manager(ckpt_dir: str, max_to_keep: int = 2) -> ocp.CheckpointManager:
  """Orbax manager for `ckpt_dir`; Orbax writes each step to a temporary folder then renames it."""
  return ocp.CheckpointManager(os.path.abspath(ckpt_dir),
                               options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                                                    create=True))


def restore_or_init(manager: ocp.CheckpointManager, state: TrainState) -> TrainState:
  """The latest checkpoint restored into `state`'s structure, or `state` when there is none."""
  step = manager.latest_step()
  if step is None:
    return state
  print(f'Restoring checkpoint step {step} from {manager.directory}', flush=True)
  try:
    return manager.restore(step, args=ocp.args.StandardRestore(state))
  except ValueError as err:
    raise ValueError(
        f'{manager.directory}: the checkpoint of step {step} does not match the training state '
        'of this config (a changed model, optimizer or learning-rate schedule?). Resume with the '
        'config it was written with, or train into a new workdir.') from err


def latest_step(ckpt_dir: str) -> int | None:
  """The newest complete checkpoint step in `ckpt_dir`, or None."""
  if not os.path.isdir(ckpt_dir):
    return None
  with checkpoint_manager(ckpt_dir) as m:
    return m.latest_step()


def load_params(ckpt_dir: str, state: TrainState, *, ema: bool = True) -> Any:
  """The (EMA) parameters of the newest checkpoint in `ckpt_dir`, given a template state.

  Only the parameters are read (an Orbax partial restore), so a trained stage loads whatever
  optimizer or learning-rate schedule trained it."""
  item = {'params': state.params, 'ema_params': state.ema_params}
  with checkpoint_manager(ckpt_dir) as m:
    step = m.latest_step()
    if step is None:
      raise FileNotFoundError(f'{ckpt_dir}: no checkpoint found (train this stage first)')
    restored = m.restore(step, args=ocp.args.PyTreeRestore(
        item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(item),
        partial_restore=True))
  return restored['ema_params' if ema else 'params']


def train(workdir: str, state: TrainState, step_fn: StepFn, rng: jax.Array, *, num_steps: int,
          log_every: int, checkpoint_every: int, name: str, hparams: dict | None = None
          ) -> TrainState:
  """Runs `step_fn` (already jitted) from the restored step to `num_steps`.

  Args:
    workdir: the stage's folder; checkpoints go to `workdir/checkpoints`, metrics to
      `workdir/metrics.jsonl` and TensorBoard files to `workdir`.
    state: the freshly initialized state (the template for restoring).
    step_fn: `(state, rng) -> (state, metrics)`; it should donate `state`.
    rng: the run's base key; step `i` uses `fold_in(rng, i)`.
    num_steps: the total number of steps of the run.
    log_every, checkpoint_every: periods in steps.
    name: shown in the progress lines.
    hparams: written once to the metrics at the start of a fresh run.

  Returns:
    The final state.
  """
  with checkpoint_manager(os.path.join(workdir, 'checkpoints')) as manager:
    state = restore_or_init(manager, state)
    initial_step = int(state.step)
    if initial_step >= num_steps:
      print(f'[{name}] already trained to step {initial_step}', flush=True)
      return state
    writer = create_writer(workdir, to_log=False)
    if initial_step == 0 and hparams:
      writer.write_hparams(hparams)
    report = periodic_actions.ReportProgress(num_train_steps=num_steps, writer=writer,
                                             every_steps=log_every)
    print(f'[{name}] training steps {initial_step} -> {num_steps}', flush=True)
    t0, last = time.time(), initial_step
    metrics = None
    for step in range(initial_step, num_steps):
      state, metrics = step_fn(state, jax.random.fold_in(rng, step))
      done = step + 1
      report(done)
      if done % log_every == 0 or done == num_steps:
        scalars = {f'train/{k}': float(np.asarray(v)) for k, v in metrics.items()}
        writer.write_scalars(done, scalars)
        rate = (done - last) / max(time.time() - t0, 1e-9)
        eta = (num_steps - done) / max(rate, 1e-9)
        shown = ' '.join(f'{k}={v:.4g}' for k, v in scalars.items())
        print(f'[{name}] step {done}/{num_steps} {shown} ({rate:.1f} steps/s, ETA {eta:.0f}s)',
              flush=True)
        t0, last = time.time(), done
      if done % checkpoint_every == 0 or done == num_steps:
        manager.save(done, args=ocp.args.StandardSave(state))
    manager.wait_until_finished()
    writer.flush()
    writer.close()
  return state
