"""A restore-or-init training loop shared by the context model and the denoiser.

The loop follows `flax/examples/ogbg_molpcba/train.py`: restore the latest checkpoint (or start
from the initial state), then run from `initial_step` to `num_steps`, logging `train/*` metrics,
progress with rate and ETA (`jax_loop_utils.periodic_actions.ReportProgress`), and checkpointing
with Orbax every `checkpoint_every` steps and at the end (verified checkpoints:
`mdx.training.checkpoints`). A metric that turns NaN or inf stops the stage at the next log or
checkpoint step, before anything is saved, naming the step and the metric. The step's randomness is
`fold_in(rng, step)`, so a run killed and restarted resumes to exactly the parameters of an
unbroken run.

`train_stack` runs several members of one stage (training seeds, or settings that change no
shapes) as one vmapped program: each member keeps its own folder, checkpoints, metrics and
optimizer state, written exactly as a single run writes them, so a member loads on its own and a
stack resumes like a single run.
"""
from __future__ import annotations

import contextlib
import functools
import os
import time
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from jax_loop_utils import periodic_actions
from jax_loop_utils.metric_writers.noop_writer import NoOpWriter

from mdx import distributed
from mdx import mesh as mmesh
from mdx.training import checkpoints
from mdx.training.state import TrainState
from mdx.training.writers import create_writer

StepFn = Callable[[TrainState, jax.Array], tuple[TrainState, dict[str, jax.Array]]]


class NonFiniteError(FloatingPointError):
  """A training metric (loss or gradient norm) became NaN or inf."""


def restore_or_init(manager: ocp.CheckpointManager, state: TrainState, *,
                    at_most: int | None = None) -> TrainState:
  """The newest intact checkpoint (at most `at_most`) restored into `state`'s structure, or
  `state` when there is none; corrupt newer steps are reported and moved aside
  (`checkpoints.restore`)."""
  restored, step = checkpoints.restore(manager, state, quarantine=True, at_most=at_most)
  if restored is None:
    return state
  print(f'Restored checkpoint step {step} from {manager.directory}', flush=True)
  return restored


def stack_trees(trees: Sequence[Any]) -> Any:
  """Trees of one structure stacked leaf by leaf along a new leading axis (the first tree's
  static fields, such as `TrainState.tx`, are kept)."""
  flat = [jax.tree.flatten(t) for t in trees]
  return flat[0][1].unflatten([jnp.stack(xs) for xs in zip(*[f[0] for f in flat])])


def member(tree: Any, i: int) -> Any:
  """Entry `i` of every leaf of a stacked tree."""
  leaves, treedef = jax.tree.flatten(tree)
  return treedef.unflatten([x[i] for x in leaves])


@functools.partial(jax.jit, donate_argnums=0)
def _track_non_finite(first_bad: dict, metrics: dict, step: jax.Array) -> dict:
  """Per metric (and per member of a stack: `first_bad[k]` has the members' leading axis), the
  first step at which it was not finite (-1 while all were), kept on the device so that the loop
  syncs with the host only at log and checkpoint steps."""
  def update(fb, v):
    finite = jnp.all(jnp.isfinite(v), axis=tuple(range(fb.ndim, v.ndim)))
    return jnp.where((fb < 0) & ~finite, step, fb)
  return {k: update(first_bad[k], v) for k, v in metrics.items()}


def _check_finite(first_bad: dict, names: Sequence[str], last_saved: int) -> None:
  bad = [(int(s), k, i) for k, v in distributed.to_host(first_bad).items()
         for i, s in enumerate(np.atleast_1d(v)) if int(s) >= 0]
  if bad:
    step, metric, i = min(bad)
    raise NonFiniteError(
        f'[{names[i]}] train/{metric} is not finite (NaN or inf) at step {step + 1}; the stage '
        f'stopped before saving (last checkpoint: step {last_saved}). Check the learning rate, '
        'the data and the loss weights.')


def reporting(config) -> dict:
  """The keyword arguments of `train` / `train_stack` that a config's top-level fields set:
  `log_every`, `checkpoint_every`, the Weights & Biases writer's `wandb` fields and the device
  `mesh` (`config.mesh_devices`; the state is replicated on it)."""
  return dict(log_every=config.log_every, checkpoint_every=config.checkpoint_every,
              wandb=config.wandb, mesh=mmesh.make_mesh(config))


