"""The temporal U-Net and the context model: shapes, the null-context mask, errors."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mdx.data import Normalizer
from mdx.nets import ContextModel, TemporalUNet

NET = TemporalUNet(transition_dim=5, dim=8, dim_mults=(1, 2, 4), embed_dim=8, embed_hidden=16)


@pytest.fixture(scope='module')
def unet():
  x = jnp.zeros((2, 8, 5))
  params = NET.init(jax.random.PRNGKey(0), x, jnp.zeros(2, jnp.int32), jnp.zeros((2, 3)),
                    jnp.ones(2, bool))
  return params, jax.jit(NET.apply)


def test_unet_shapes_and_null_context(unet):
  params, apply = unet
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 5))
  k = jnp.array([3, 7])
  c1, c2 = jnp.ones((2, 3)), -jnp.ones((2, 3))
  on, off = jnp.ones(2, bool), jnp.zeros(2, bool)
  assert apply(params, x, k, c1, on).shape == (2, 8, 5)
  # With the mask off the context cannot matter; with it on it must.
  np.testing.assert_array_equal(apply(params, x, k, c1, off), apply(params, x, k, c2, off))
  assert not np.allclose(apply(params, x, k, c1, on), apply(params, x, k, c2, on))
  # The time embedding matters.
  assert not np.allclose(apply(params, x, k, c1, on), apply(params, x, k + 1, c1, on))


def test_unet_bfloat16_computes_in_bf16_from_the_same_float32_parameters(unet):
  """`dtype=bfloat16` (the planner's `compute_dtype` option): the same parameter tree (float32,
  one checkpoint for both), a float32 output, bf16 matrix products inside, and outputs within
  bf16's rounding of the float32 network's (8 mantissa bits: ~0.4% per operation)."""
  params, apply = unet
  bf16 = TemporalUNet(transition_dim=5, dim=8, dim_mults=(1, 2, 4), embed_dim=8, embed_hidden=16,
                      dtype=jnp.bfloat16)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 5))
  init16 = bf16.init(jax.random.PRNGKey(0), x, jnp.zeros(2, jnp.int32), jnp.zeros((2, 3)),
                     jnp.ones(2, bool))
  assert jax.tree.map(lambda a: (a.shape, a.dtype), init16) == jax.tree.map(
      lambda a: (a.shape, a.dtype), params)
  args = (x, jnp.array([3, 7]), jnp.ones((2, 3)), jnp.ones(2, bool))
  ref, low = apply(params, *args), jax.jit(bf16.apply)(params, *args)
  assert low.dtype == jnp.float32 and not np.array_equal(ref, low)
  scale = float(jnp.abs(ref).max())
  assert float(jnp.abs(low - ref).max()) < 0.05 * scale
  hlo = jax.jit(bf16.apply).lower(params, *args).as_text()
  operands = re.findall(r'(?:dot_general|convolution)[^\n]*: \((tensor<[^>]*>), (tensor<[^>]*>)\)',
                        hlo)  # every matrix product's and convolution's two operand types
  assert len(operands) > 10 and all(t.endswith('xbf16>') for pair in operands for t in pair)


def test_unet_horizon_must_divide():
  with pytest.raises(ValueError, match='horizon 6 must be divisible by'):
    NET.init(jax.random.PRNGKey(0), jnp.zeros((1, 6, 5)), jnp.zeros(1, jnp.int32),
             jnp.zeros((1, 3)), jnp.ones(1, bool))


def test_context_model_units():
  norm = Normalizer(obs_lo=-2 * jnp.ones(2), obs_hi=2 * jnp.ones(2), act_lo=-jnp.ones(1),
                    act_hi=jnp.ones(1), rew_lo=jnp.array(-5.0), rew_hi=jnp.array(0.0))
  model = ContextModel(obs_dim=2, act_dim=1, context_dim=4, encoder_hidden=(8,), model_hidden=(8,))
  hist = jnp.zeros((3, 2, 4, 6))
  params = model.init(jax.random.PRNGKey(0), norm, hist, jnp.zeros((3, 1, 2)), jnp.zeros((3, 1, 1)))
  z = model.apply(params, norm, hist, method=ContextModel.encode)
  assert z.shape == (3, 4)
  s, a = jnp.ones((3, 2)), jnp.zeros((3, 1))
  # next_state = unnormalize(normalize(s) + delta): consistent with delta_normalized.
  delta = model.apply(params, norm, s, a, z, method=ContextModel.delta_normalized)
  s2 = model.apply(params, norm, s, a, z, method=ContextModel.next_state)
  np.testing.assert_allclose(s2, s + delta * 2.0, rtol=1e-5)
  r = model.apply(params, norm, s, a, z, method=ContextModel.reward)
  rn = model.apply(params, norm, s, a, z, method=ContextModel.reward_normalized)
  np.testing.assert_allclose(r, (rn + 1) * 2.5 - 5.0, rtol=1e-5)


@pytest.mark.parametrize('kernel, stride, padding, length', [
    (5, 1, None, 4), (5, 1, None, 16), (3, 2, (1, 1), 16), (1, 1, None, 8)])
def test_conv_matches_flax_conv(kernel, stride, padding, length):
  """The im2col convolution has nn.Conv's parameters, initialization and outputs."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  from mdx.nets.unet import Conv  # pylint: disable=g-import-not-at-top
  x = jax.random.normal(jax.random.PRNGKey(0), (3, length, 16))
  ours = Conv(8, kernel, stride=stride, padding=padding)
  ref = nn.Conv(8, (kernel,), strides=(stride,), padding='SAME' if padding is None else (padding,))
  params = ours.init(jax.random.PRNGKey(1), x)
  jax.tree.map(np.testing.assert_array_equal, params, ref.init(jax.random.PRNGKey(1), x))
  np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('length, cin, cout', [(1, 16, 8), (4, 16, 8), (8, 6, 5)])
