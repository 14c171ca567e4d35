"""Diffuser's temporal U-Net (Janner et al. 2022) with MetaDiffuser's time and context embeddings.

Faithful to `jannerm/diffuser` `models/temporal.py::TemporalUnet` (see shared/REFERENCES.md §1),
channels-last (`[B, H, C]`, Flax's convention) instead of PyTorch's channels-first:
- Conv1dBlock: Conv1d(kernel 5, same padding) -> GroupNorm(8, eps 1e-5 as torch) -> Mish.
- ResidualTemporalBlock: block0(x) + Linear(Mish(embedding)), then block1, plus a 1x1 conv residual
  (identity when the channel counts match; zbzhu99's Flax port drops it, we keep it).
- Down path: per level two residual blocks and a stride-2 Conv(3) downsample (none at the last
  level); mid: two residual blocks; up path over `reversed(levels[1:])`: concat skip, two residual
  blocks, ConvTranspose(4, stride 2) upsample at every up level; final Conv1dBlock + 1x1 conv.
  As in Diffuser the first level's skip is never consumed.
MetaDiffuser's changes (paper Appendix H): the timestep embedding (sinusoidal -> Linear(256) -> Mish
-> Linear(64)) and the context embedding (Linear(256) -> Mish -> Linear(64)) are concatenated and
added after the first convolution of every block. The null context of classifier-free guidance is a
boolean mask that zeroes the context embedding, so one network serves both CFG branches.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def mish(x: jax.Array) -> jax.Array:
  """Mish, `x tanh(softplus(x))`, with one exponential instead of exp, log1p and tanh.

  With `n = e^x (e^x + 2)`, `tanh(log(1 + e^x)) = n / (n + 2)` exactly; above x = 20 the factor is
  1 in fp32 (and `e^x` would overflow near 88), so x is returned. Equal to the three-function form
  within 2.4e-6 absolute / 5e-7 relative in fp32 over [-100, 100] (measured); tests/test_nets.py
  checks values and gradients against float64 over [-60, 60] and at +-88 and +-1e4. DESIGN: the transcendental functions were the U-Net's largest cost after its matrix
  products at batch 64 (issue 17's profile, README "Where the U-Net's time goes").
  """
  e = jnp.exp(jnp.minimum(x, 20.0))
  n = e * (e + 2.0)
  return jnp.where(x > 20.0, x, x * n / (n + 2.0))


class Conv(nn.Module):
  """1-D convolution as im2col + one matrix product, channels-last `[B, L, C]`.

  DESIGN: XLA:CPU runs `lax.conv` ~25x below its matmul speed when the kernel is wider than the
  sequence (kernel 5 at the U-Net's deepest level, length 4 for H = 32: 77 ms for 168 MFLOP,
  measured), which made the whole planner slow on CPU. Stacking the K shifted views and doing one
  `[B L, K C_in] x [K C_in, C_out]` product is fast everywhere. Parameters are exactly
  `nn.Conv`'s (`kernel [K, C_in, C_out]`, `bias [C_out]`, LeCun-normal init) and the class is
  named `Conv`, so parameter trees and checkpoints are those of `nn.Conv`.
  """
  features: int
  kernel_size: int = 1
  stride: int = 1
  padding: tuple[int, int] | None = None  # default: SAME for stride 1, ((K - 1) // 2) both sides
  dtype: Any = jnp.float32  # computation dtype (parameters stay float32), as `nn.Conv`'s

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, cin = self.kernel_size, x.shape[-1]
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (k, cin, self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    if self.padding is None:
      lo = (k - 1) // 2
      pad = (lo, k - 1 - lo) if self.stride == 1 else (lo, lo)
    else:
      pad = self.padding
    xp = jnp.pad(x, ((0, 0), pad, (0, 0)))
    out_len = (xp.shape[1] - k) // self.stride + 1
    span = (out_len - 1) * self.stride + 1
    # [B, L', K C] with tap k major: the kernel's [K, C_in, C_out] -> [K C_in, C_out] is then a free
    # reshape. (An einsum over a [B, L', K, C] stack made XLA transpose every kernel on every call,
    # inside the planner's loop too: 36 copies per denoising step, half of its time at batch 1.)
    cols = jnp.concatenate([xp[:, i:i + span:self.stride] for i in range(k)], axis=-1)
    y = cols.astype(self.dtype) @ kernel.reshape(k * cin, self.features).astype(self.dtype)
    return y + bias.reshape(1, 1, -1).astype(self.dtype)


class ConvTranspose(nn.Module):
  """Diffuser's upsample, `ConvTranspose1d(C, C, 4, stride 2, padding 1)`, as two matrix products.

  Exactly `nn.ConvTranspose(features, (4,), strides=(2,), padding=((2, 2),))` (Flax's kernel is
  not flipped): output `2p` is `W0 x[p-1] + W2 x[p]` and output `2p+1` is `W1 x[p] + W3 x[p+1]`
  (zero outside the sequence), so each phase is one `[B L, 2 C_in] x [2 C_in, C_out]` product and
  the two are interleaved. DESIGN: XLA:CPU lowers the transposed convolution to an input-dilated
  `lax.conv` whose forward and backward ran 5-9x slower than these products at the U-Net's
  training shapes (batch 32, lengths 4-16, 64-256 channels), where half of every other product
  would be multiplying the dilation's zeros. Parameters are exactly `nn.ConvTranspose`'s (`kernel
  [4, C_in, C_out]`, `bias [C_out]`, LeCun-normal init) and the class is named `ConvTranspose`,
  so parameter trees and checkpoints are unchanged.
  """
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, length, cin = x.shape
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (4, cin, self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    xp = jnp.pad(x, ((0, 0), (1, 1), (0, 0))).astype(self.dtype)  # xp[i] = x[i - 1]
    k = kernel.astype(self.dtype)
    even = jnp.concatenate([xp[:, :length], xp[:, 1:length + 1]], -1) @ jnp.concatenate(
        [k[0], k[2]], 0)
    odd = jnp.concatenate([xp[:, 1:length + 1], xp[:, 2:]], -1) @ jnp.concatenate([k[1], k[3]], 0)
    y = jnp.stack([even, odd], axis=2).reshape(b, 2 * length, self.features)
    return y + bias.reshape(1, 1, -1).astype(self.dtype)


def sinusoidal_embedding(t: jax.Array, dim: int) -> jax.Array:
  """Diffuser's SinusoidalPosEmb: `[B]` -> `[B, dim]` (frequencies `exp(-log(1e4) i / (half-1))`)."""
  half = dim // 2
  freqs = jnp.exp(-math.log(10000.0) * jnp.arange(half) / (half - 1))
  args = t.astype(jnp.float32)[:, None] * freqs[None, :]
  return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


class Conv1dBlock(nn.Module):
  features: int
  kernel_size: int = 5
  groups: int = 8
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = Conv(self.features, self.kernel_size, dtype=self.dtype)(x)
    # torch's GroupNorm default eps; Flax takes its statistics in float32 whatever the dtype.
    x = nn.GroupNorm(num_groups=self.groups, epsilon=1e-5, dtype=self.dtype)(x)
    return mish(x)


class ResidualTemporalBlock(nn.Module):
  features: int
  kernel_size: int = 5
  groups: int = 8
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, emb):
    block = lambda: Conv1dBlock(self.features, self.kernel_size, self.groups, self.dtype)
    h = block()(x)
    h = h + nn.Dense(self.features, dtype=self.dtype)(mish(emb))[:, None, :]
    h = block()(h)
    residual = (x if x.shape[-1] == self.features
                else Conv(self.features, 1, dtype=self.dtype)(x))
    return h + residual


