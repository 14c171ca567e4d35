"""A GPT-2 style causal transformer over given token embeddings (no positional embedding).

The decision transformers of mdx (Prompt-DT; later a transformer denoiser or a prompt generator)
embed their own tokens, with timestep embeddings of their own, and call `GPT` on the sequence.
The blocks are GPT-2's (Radford et al. 2019, as in HuggingFace's `GPT2Model`): pre-LayerNorm
residual attention and MLP blocks, a final LayerNorm, dropout on the input, the attention weights
and both residual branches. Prompt-DT's reference removes GPT-2's position embedding (`wpe`) and
so does this module: positions come only from the tokens' own timestep embeddings.

Attention is causal (token i sees tokens j <= i) and a `mask [B, L]` removes padded tokens as
keys; a padded query still attends to itself, so no row of the softmax is empty. Weights are
initialized as GPT-2's (`GPT2PreTrainedModel._init_weights`): N(0, 0.02), the residual output
projections N(0, 0.02 / sqrt(2 num_layers)), zero biases. The MLP's activation is ReLU (Prompt-DT's
`activation_function='relu'`) or Mish (MTDiff's).
"""
from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from mdx.nets.unet import mish

INIT_STD = 0.02
ACTIVATIONS = {'relu': jax.nn.relu, 'gelu': jax.nn.gelu, 'mish': mish}


def _dense(features, name, std=INIT_STD):
  return nn.Dense(features, kernel_init=nn.initializers.normal(std), name=name)


class CausalSelfAttention(nn.Module):
  num_heads: int
  dropout: float = 0.1
  proj_std: float = INIT_STD

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, *, train: bool) -> jax.Array:
    b, length, d = x.shape
    if d % self.num_heads:
      raise ValueError(f'model width {d} is not divisible by num_heads={self.num_heads}')
    hd = d // self.num_heads
    qkv = _dense(3 * d, 'c_attn')(x).reshape(b, length, 3, self.num_heads, hd)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # [B, L, heads, hd]
    logits = jnp.einsum('bqhd,bkhd->bhqk', q, k) / jnp.sqrt(hd).astype(x.dtype)
    allowed = attention_mask(mask)[:, None]  # [B, 1, L, L]
    logits = jnp.where(allowed, logits, jnp.finfo(logits.dtype).min)
    weights = nn.Dropout(self.dropout)(jax.nn.softmax(logits, axis=-1), deterministic=not train)
    out = jnp.einsum('bhqk,bkhd->bqhd', weights, v).reshape(b, length, d)
    out = _dense(d, 'c_proj', self.proj_std)(out)
    return nn.Dropout(self.dropout)(out, deterministic=not train)


def attention_mask(mask: jax.Array) -> jax.Array:
  """`[B, L, L]` bool: query i may attend key j iff j <= i and (key j is a real token or j == i)."""
  length = mask.shape[-1]
  causal = jnp.tril(jnp.ones((length, length), bool))
  return causal[None] & (mask[:, None, :] | jnp.eye(length, dtype=bool)[None])


class Block(nn.Module):
  num_heads: int
  hidden: int  # the MLP's inner width (GPT-2: 4 d)
  dropout: float = 0.1
  proj_std: float = INIT_STD  # of the residual projections
  activation: str = 'relu'  # of the MLP (`ACTIVATIONS`)

  @nn.compact
  def __call__(self, x, mask, *, train: bool):
    d = x.shape[-1]
    x = x + CausalSelfAttention(self.num_heads, self.dropout, self.proj_std, name='attn')(
        nn.LayerNorm(epsilon=1e-5, name='ln_1')(x), mask, train=train)
    h = _dense(self.hidden, 'c_fc')(nn.LayerNorm(epsilon=1e-5, name='ln_2')(x))
    h = _dense(d, 'c_proj', self.proj_std)(ACTIVATIONS[self.activation](h))
    return x + nn.Dropout(self.dropout)(h, deterministic=not train)


class GPT(nn.Module):
  """`num_layers` GPT-2 blocks over embeddings `[B, L, d]` -> hidden states `[B, L, d]`."""
  num_layers: int = 3
  num_heads: int = 1
  hidden: int = 512
  dropout: float = 0.1
  activation: str = 'relu'

  @nn.compact
  def __call__(self, x: jax.Array, mask: Optional[jax.Array] = None, *,
               train: bool = False) -> jax.Array:
    if self.activation not in ACTIVATIONS:
      raise ValueError(f'GPT.activation must be one of {sorted(ACTIVATIONS)}, '
                       f'got {self.activation!r}')
    if mask is None:
      mask = jnp.ones(x.shape[:2], bool)
    x = nn.Dropout(self.dropout)(x, deterministic=not train)
    proj_std = INIT_STD / (2 * self.num_layers) ** 0.5
    for i in range(self.num_layers):
      x = Block(self.num_heads, self.hidden, self.dropout, proj_std, self.activation,
                name=f'h_{i}')(
          x, mask, train=train)
    return nn.LayerNorm(epsilon=1e-5, name='ln_f')(x)