def test_conv_transpose_matches_flax_conv_transpose(length, cin, cout):
  """The upsample as two phase products has nn.ConvTranspose's parameters, initialization,
  outputs and gradients (Diffuser's kernel 4, stride 2, padding 1: length doubles)."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  from mdx.nets.unet import ConvTranspose  # pylint: disable=g-import-not-at-top
  x = jax.random.normal(jax.random.PRNGKey(0), (3, length, cin))
  ours = ConvTranspose(cout)
  ref = nn.ConvTranspose(cout, (4,), strides=(2,), padding=((2, 2),))
  params = ours.init(jax.random.PRNGKey(1), x)
  jax.tree.map(np.testing.assert_array_equal, params, ref.init(jax.random.PRNGKey(1), x))
  params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias too
  assert ours.apply(params, x).shape == (3, 2 * length, cout)
  np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), rtol=1e-5, atol=1e-5)
  loss = lambda m: lambda p, x: jnp.sum(jnp.sin(m.apply(p, x)))  # noqa: E731
  for g, h in zip(jax.tree.leaves(jax.grad(loss(ours), (0, 1))(params, x)),
                  jax.tree.leaves(jax.grad(loss(ref), (0, 1))(params, x))):
    np.testing.assert_allclose(g, h, rtol=1e-4, atol=1e-4)


def test_group_norm_epsilon_is_torchs():
  """Diffuser's Conv1dBlock uses torch's GroupNorm (eps 1e-5). On features whose group variance
  is ~1e-5 the normalization differs by ~5% between eps 1e-5 and flax's default 1e-6."""
  from mdx.nets.unet import Conv1dBlock  # pylint: disable=g-import-not-at-top
  block = Conv1dBlock(features=8, groups=2)
  x = 3e-3 * jax.random.normal(jax.random.PRNGKey(0), (2, 6, 4))
  params = block.init(jax.random.PRNGKey(1), x)
  _, state = block.apply(params, x, capture_intermediates=True)
  inter = state['intermediates']
  conv = np.asarray(inter['Conv_0']['__call__'][0], np.float64)
  normed = np.asarray(inter['GroupNorm_0']['__call__'][0], np.float64)
  g = conv.reshape(2, 6, 2, 4)  # [B, L, groups, channels per group]
  mean, var = g.mean(axis=(1, 3), keepdims=True), g.var(axis=(1, 3), keepdims=True)
  assert 1e-6 < var.mean() < 1e-4  # where the epsilon matters
  gn = params['params']['GroupNorm_0']
  expected = ((g - mean) / np.sqrt(var + 1e-5)).reshape(2, 6, 8) * np.asarray(gn['scale']) + \
      np.asarray(gn['bias'])
  np.testing.assert_allclose(normed, expected, rtol=1e-4, atol=1e-5)


def test_mish_matches_its_definition():
  """The one-exponential Mish equals `x tanh(softplus(x))` (float64 reference) in value and
  gradient, and stays finite where e^x overflows."""
  from mdx.nets import mish  # pylint: disable=g-import-not-at-top
  x = np.concatenate([np.linspace(-60.0, 60.0, 240001), [-1e4, -88.0, 88.0, 1e4]])
  x32 = jnp.asarray(x, jnp.float32)
  x64 = np.asarray(x32, np.float64)
  sp = np.logaddexp(0.0, x64)
  expected = x64 * np.tanh(sp)
  np.testing.assert_allclose(np.asarray(mish(x32), np.float64), expected, rtol=1e-6, atol=3e-6)
  sig = 1.0 / (1.0 + np.exp(-np.clip(x64, -700, 700)))
  grad_expected = np.tanh(sp) + x64 * (1.0 - np.tanh(sp) ** 2) * sig
  grad = np.asarray(jax.vmap(jax.grad(mish))(x32), np.float64)
  np.testing.assert_allclose(grad, grad_expected, rtol=1e-5, atol=1e-5)
  assert mish(jnp.float32(1e4)) == 1e4 and mish(jnp.float32(-1e4)) == 0.0
