"""`TrainState`: parameters, their exponential moving average, the optimizer state and the step."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct


class TrainState(struct.PyTreeNode):
  """Everything a training run checkpoints. `tx` is static (rebuilt from the config on restore)."""
  step: jax.Array  # [] int32
  params: Any
  ema_params: Any
  opt_state: Any
  tx: optax.GradientTransformation = struct.field(pytree_node=False)

  @classmethod
  def create(cls, params, tx: optax.GradientTransformation) -> 'TrainState':
    return cls(step=jnp.zeros((), jnp.int32), params=params,
               ema_params=jax.tree.map(jnp.copy, params), opt_state=tx.init(params), tx=tx)

  def apply_gradients(self, grads, *, ema_decay: float, ema_start: int = 0) -> 'TrainState':
    """One optimizer step, then `ema <- decay ema + (1 - decay) params` (a copy before `ema_start`,
    as Diffuser's `step_start_ema`)."""
    updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
    params = optax.apply_updates(self.params, updates)
    decay = jnp.where(self.step >= ema_start, ema_decay, 0.0)
    ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, self.ema_params, params)
    return self.replace(step=self.step + 1, params=params, ema_params=ema, opt_state=opt_state)
