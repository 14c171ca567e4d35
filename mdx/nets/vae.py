"""A conditional VAE over flat vectors (CVAE-Planner's plan generator; Sohn et al. 2015).

`encode(x, cond) -> (mean, log_var)` of q(u | x, cond); `decode(u, cond) -> x_hat`; and
`elbo_terms(x, cond, rng)` gives the reconstruction and the KL(q || N(0, I)) of one sample
u = mean + std * eps, whose weighted sum is the negative ELBO (up to constants and the
reconstruction's fixed unit variance).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mdx.nets.context import MLP


def gaussian_kl(mean: jax.Array, log_var: jax.Array) -> jax.Array:
  """KL(N(mean, exp(log_var)) || N(0, I)) summed over the last axis."""
  return 0.5 * jnp.sum(jnp.square(mean) + jnp.exp(log_var) - 1.0 - log_var, axis=-1)


class CVAE(nn.Module):
  data_dim: int
  latent_dim: int = 32
  hidden: Sequence[int] = (512, 512)

  def setup(self):
    self.encoder = MLP(tuple(self.hidden), 2 * self.latent_dim)
    self.decoder = MLP(tuple(self.hidden), self.data_dim)

  def encode(self, x: jax.Array, cond: jax.Array) -> tuple[jax.Array, jax.Array]:
    out = self.encoder(jnp.concatenate([x, cond], -1))
    mean, log_var = jnp.split(out, 2, axis=-1)
    return mean, jnp.clip(log_var, -10.0, 10.0)

  def decode(self, u: jax.Array, cond: jax.Array) -> jax.Array:
    return self.decoder(jnp.concatenate([u, cond], -1))

  def elbo_terms(self, x: jax.Array, cond: jax.Array, rng: jax.Array):
    """`(x_hat, kl [B])` for data `x [B, data_dim]` and conditions `cond [B, C]`."""
    mean, log_var = self.encode(x, cond)
    u = mean + jnp.exp(0.5 * log_var) * jax.random.normal(rng, mean.shape)
    return self.decode(u, cond), gaussian_kl(mean, log_var)

  def __call__(self, x, cond, rng):
    return self.elbo_terms(x, cond, rng)
