"""Many learner updates per compiled call: the offline-RL stages' train step.

`make_train_step(update, sample, num_updates)` returns `step(state, rng) -> (state, metrics)`
that draws `num_updates` batches in-graph (`sample(rng) -> batch`) and applies `update(state,
batch, rng)` to each inside one `lax.scan`, then counts one `state.step`: the reference codes'
"iteration" of `num_train_steps_per_itr` / `rl_updates_per_iter` updates. It has the signature
of `mdx.training.train`'s step, so the stages checkpoint, log and resume as every other stage.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp


def make_train_step(update: Callable[[Any, Any, jax.Array], tuple[Any, dict]],
                    sample: Callable[[jax.Array], Any], num_updates: int):
  if num_updates < 1:
    raise ValueError(f'num_updates must be >= 1, got {num_updates}')

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state, rng):
    def body(s, key):
      batch_rng, update_rng = jax.random.split(key)
      return update(s, sample(batch_rng), update_rng)
    state, metrics = jax.lax.scan(body, state, jax.random.split(rng, num_updates))
    return state.replace(step=state.step + 1), jax.tree.map(jnp.mean, metrics)
  return step
