"""CORRO's contrastive loss on transition embeddings (`PKU-AI-Edge/CORRO`, `train_contrastive.py`).

The query `q = f(s, a, r, s')` and the key `k = f(another transition of the same task)` are unit
vectors (the encoder L2-normalizes); the `N` negatives share the query's `(s, a)` with `(r, s')`
generated for other tasks. InfoNCE with temperature tau (0.1), a plain dot product:
  logits = [q . k, q . n_1, ..., q . n_N] / tau,   L = mean cross-entropy with label 0.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def info_nce(q: jax.Array, k: jax.Array, negatives: jax.Array, temperature: float = 0.1
             ) -> jax.Array:
  """`q [B, D]`, `k [B, D]`, `negatives [B, N, D]` -> scalar."""
  pos = jnp.sum(q * k, -1, keepdims=True)  # [B, 1]
  neg = jnp.einsum('bd,bnd->bn', q, negatives)
  logits = jnp.concatenate([pos, neg], -1) / temperature
  return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[:, 0])
