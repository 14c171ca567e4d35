"""A restore-or-init training loop shared by the context model and the denoiser.

The loop follows `flax/examples/ogbg_molpcba/train.py`: restore the latest checkpoint (or start
from the initial state), then run from `initial_step` to `num_steps`, logging `train/*` metrics,
progress with rate and ETA (`jax_loop_utils.periodic_actions.ReportProgress`), and checkpointing
with Orbax every `checkpoint_every` steps and at the end (verified checkpoints:
`mdx.training.checkpoints`). A metric that turns NaN or inf stops the stage at the next log or
checkpoint step, before anything is saved, naming the step and the metric. The step's randomness is
`fold_in(rng, step)`, so a run killed and restarted resumes to exactly the parameters of an
unbroken run.
"""
from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from jax_loop_utils import periodic_actions

from mdx.training import checkpoints
from mdx.training.state import TrainState
from mdx.training.writers import create_writer

StepFn = Callable[[TrainState, jax.Array], tuple[TrainState, dict[str, jax.Array]]]


class NonFiniteError(FloatingPointError):
  """A training metric (loss or gradient norm) became NaN or inf."""


def restore_or_init(manager: ocp.CheckpointManager, state: TrainState) -> TrainState:
  """The newest intact checkpoint restored into `state`'s structure, or `state` when there is
  none; corrupt newer steps are reported and moved aside (`checkpoints.restore`)."""
  restored, step = checkpoints.restore(manager, state, quarantine=True)
  if restored is None:
    return state
  print(f'Restored checkpoint step {step} from {manager.directory}', flush=True)
  return restored


@functools.partial(jax.jit, donate_argnums=0)
def _track_non_finite(first_bad: dict, metrics: dict, step: jax.Array) -> dict:
  """Per metric, the first step at which it was not finite (-1 while all were), kept on the
  device so that the loop syncs with the host only at log and checkpoint steps."""
  return {k: jnp.where((first_bad[k] < 0) & ~jnp.all(jnp.isfinite(v)), step, first_bad[k])
          for k, v in metrics.items()}


def _check_finite(first_bad: dict, name: str, last_saved: int) -> None:
  bad = {k: int(v) for k, v in jax.device_get(first_bad).items() if int(v) >= 0}
  if bad:
    metric, step = min(bad.items(), key=lambda kv: kv[1])
    raise NonFiniteError(
        f'[{name}] train/{metric} is not finite (NaN or inf) at step {step + 1}; the stage '
        f'stopped before saving (last checkpoint: step {last_saved}). Check the learning rate, '
        'the data and the loss weights.')


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
  with checkpoints.checkpoint_manager(os.path.join(workdir, 'checkpoints')) as manager:
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
    first_bad, last_saved = None, initial_step
    for step in range(initial_step, num_steps):
      state, metrics = step_fn(state, jax.random.fold_in(rng, step))
      if first_bad is None:
        first_bad = {k: jnp.full((), -1, jnp.int32) for k in metrics}
      first_bad = _track_non_finite(first_bad, metrics, jnp.asarray(step, jnp.int32))
      done = step + 1
      report(done)
      if done % log_every == 0 or done == num_steps:
        _check_finite(first_bad, name, last_saved)
        scalars = {f'train/{k}': float(np.asarray(v)) for k, v in metrics.items()}
        writer.write_scalars(done, scalars)
        rate = (done - last) / max(time.time() - t0, 1e-9)
        eta = (num_steps - done) / max(rate, 1e-9)
        shown = ' '.join(f'{k}={v:.4g}' for k, v in scalars.items())
        print(f'[{name}] step {done}/{num_steps} {shown} ({rate:.1f} steps/s, ETA {eta:.0f}s)',
              flush=True)
        t0, last = time.time(), done
      if done % checkpoint_every == 0 or done == num_steps:
        _check_finite(first_bad, name, last_saved)
        checkpoints.save(manager, done, state)
        last_saved = done
    manager.wait_until_finished()
    writer.flush()
    writer.close()
  return state