def train(workdir: str, state: TrainState, step_fn: StepFn, rng: jax.Array, *, num_steps: int,
          log_every: int, checkpoint_every: int, name: str, hparams: dict | None = None,
          wandb: Mapping | None = None, mesh=None) -> TrainState:
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
    wandb: a config's `wandb` fields (project, entity, mode): also log to Weights & Biases
      when a project is named (`writers.WandbWriter`).
    mesh: a `jax.sharding.Mesh` to replicate the state on (`mdx.mesh`; data-parallel steps
      constrain their batch to it), or None for one device.

  Returns:
    The final state.
  """
  return _run([workdir], [state], step_fn, [rng], stacked=False, num_steps=num_steps,
              log_every=log_every, checkpoint_every=checkpoint_every, names=[name],
              hparams=[hparams], wandb=wandb, mesh=mesh)


def train_stack(workdirs: Sequence[str], states: Sequence[TrainState], step_fn: StepFn,
                rngs: Sequence[jax.Array], *, num_steps: int, log_every: int,
                checkpoint_every: int, names: Sequence[str],
                hparams: Sequence[dict | None] | None = None,
                wandb: Mapping | None = None, mesh=None) -> TrainState:
  """Runs the members of a stack as one program from their restored step to `num_steps`.

  Member `i` is the single run `train(workdirs[i], states[i], step, rngs[i], ...)`: the same
  folder layout, checkpoint steps, metrics and step keys (`fold_in(rngs[i], step)`), so that it
  equals that run up to the rounding of batched arithmetic and loads on its own.

  Args:
    workdirs, states, rngs, names, hparams: one per member (as `train`'s `workdir`, ...).
    step_fn: `(stacked state, keys [N, 2]) -> (stacked state, metrics [N, ...])`, the single
      step vmapped over members and jitted; it should donate the state.
    num_steps, log_every, checkpoint_every, wandb, mesh: as `train`'s, shared by the members.

  Returns:
    The final stacked state. A stack whose members were saved at different steps (a kill
  between two members' saves) resumes every member from the newest step they all have.
  """
  n = len(workdirs)
  if not (len(states) == len(rngs) == len(names) == n) or (hparams and len(hparams) != n):
    raise ValueError(f'train_stack: {n} workdirs need as many states, rngs, names and hparams; '
                     f'got {len(states)}, {len(rngs)}, {len(names)}, '
                     f'{len(hparams) if hparams else None}')
  return _run(list(workdirs), list(states), step_fn, list(rngs), stacked=True,
              num_steps=num_steps, log_every=log_every, checkpoint_every=checkpoint_every,
              names=list(names), hparams=list(hparams or [None] * n), wandb=wandb, mesh=mesh)


def _run(workdirs, states, step_fn, rngs, *, stacked, num_steps, log_every, checkpoint_every,
         names, hparams, wandb, mesh):
  """`train` (one member, `stacked=False`) and `train_stack`."""
  with contextlib.ExitStack() as stack:
    managers = [stack.enter_context(checkpoints.checkpoint_manager(
        os.path.join(w, 'checkpoints'))) for w in workdirs]
    fresh = states
    states = [restore_or_init(m, s) for m, s in zip(managers, fresh)]
    steps = [int(s.step) for s in states]
    if len(set(steps)) > 1:  # a kill between members' saves: back to a step they all have
      common = min(steps)
      print(f'[{names[0]}...] members at steps {steps}: resuming all from step {common}',
            flush=True)
      states = [s if int(s.step) == common else restore_or_init(m, f, at_most=common)
                for m, s, f in zip(managers, states, fresh)]
      if len({int(s.step) for s in states}) > 1:
        raise checkpoints.CorruptCheckpointError(
            f'{workdirs}: the members have no checkpoint step in common (steps '
            f'{[int(s.step) for s in states]}); move the newer members\' checkpoints aside')
      for m in managers:  # the newer steps are retrained; kept aside, not overwritten
        checkpoints.set_aside_after(m, common)
    initial_step = int(states[0].step)
    label = names[0] if not stacked else f'{names[0]} (+{len(names) - 1} stacked)'
    if initial_step >= num_steps:
      print(f'[{label}] already trained to step {initial_step}', flush=True)
      return stack_trees(states) if stacked else states[0]
    writers = [create_writer(w, to_log=False, wandb=wandb, name=n) if distributed.is_writer()
               else NoOpWriter() for w, n in zip(workdirs, names)]  # process 0 writes metrics
    for writer in writers:  # closed (a wandb run finished) also when training stops on an error
      stack.callback(writer.close)
    for writer, hp in zip(writers, hparams):
      if initial_step == 0 and hp:
        writer.write_hparams(hp)
    state = mmesh.replicate(stack_trees(states) if stacked else states[0], mesh)
    keys = mmesh.replicate(jnp.stack(rngs) if stacked else rngs[0], mesh)
    fold = jax.jit(jax.vmap(jax.random.fold_in, (0, None))) if stacked else jax.random.fold_in
    report = periodic_actions.ReportProgress(num_train_steps=num_steps, writer=writers[0],
                                             every_steps=log_every)
    print(f'[{label}] training steps {initial_step} -> {num_steps}', flush=True)
    t0, last = time.time(), initial_step
    first_bad, last_saved = None, initial_step
    for step in range(initial_step, num_steps):
      state, metrics = step_fn(state, fold(keys, step))
      if first_bad is None:
        first_bad = {k: jnp.full(np.shape(v)[:1] if stacked else (), -1, jnp.int32)
                     for k, v in metrics.items()}
      first_bad = _track_non_finite(first_bad, metrics, jnp.asarray(step, jnp.int32))
      done = step + 1
      report(done)
      if done % log_every == 0 or done == num_steps:
        _check_finite(first_bad, names, last_saved)
        values = {f'train/{k}': np.asarray(v)
                  for k, v in distributed.to_host(metrics).items()}
        for i, writer in enumerate(writers):
          writer.write_scalars(done, {k: float(v[i] if stacked else v)
                                      for k, v in values.items()})
        rate = (done - last) / max(time.time() - t0, 1e-9)
        eta = (num_steps - done) / max(rate, 1e-9)
        shown = ' '.join(f'{k}={np.mean(v):.4g}' for k, v in values.items())
        print(f'[{label}] step {done}/{num_steps} {shown}{" (member mean)" if stacked else ""} '
              f'({rate:.1f} steps/s, ETA {eta:.0f}s)', flush=True)
        t0, last = time.time(), done
      if done % checkpoint_every == 0 or done == num_steps:
        _check_finite(first_bad, names, last_saved)
        for i, manager in enumerate(managers):
          checkpoints.save(manager, done, member(state, i) if stacked else state)
        last_saved = done
    for manager in managers:
      manager.wait_until_finished()
    for writer in writers:
      writer.flush()
  return state
