"""Prompt Diffuser's pieces: the gradient projection on hand-made conflicting gradients, and the
gradient of a downstream loss through the sampling chain against finite differences (with and
without rematerialized steps)."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from mdx.methods.prompt_diffuser import model as pd


def test_conflicting_gradients_are_projected():
  g_dm = {'a': jnp.asarray([1.0, 0.0]), 'b': jnp.asarray(0.0)}
  conflict = {'a': jnp.asarray([-1.0, 1.0]), 'b': jnp.asarray(2.0)}
  update, conflicted = pd.project_conflicting(g_dm, conflict)
  assert bool(conflicted)
  # g_dt' = g_dt - (g_dt . g_dm / |g_dm|^2) g_dm = (0, 1, 2): orthogonal to g_dm.
  np.testing.assert_allclose(update['a'], [1.0, 1.0])
  np.testing.assert_allclose(update['b'], 2.0)
  agree = {'a': jnp.asarray([1.0, 1.0]), 'b': jnp.asarray(-3.0)}
  update, conflicted = pd.project_conflicting(g_dm, agree)
  assert not bool(conflicted)
  np.testing.assert_allclose(update['a'], [2.0, 1.0])
  np.testing.assert_allclose(update['b'], -3.0)


def test_gradient_through_the_chain_matches_finite_differences():
  h, d = 3, 4
  gen = pd.PromptGenerator(hidden=8, step_dim=8)
  rng = jax.random.PRNGKey(0)
  y = jax.random.normal(rng, (5, h, 2))
  keys = jax.random.split(jax.random.PRNGKey(1), 5)
  params = gen.init(rng, jnp.zeros((1, h, d)), jnp.zeros((1,), jnp.int32), y[:1])
  target = jax.random.uniform(jax.random.PRNGKey(2), (5, h, d), minval=-0.5, maxval=0.5)
  downstream = lambda x0: jnp.mean(jnp.square(x0 - target))
  config = pd.chain_config(10, 5)
  config = dataclasses.replace(config, clip_denoised=None)  # smooth everywhere

  def loss(p, remat=True):
    x0 = pd.sample_prompts(gen, p, keys, y, shape=(h, d), config=config, remat=remat)
    return downstream(x0)

  grad = jax.grad(loss)(params)
  np.testing.assert_allclose(ravel_pytree(jax.grad(lambda p: loss(p, False))(params))[0],
                             ravel_pytree(grad)[0], rtol=1e-5, atol=1e-7)
  flat, unravel = ravel_pytree(params)
  direction = jax.random.normal(jax.random.PRNGKey(3), flat.shape)
  direction = direction / jnp.linalg.norm(direction)
  eps = 1e-2
  numeric = (loss(unravel(flat + eps * direction)) - loss(unravel(flat - eps * direction))) / (
      2 * eps)
  analytic = jnp.vdot(ravel_pytree(grad)[0], direction)
  assert abs(float(analytic)) > 1e-4  # the test is not vacuous
  np.testing.assert_allclose(float(numeric), float(analytic), rtol=2e-2)
