"""Prompt-DT's network (Xu et al., ICML 2022; reference `mxu34/prompt-dt`).

Tokens, per step, in the order (return-to-go, state, action): a K*-step prompt of the task, then
the last K steps of the episode,

  [R*_1, s*_1, a*_1, ..., R*_K*, s*_K*, a*_K*,  R_1, s_1, a_1, ..., R_K, s_K, a_K]

Each token is a linear embedding of its value plus a learned embedding of its step's timestep
(shared by the three tokens of a step). The prompt has its own four embedding layers and, as in
the reference, is not layer-normed (the episode's tokens are, `embed_ln`). A causal GPT-2
(`mdx.nets.GPT`, no position embedding) reads the whole sequence; the action a_t is predicted,
through tanh, from the hidden state at the state token s_t, which sees R_t, s_t and everything
before them but neither a_t nor any later token.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from mdx.nets.transformer import GPT


@struct.dataclass
class Steps:
  """K consecutive steps of one or more episodes, left-padded (`mask` False on padding)."""
  states: jax.Array  # [B, K, obs_dim] normalized
  actions: jax.Array  # [B, K, act_dim] in [-1, 1] (the action box scaled to it)
  returns_to_go: jax.Array  # [B, K] divided by the family's return scale
  timesteps: jax.Array  # [B, K] int32, the step's index in its episode
  mask: jax.Array  # [B, K] bool


class PromptDT(nn.Module):
  obs_dim: int
  act_dim: int
  embed_dim: int = 128
  num_layers: int = 3
  num_heads: int = 1
  hidden: int = 512
  dropout: float = 0.1
  max_episode_length: int = 1000

  def _embed(self, steps: Steps, prefix: str) -> jax.Array:
    d = self.embed_dim
    # torch's nn.Embedding default, N(0, 1), as the reference's timestep tables.
    time = nn.Embed(self.max_episode_length, d, embedding_init=nn.initializers.normal(1.0),
                    name=f'{prefix}embed_timestep')(steps.timesteps)
    r = nn.Dense(d, name=f'{prefix}embed_return')(steps.returns_to_go[..., None]) + time
    s = nn.Dense(d, name=f'{prefix}embed_state')(steps.states) + time
    a = nn.Dense(d, name=f'{prefix}embed_action')(steps.actions) + time
    b, k = steps.mask.shape
    return jnp.stack([r, s, a], axis=2).reshape(b, 3 * k, d)  # R_1, s_1, a_1, R_2, ...

  @nn.compact
  def __call__(self, prompt: Steps, steps: Steps, *, train: bool = False) -> jax.Array:
    """Predicted actions `[B, K, act_dim]` in [-1, 1], one per step of `steps`."""
    b, k = steps.mask.shape
    main = nn.LayerNorm(epsilon=1e-5, name='embed_ln')(self._embed(steps, ''))
    tokens = jnp.concatenate([self._embed(prompt, 'prompt_'), main], axis=1)
    mask = jnp.concatenate([jnp.repeat(prompt.mask, 3, axis=1), jnp.repeat(steps.mask, 3, axis=1)],
                           axis=1)
    h = GPT(self.num_layers, self.num_heads, self.hidden, self.dropout, name='transformer')(
        tokens, mask, train=train)
    h = h[:, -3 * k:].reshape(b, k, 3, self.embed_dim)
    return jnp.tanh(nn.Dense(self.act_dim, name='predict_action')(h[:, :, 1]))
