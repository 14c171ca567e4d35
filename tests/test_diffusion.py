"""The schedule, and the denoiser + sampler recovering a known 2-D Gaussian mixture."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mdx.data import Normalizer
from mdx.diffusion import denoising_loss, loss_weights, make_schedule, q_posterior, q_sample
from mdx.nets import sinusoidal_embedding
from mdx.planning import PlanConfig, plan

MODES = np.array([[-0.6, -0.6], [0.6, 0.5]], np.float32)
WEIGHTS = np.array([0.25, 0.75])
STD = 0.08


def test_schedule_constants():
  s = make_schedule(100)
  ac = np.asarray(s.alphas_cumprod)
  assert np.all(np.diff(ac) < 0) and 0.99 < ac[0] < 1 and ac[-1] < 1e-3
  assert np.all(np.asarray(s.betas) <= 0.999)
  # At k = 0 the posterior mean is x0 itself (coef1 = 1, coef2 = 0).
  x0, xk = jnp.ones((1, 2, 3)), 5 * jnp.ones((1, 2, 3))
  mean, _ = q_posterior(s, x0, xk, jnp.array([0]))
  np.testing.assert_allclose(mean, x0, rtol=1e-5)
  # q_sample moments: at k the signal is scaled by sqrt(abar_k).
  x = q_sample(s, jnp.ones((1, 1, 1)), jnp.array([50]), jnp.zeros((1, 1, 1)))
  np.testing.assert_allclose(x, np.sqrt(ac[50]), rtol=1e-5)


class ToyDenoiser(nn.Module):
  """An MLP noise model for `[B, 1, 2]` points (the planner takes any `DenoiseFn`)."""

  @nn.compact
  def __call__(self, x, k, context, mask):
    del context, mask
    h = jnp.concatenate([x[:, 0], sinusoidal_embedding(k, 32)], -1)
    for _ in range(3):
      h = nn.gelu(nn.Dense(128)(h))
    return nn.Dense(2)(h)[:, None]


IDENTITY = Normalizer(obs_lo=jnp.zeros((0,)), obs_hi=jnp.ones((0,)), act_lo=-jnp.ones(2),
                      act_hi=jnp.ones(2), rew_lo=jnp.array(-1.0), rew_hi=jnp.array(1.0))


def _mixture(rng, n):
  mode_rng, noise_rng = jax.random.split(rng)
  idx = jax.random.choice(mode_rng, 2, (n,), p=jnp.asarray(WEIGHTS))
  return (jnp.asarray(MODES)[idx] + STD * jax.random.normal(noise_rng, (n, 2)))[:, None]


@pytest.fixture(scope='module')
def trained():
  net = ToyDenoiser()
  sched = make_schedule(20)
  params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 1, 2)), jnp.zeros(1, jnp.int32),
                    jnp.zeros((1, 1)), jnp.ones(1, bool))
  tx = optax.adam(optax.cosine_decay_schedule(3e-3, 4000))  # decays: a stable fit of the weights
  weights = loss_weights(1, 0, 2, 1.0)

  @jax.jit
  def train(params):
    def step(carry, rng):
      p, opt = carry
      data_rng, loss_rng = jax.random.split(rng)
      x0 = _mixture(data_rng, 512)
      loss_fn = lambda q: denoising_loss(net.apply, q, sched, loss_rng, x0, jnp.zeros((512, 1)),
                                         obs_dim=0, context_dropout=0.0, predict_epsilon=True,
                                         weights=weights)[0]
      loss, g = jax.value_and_grad(loss_fn)(p)
      upd, opt = tx.update(g, opt, p)
      return (optax.apply_updates(p, upd), opt), loss
    (p, _), losses = jax.lax.scan(step, (params, tx.init(params)),
                                  jax.random.split(jax.random.PRNGKey(1), 4000))
    return p, losses
  params, losses = train(params)
  return net, params, np.asarray(losses)


def test_denoiser_recovers_gaussian_mixture(trained):
  net, params, losses = trained
  assert losses[-200:].mean() < 0.5 * losses[:50].mean()
  config = PlanConfig(horizon=1, num_diffusion_steps=20)
  n = 4000
  sample = jax.jit(lambda r: plan(params, r, jnp.zeros((n, 0)), jnp.zeros((n, 1)), net.apply, None,
                                  normalizer=IDENTITY, config=config).actions[:, 0])
  x = np.asarray(sample(jax.random.PRNGKey(2)))
  nearest = np.argmin(np.linalg.norm(x[:, None] - MODES[None], axis=-1), axis=1)
  frac = np.bincount(nearest, minlength=2) / n
  np.testing.assert_allclose(frac, WEIGHTS, atol=0.04)
  for m in range(2):
    pts = x[nearest == m]
    np.testing.assert_allclose(pts.mean(0), MODES[m], atol=0.03)
    assert 0.5 * STD < pts.std(0).mean() < 2.0 * STD
