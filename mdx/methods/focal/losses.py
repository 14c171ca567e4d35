"""FOCAL's distance-metric loss on task embeddings (`LanqingLi1993/FOCAL-ICLR`, `sac.py:z_loss`).

Over the pairs i < j of a meta-batch of tasks (drawn *with* replacement, so that a task can occur
twice and positive pairs exist), with `d_ij = mean_k (z_ik - z_jk)^2` (a mean, not a sum):
  same task:       sqrt(d_ij + 1e-3)          (attraction)
  different tasks: 1 / (d_ij + 0.1)           (repulsion, the negative-power metric)
  L = sum_same / (n_same + 1e-3) + sum_diff / (n_diff + 1e-3)
The method weights it by `z_loss_weight` (10); it is the only loss that trains the encoder.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

EPS = 1e-3


def distance_metric_loss(z: jax.Array, task_ids: jax.Array) -> jax.Array:
  """`z [M, D]` task embeddings of the meta-batch, `task_ids [M]` their tasks -> scalar."""
  m = z.shape[0]
  d = jnp.mean(jnp.square(z[:, None] - z[None]), -1)  # [M, M]
  upper = jnp.triu(jnp.ones((m, m), bool), k=1)
  same = (task_ids[:, None] == task_ids[None]) & upper
  diff = (task_ids[:, None] != task_ids[None]) & upper
  pos = jnp.where(same, jnp.sqrt(d + EPS), 0.0).sum()
  neg = jnp.where(diff, 1.0 / (d + 100 * EPS), 0.0).sum()
  return pos / (same.sum() + EPS) + neg / (diff.sum() + EPS)
