"""A transformer noise model conditioned on a task prompt, a state history and a return: MTDiff's
(He et al., NeurIPS 2023; code `tinnerhrhe/MTDiff`, `diffuser/models/temporal.py:Tasksmeta`).

Tokens, in the code's order (the paper's formula lists h_P before h_Ti):

  [ t, R, P_1 .. P_J, S_1 .. S_L, x_1 .. x_H ]

- `t`: the denoising step, sinusoidal -> Dense(2d) -> Mish -> Dense(d) (the paper's f_Ti);
- `R`: the return, Dense(d) -> Mish -> Dense(2d) -> Mish -> Dense(d) (f_R), times the CFG mask
  (a dropped return is the zero embedding, plus the code's 1e-8);
- `P_j`: the J demonstration steps (s*, a*) of the task, LayerNorm -> 3-layer Mish MLP (f_P; the
  LayerNorm over a step's features makes it blind to their common offset and scale, which for a
  2-D state leaves only the sign of x - y: `input_layernorm=False` drops it and f_H's);
- `S_l`: the last L states, the current one last, LayerNorm -> 3-layer Mish MLP (f_H);
- `x_h`: the H noisy rows being denoised (actions for MTDiff-P), `mlp_layers` Dense layers (f_A:
  the paper's 2-layer MLP; the code's one Linear).

The sequence is `t * tokens + R + E_pos` (the step's embedding multiplies every token, the return's
is added to every token, E_pos is learned and starts at zero), LayerNorm, then a causal GPT-2
(`mdx.nets.GPT`, Mish MLPs, no position embedding of its own). The output rows are read at the
last H tokens through the head (`mlp_layers` Dense layers: the paper's 2, the code's 1).

With `use_return=False` (MTDiff-S, the code's `TasksAug`) there is no R token and no R term:
`[t, P_1 .. P_J, S_1 .. S_L, x_1 .. x_H]`, `t * tokens + E_pos`, and the mask is ignored; with
`history_len=0` there are no state tokens.

Causality: row h is denoised from t, R, the prompt, the history and rows <= h only, so the first
row (the executed action) does not depend on the plan's horizon: planning H' < H steps at test (the
code's 14 of 32) leaves the first row's chain unchanged given its noise.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from mdx.nets.transformer import GPT
from mdx.nets.unet import mish, sinusoidal_embedding


@struct.dataclass
class PromptCondition:
  """What the noise model is conditioned on (every field with leading `[B]`)."""
  prompt: jax.Array  # [B, J, P]: J demonstration steps of the task (MTDiff: normalized (s, a))
  history: jax.Array  # [B, L, S]: the last L states, the current one last (zeros before step 0)
  returns: jax.Array  # [B]: the normalized return R


class _MLP(nn.Module):
  """Dense layers of the given widths with Mish between them (none after the last)."""
  widths: tuple[int, ...]

  @nn.compact
  def __call__(self, x):
    for i, w in enumerate(self.widths):
      x = nn.Dense(w)(x)
      if i < len(self.widths) - 1:
        x = mish(x)
    return x


class PromptTransformerDenoiser(nn.Module):
  """`eps_theta(x_k [B, H, D], k [B], cond, mask [B]) -> [B, H, D]` (or x0, per training)."""
  out_dim: int  # D, the width of a denoised row (act_dim for MTDiff-P)
  max_horizon: int  # the longest H (the size of the position table)
  prompt_len: int  # J
  history_len: int  # L
  width: int = 256  # d (MTDiff: 256)
  num_layers: int = 6  # the paper: 6 (the code: 4)
  num_heads: int = 4  # the paper: 4 (the code: 2)
  hidden: int = 1024  # the blocks' MLP width (the code: 1024)
  dropout: float = 0.1
  mlp_layers: int = 2  # of f_A and of the head (the paper: 2; the code: 1)
  use_return: bool = True  # condition on R (MTDiff-P, with CFG); False: no R token (MTDiff-S)
  input_layernorm: bool = True  # LayerNorm the prompt's and the history's rows (paper, code)

  @nn.compact
  def __call__(self, x: jax.Array, k: jax.Array, cond: PromptCondition, mask: jax.Array, *,
               train: bool = False) -> jax.Array:
    b, horizon, _ = x.shape
    d = self.width
    if horizon > self.max_horizon:
      raise ValueError(f'the plan has {horizon} rows; the position table holds max_horizon='
                       f'{self.max_horizon}')
    if cond.prompt.shape[1] != self.prompt_len or cond.history.shape[1] != self.history_len:
      raise ValueError(f'prompt [B, {cond.prompt.shape[1]}, .] and history '
                       f'[B, {cond.history.shape[1]}, .] must have prompt_len={self.prompt_len} '
                       f'and history_len={self.history_len} steps')
    t = _MLP((2 * d, d), name='time_mlp')(sinusoidal_embedding(k, d))[:, None]  # [B, 1, d]
    if self.use_return:
      r = _MLP((d, 2 * d, d), name='return_mlp')(cond.returns[:, None].astype(x.dtype))
      r = (r * mask[:, None].astype(x.dtype))[:, None] + 1e-8  # [B, 1, d]
      extra = [r]
    else:
      r, extra = 0.0, []
    norm = ((lambda v, name: nn.LayerNorm(epsilon=1e-5, name=name)(v)) if self.input_layernorm
            else (lambda v, name: v))
    prompt = _MLP((2 * d, 4 * d, d), name='prompt_mlp')(norm(cond.prompt, 'prompt_ln'))
    history = _MLP((2 * d, 4 * d, d), name='history_mlp')(norm(cond.history, 'history_ln'))
    rows = _MLP((d,) * self.mlp_layers, name='row_mlp')(x)
    tokens = jnp.concatenate([t, *extra, prompt, history, rows], axis=1)
    n = tokens.shape[1]
    pos = self.param('position_emb', nn.initializers.zeros,
                     (1 + len(extra) + self.prompt_len + self.history_len + self.max_horizon, d))
    h = nn.LayerNorm(epsilon=1e-5, name='embed_ln')(t * tokens + r + pos[None, :n])
    h = GPT(self.num_layers, self.num_heads, self.hidden, self.dropout, activation='mish',
            name='transformer')(h, train=train)
    return _MLP((d,) * (self.mlp_layers - 1) + (self.out_dim,), name='head')(h[:, -horizon:])