class EmbeddingMLP(nn.Module):
  """Two layers with Mish: `in -> hidden -> out` (MetaDiffuser: 256 hidden units, 64 out)."""
  hidden: int = 256
  out: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    return nn.Dense(self.out, dtype=self.dtype)(mish(nn.Dense(self.hidden, dtype=self.dtype)(x)))


class TemporalUNet(nn.Module):
  """eps_theta(x_k, z or null, k) (or x0_theta with `predict_epsilon=False` in the diffusion config).

  Attributes:
    transition_dim: obs_dim + act_dim, the channels of the trajectory.
    dim: channels of the first level (Diffuser: 32).
    dim_mults: channel multipliers per level (Diffuser: (1, 2, 4, 8)); the horizon must be divisible
      by 2 ** (len(dim_mults) - 1).
    embed_dim: size of each of the time and context embeddings (paper: 64).
    embed_hidden: hidden units of the embedding MLPs (paper: 256).
    groups: GroupNorm groups (Diffuser: 8).
    use_context: False builds the unconditional network (no context MLP at all).
    dtype: the computation dtype. Parameters are float32 whatever it is (one checkpoint serves
      both), inputs are cast to it and the output back to float32; GroupNorm's statistics are
      float32. `jnp.bfloat16` is an option for hardware with fast bf16 matrix units (GPU, TPU),
      never a default: its effect on the plans is measured in the README.
  """
  transition_dim: int
  dim: int = 32
  dim_mults: Sequence[int] = (1, 2, 4, 8)
  embed_dim: int = 64
  embed_hidden: int = 256
  groups: int = 8
  kernel_size: int = 5
  use_context: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array, context: jax.Array,
               context_mask: jax.Array) -> jax.Array:
    """Args:
      x: `[B, H, transition_dim]` noisy trajectories.
      t: `[B]` int diffusion steps.
      context: `[B, context_dim]` task contexts z.
      context_mask: `[B]` bool; False replaces the context by the null context.

    Returns:
      `[B, H, transition_dim]`: the predicted noise (or x0).
    """
    horizon = x.shape[1]
    levels = len(self.dim_mults)
    if horizon % (2 ** (levels - 1)):
      raise ValueError(f'horizon {horizon} must be divisible by 2**(len(dim_mults)-1) = '
                       f'{2 ** (levels - 1)} (dim_mults={tuple(self.dim_mults)})')
    out_dtype, x = x.dtype, x.astype(self.dtype)
    emb = EmbeddingMLP(self.embed_hidden, self.embed_dim, self.dtype, name='time_mlp')(
        sinusoidal_embedding(t, self.embed_dim))
    if self.use_context:
      c = EmbeddingMLP(self.embed_hidden, self.embed_dim, self.dtype, name='context_mlp')(context)
      c = c * context_mask.astype(c.dtype)[:, None]
      emb = jnp.concatenate([emb, c], axis=-1)
    block = lambda f: ResidualTemporalBlock(f, self.kernel_size, self.groups, self.dtype)
    dims = [self.dim * m for m in self.dim_mults]

    skips = []
    for i, d in enumerate(dims):
      x = block(d)(x, emb)
      x = block(d)(x, emb)
      skips.append(x)
      if i < levels - 1:
        x = Conv(d, 3, stride=2, padding=(1, 1), dtype=self.dtype)(x)
    x = block(dims[-1])(x, emb)
    x = block(dims[-1])(x, emb)
    for d_in, _ in reversed(list(zip(dims[:-1], dims[1:]))):
      x = jnp.concatenate([x, skips.pop()], axis=-1)
      x = block(d_in)(x, emb)
      x = block(d_in)(x, emb)
      x = ConvTranspose(d_in, dtype=self.dtype)(x)
    x = Conv1dBlock(self.dim, self.kernel_size, self.groups, self.dtype)(x)
    return Conv(self.transition_dim, 1, dtype=self.dtype)(x).astype(out_dtype)
