"""The CVAE of CVAE-Planner: its KL term against the closed form, and its ELBO on a toy
conditional distribution whose answer is known (x = 2 y + noise of std 0.1)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mdx.nets.vae import CVAE, gaussian_kl


def test_gaussian_kl_matches_the_closed_form():
  mean, log_var = jnp.array([[0.5, -1.0]]), jnp.log(jnp.array([[0.25, 4.0]]))
  want = 0.5 * ((0.25 + 0.25 - 1 - np.log(0.25)) + (4.0 + 1.0 - 1 - np.log(4.0)))
  np.testing.assert_allclose(gaussian_kl(mean, log_var), [want], rtol=1e-6)
  np.testing.assert_allclose(gaussian_kl(jnp.zeros((1, 3)), jnp.zeros((1, 3))), [0.0])


def test_cvae_learns_a_conditional_mean():
  model = CVAE(data_dim=1, latent_dim=1, hidden=(32, 32))
  rng = jax.random.PRNGKey(0)
  params = model.init(rng, jnp.zeros((1, 1)), jnp.zeros((1, 1)), rng)
  tx = optax.adam(3e-3)
  opt = tx.init(params)

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(params, opt, rng):
    y_rng, n_rng, z_rng = jax.random.split(rng, 3)
    y = jax.random.uniform(y_rng, (256, 1), minval=-1, maxval=1)
    x = 2 * y + 0.1 * jax.random.normal(n_rng, y.shape)

    def loss(p):
      x_hat, kl = model.apply(p, x, y, z_rng)
      return jnp.mean(jnp.square(x_hat - x)) + 0.01 * kl.mean()
    grads = jax.grad(loss)(params)
    updates, opt = tx.update(grads, opt)
    return optax.apply_updates(params, updates), opt

  for i in range(600):
    params, opt = step(params, opt, jax.random.fold_in(rng, i))
  y = jnp.array([[-0.5], [0.0], [0.75]])
  u = jax.random.normal(jax.random.PRNGKey(1), (1000, 3, 1))
  x = jax.vmap(lambda uu: model.apply(params, uu, y, method=model.decode))(u)
  np.testing.assert_allclose(x.mean(0)[:, 0], [-1.0, 0.0, 1.5], atol=0.1)
