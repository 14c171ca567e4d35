"""Multi-host runs: `jax.distributed.initialize`, one writer, and host copies of global arrays.

The same command runs on every process of a slice (`--coordinator_address`, `--num_processes`,
`--process_id`, the flags of `jax.distributed.initialize`, taken by every binary through
`experiments/_common.py`). With more than one process:

- the device mesh (`mdx.mesh`, `config.mesh_devices = 0`) spans every process's devices: training
  is data-parallel over all of them, evaluation shards its environment batch over all of them;
- every process computes, and process 0 alone writes: `mdx.io`'s atomic writers, the metric
  writers, dataset folders, plots and the workdir lock are process 0's; Orbax checkpoints are
  written by all processes together (Orbax's multi-process protocol), their digest by process 0;
- `barrier` separates a write by process 0 from a later read by the others (a stage's record,
  a checkpoint's digest), and `to_host` brings a sharded result to every process (an allgather:
  the evaluation's returns are then the same numpy arrays everywhere).

On CPU the processes talk through Gloo (`jax_cpu_collectives_implementation`), so two processes on
localhost with forced host devices run the same programs as a multi-host GPU or TPU slice
(tests/test_multihost.py). One process (the default) changes nothing.
"""
from __future__ import annotations

from typing import Any, Optional

_STATE = {'initialized': False, 'process_id': 0, 'num_processes': 1}


def initialize(coordinator_address: Optional[str], num_processes: Optional[int],
               process_id: Optional[int]) -> None:
  """Joins the slice when `num_processes > 1` (call before any JAX computation); a no-op for one
  process. Raises `ValueError` naming the flag when the three do not fit together."""
  if num_processes in (None, 1) and not coordinator_address:
    return
  if not coordinator_address or num_processes is None or process_id is None:
    raise ValueError('multi-process runs need all of --coordinator_address (host:port), '
                     f'--num_processes and --process_id; got {coordinator_address!r}, '
                     f'{num_processes!r}, {process_id!r}')
  if num_processes < 1 or not 0 <= process_id < num_processes:
    raise ValueError(f'--process_id must be in [0, --num_processes) and --num_processes >= 1; '
                     f'got {process_id} of {num_processes}')
  if _STATE['initialized']:
    return
  import jax  # pylint: disable=g-import-not-at-top
  if jax.config.jax_platforms in (None, '', 'cpu') or 'cpu' in str(jax.config.jax_platforms):
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(coordinator_address, num_processes=num_processes,
                             process_id=process_id)
  _STATE.update(initialized=True, process_id=process_id, num_processes=num_processes)


def process_count() -> int:
  """Processes of this run (1 unless `initialize` joined a slice)."""
  return _STATE['num_processes']


def is_writer() -> bool:
  """Whether this process writes files (process 0, or the only process)."""
  return _STATE['process_id'] == 0


def barrier(name: str) -> None:
  """Every process waits here for the others (a no-op for one process)."""
  if _STATE['num_processes'] > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(name)


def to_host(tree: Any) -> Any:
  """`jax.device_get(tree)`, also for arrays sharded over other processes' devices (gathered,
  so that every process gets the whole value)."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      if x.is_fully_replicated:
        return np.asarray(x.addressable_data(0))
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return jax.device_get(x)
  return jax.tree.map(one, tree)
