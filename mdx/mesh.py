"""The device mesh (`config.mesh_devices`): evaluation's environment batch and training's sampled
batch sharded over devices.

`config.mesh_devices`: 1 (the default) runs on one device, as before; 0 uses every local device;
n uses the first n. The mesh has one axis, 'batch'. In a multi-process run (`mdx.distributed`)
the mesh spans every process's devices: `mesh_devices` must then be 0 (all of them).

Training is data-parallel: the state is replicated (`replicate`, in `mdx.training.train`), each
step's sampled batch is constrained to be split along the batch axis (`constrain_batch`, in the
stages' updates), and XLA's partitioner computes each device's share of the loss and sums the
gradients across devices. The parameters equal the one-device run's up to the rounding of that
sum (tests/test_mesh.py).

Evaluation: an evaluation's batch (warm-start tiers x
tasks x episodes) is padded at its end to a multiple of the device count with copies of its first
environments, placed with `NamedSharding(mesh, P('batch'))`, and the padding is dropped from the
results. Padding changes no environment's randomness: with JAX's partitionable threefry (the
default), `split(key, n + p)[:n] == split(key, n)` and `normal(key, (n + p, ...))[:n] ==
normal(key, (n, ...))`, so every episode is that of the one-device run, up to float tolerance
(tests/test_mesh.py runs both on four forced host devices).
"""
from __future__ import annotations

from typing import Any, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mdx import distributed

AXIS = 'batch'


def make_mesh(config) -> Optional[Mesh]:
  """The mesh of `config.mesh_devices`, or None for one device."""
  n = config.mesh_devices
  if distributed.process_count() > 1:
    devices = jax.devices()
    if n != 0 and n != len(devices):
      raise ValueError(f'mesh_devices = {n!r}: a run of {distributed.process_count()} processes '
                       f'shards over all {len(devices)} devices of its processes; use 0')
    return Mesh(np.asarray(devices), (AXIS,))
  devices = jax.local_devices()
  if not isinstance(n, int) or isinstance(n, bool) or n < 0 or n > len(devices):
    raise ValueError(f'mesh_devices = {n!r}: must be an integer in [0, {len(devices)}] (0: all '
                     f'{len(devices)} local devices, 1: one device)')
  n = n or len(devices)
  return None if n == 1 else Mesh(np.asarray(devices[:n]), (AXIS,))


def padded_index(batch: int, mesh: Optional[Mesh]) -> np.ndarray:
  """`[batch + pad]` indices into the batch: itself, then its first `pad` entries, so that the
  length is a multiple of the mesh's devices."""
  n = 1 if mesh is None else mesh.devices.size
  pad = (-batch) % n
  return np.concatenate([np.arange(batch), np.arange(pad) % batch]).astype(np.int32)


def _place(x, sharding: NamedSharding):
  """`x` placed with `sharding`. With several processes each builds its devices' shards from
  its own copy of `x` (the same value on every process: loaded or computed alike), as a device
  transfer across hosts is not what is meant."""
  if distributed.process_count() == 1:
    return jax.device_put(x, sharding)
  host = np.asarray(jax.device_get(x))
  return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def replicate(tree: Any, mesh: Optional[Mesh]) -> Any:
  """`tree`'s arrays placed whole on every device of the mesh (a training state)."""
  if mesh is None:
    return tree
  sharding = NamedSharding(mesh, PartitionSpec())
  return jax.tree.map(lambda x: _place(x, sharding), tree)


def constrain_batch(tree: Any, mesh: Optional[Mesh]) -> Any:
  """Inside a jitted step: `tree`'s arrays split along their leading (batch) axis over the mesh;
  arrays whose leading axis the device count does not divide stay whole (replicated)."""
  if mesh is None:
    return tree
  n = mesh.devices.size
  sharding = NamedSharding(mesh, PartitionSpec(AXIS))
  return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, sharding)
                      if x.ndim >= 1 and x.shape[0] % n == 0 else x, tree)


def shard_batch(tree: Any, mesh: Optional[Mesh]) -> Any:
  """`tree`'s arrays (leading axis the batch) placed along the mesh's batch axis."""
  if mesh is None or tree is None:
    return tree
  sharding = NamedSharding(mesh, PartitionSpec(AXIS))
  return jax.tree.map(lambda x: _place(x, sharding), tree)
