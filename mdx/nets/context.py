"""The context model of Eq. 1: encoder E_phi, reward model R_psi and dynamics model P_omega.

- The encoder E_phi: an MLP (3 hidden layers, Mish) -> z in 64 dimensions, in one of two poolings
  (`pooling`): 'segment' (the paper's wording: the MLP reads a flattened history of h transitions
  `(s, a, r, s')`, and the embeddings of several histories are averaged) or 'transition' (the MLP
  reads one transition and the embeddings of all transitions of all histories are averaged, as in
  PEARL and CORRO). Measured on Point-Robot (30 training tasks), the paper's segment encoder
  predicts test-task rewards better (RMSE 0.021 vs 0.024 with expert contexts, 0.049 vs 0.118
  with random-policy contexts), so it is the default.
- `RewardModel` R(s, a, z) -> r and `DynamicsModel` P(s, a, z) -> s' (predicting the state delta),
  MLPs over the concatenation. DESIGN: the paper's Appendix H says they share "the structure of the
  first half of the U-Net"; their inputs are single transitions, for which a temporal convolution
  degenerates to a per-step MLP, so we use MLPs (as does the only public port, DI-engine PR #771).
All three work in normalized units (see `mdx.data.normalizer`); `ContextModel`'s methods take and
return environment units, so the planner's guide sees unnormalized states and actions.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mdx.data import normalizer as nz
from mdx.nets.unet import mish


class MLP(nn.Module):
  hidden: Sequence[int]
  out: int

  @nn.compact
  def __call__(self, x):
    for h in self.hidden:
      x = mish(nn.Dense(h)(x))
    return nn.Dense(self.out)(x)


class ContextModel(nn.Module):
  """E_phi, R_psi and P_omega together, with the data normalizer passed at call time.

  Attributes:
    obs_dim, act_dim: the family's dimensions.
    context_dim: size of z (paper: 64).
    encoder_hidden: hidden layers of E_phi (paper: 3 layers).
    model_hidden: hidden layers of R_psi and P_omega.
  """
  obs_dim: int
  act_dim: int
  context_dim: int = 64
  encoder_hidden: Sequence[int] = (256, 256, 256)
  model_hidden: Sequence[int] = (256, 256, 256)
  pooling: str = 'segment'

  def setup(self):
    if self.pooling not in ('segment', 'transition'):
      raise ValueError(f"ContextModel.pooling must be 'segment' or 'transition', got {self.pooling!r}")
    self.encoder = MLP(self.encoder_hidden, self.context_dim)
    self.reward_net = MLP(self.model_hidden, 1)
    self.dynamics_net = MLP(self.model_hidden, self.obs_dim)

  def encode(self, norm: nz.Normalizer, history: jax.Array) -> jax.Array:
    """`[..., n, h, 2 obs + act + 1]` raw transition rows -> z `[..., context_dim]` (mean over n)."""
    return self.encode_windows(norm, history).mean(axis=-2)

  def encode_windows(self, norm: nz.Normalizer, history: jax.Array) -> jax.Array:
    """The embedding of each of the n history windows, `[..., n, context_dim]`."""
    d, a = self.obs_dim, self.act_dim
    s, act, r, s2 = (history[..., :d], history[..., d:d + a], history[..., d + a],
                     history[..., d + a + 1:])
    rows = jnp.concatenate([nz.normalize_obs(norm, s), nz.normalize_act(norm, act),
                            nz.normalize_rew(norm, r)[..., None], nz.normalize_obs(norm, s2)], -1)
    if self.pooling == 'transition':
      return self.encoder(rows).mean(axis=-2)
    return self.encoder(rows.reshape(rows.shape[:-2] + (-1,)))

  def _inputs(self, norm, s, a, z):
    z = jnp.broadcast_to(z, s.shape[:-1] + z.shape[-1:])
    return jnp.concatenate([nz.normalize_obs(norm, s), nz.normalize_act(norm, a), z], -1)

  def reward_normalized(self, norm, s, a, z):
    """Predicted reward in normalized units, `[...]`."""
    return self.reward_net(self._inputs(norm, s, a, z))[..., 0]

  def delta_normalized(self, norm, s, a, z):
    """Predicted normalized state delta `norm(s') - norm(s)`, `[..., obs_dim]`."""
    return self.dynamics_net(self._inputs(norm, s, a, z))

  def reward(self, norm: nz.Normalizer, s: jax.Array, a: jax.Array, z: jax.Array) -> jax.Array:
    """R_psi(s, a, z) in environment units. `s [..., obs]`, `a [..., act]`, `z [..., C]` -> `[...]`."""
    return nz.unnormalize_rew(norm, self.reward_normalized(norm, s, a, z))

  def next_state(self, norm: nz.Normalizer, s: jax.Array, a: jax.Array, z: jax.Array) -> jax.Array:
    """P_omega(s, a, z): the predicted s' in environment units, `[..., obs_dim]`."""
    return nz.unnormalize_obs(norm, nz.normalize_obs(norm, s) + self.delta_normalized(norm, s, a, z))

  def __call__(self, norm, history, s, a):
    """Used for init: encodes `history` and predicts reward and next state of `(s, a)`."""
    z = self.encode(norm, history)
    return z, self.reward(norm, s, a, z[..., None, :]), self.next_state(norm, s, a, z[..., None, :])
