"""DDPM schedules: the cosine one (Nichol & Dhariwal 2021) of Diffuser's `GaussianDiffusion`, and
the discrete VP one (beta_min 0.1, beta_max 10) of Diffusion-QL and MTDiff.

Diffuser's conventions: `betas` from the cosine `alphas_cumprod` with s = 0.008, clipped at 0.999;
steps are indexed `k = 0..K-1` (k = 0 is the last denoising step, which adds no noise);
`posterior_log_variance_clipped` clamps the variance at 1e-20.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class Schedule:
  """All per-step constants, `[K]` each."""
  betas: jax.Array
  alphas_cumprod: jax.Array
  alphas_cumprod_prev: jax.Array
  sqrt_alphas_cumprod: jax.Array
  sqrt_one_minus_alphas_cumprod: jax.Array
  sqrt_recip_alphas_cumprod: jax.Array
  sqrt_recipm1_alphas_cumprod: jax.Array
  posterior_variance: jax.Array
  posterior_log_variance_clipped: jax.Array
  posterior_mean_coef1: jax.Array
  posterior_mean_coef2: jax.Array

  @property
  def num_steps(self) -> int:
    return self.betas.shape[0]


def cosine_betas(num_steps: int, s: float = 0.008) -> np.ndarray:
  """Diffuser's `cosine_beta_schedule`, in float64 then cast."""
  steps = num_steps + 1
  x = np.linspace(0, steps, steps)
  alphas_cumprod = np.cos(((x / steps) + s) / (1 + s) * np.pi * 0.5) ** 2
  alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
  betas = 1 - (alphas_cumprod[1:] / alphas_cumprod[:-1])
  return np.clip(betas, 0, 0.999)


def vp_betas(num_steps: int, beta_min: float = 0.1, beta_max: float = 10.0) -> np.ndarray:
  """The discrete variance-preserving schedule (Diffusion-QL's and MTDiff's `vp_beta_schedule`):
  `beta_k = 1 - exp(-beta_min / K - (beta_max - beta_min) (2k - 1) / (2 K^2))`, k = 1..K."""
  k = np.arange(1, num_steps + 1, dtype=np.float64)
  t = float(num_steps)
  return 1.0 - np.exp(-beta_min / t - 0.5 * (beta_max - beta_min) * (2 * k - 1) / t ** 2)


SCHEDULES = {'cosine': cosine_betas, 'vp': vp_betas}


def make_schedule(num_steps: int, kind: str = 'cosine') -> Schedule:
  """The constants of schedule `kind` (`SCHEDULES`) for K = `num_steps` steps (in float64)."""
  if kind not in SCHEDULES:
    raise ValueError(f'schedule must be one of {sorted(SCHEDULES)}, got {kind!r}')
  betas = SCHEDULES[kind](num_steps)
  alphas = 1.0 - betas
  ac = np.cumprod(alphas)
  ac_prev = np.concatenate([[1.0], ac[:-1]])
  post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
  f = lambda v: jnp.asarray(v, jnp.float32)
  return Schedule(
      betas=f(betas), alphas_cumprod=f(ac), alphas_cumprod_prev=f(ac_prev),
      sqrt_alphas_cumprod=f(np.sqrt(ac)), sqrt_one_minus_alphas_cumprod=f(np.sqrt(1 - ac)),
      sqrt_recip_alphas_cumprod=f(np.sqrt(1 / ac)),
      sqrt_recipm1_alphas_cumprod=f(np.sqrt(1 / ac - 1)),
      posterior_variance=f(post_var),
      posterior_log_variance_clipped=f(np.log(np.maximum(post_var, 1e-20))),
      posterior_mean_coef1=f(betas * np.sqrt(ac_prev) / (1 - ac)),
      posterior_mean_coef2=f((1 - ac_prev) * np.sqrt(alphas) / (1 - ac)))


def _at(v: jax.Array, k: jax.Array, x: jax.Array) -> jax.Array:
  """`v[k]` broadcast against `x` `[B, ...]` for `k` `[B]` (or a scalar)."""
  out = v[k]
  return out.reshape(out.shape + (1,) * (x.ndim - out.ndim))


def q_sample(sched: Schedule, x0: jax.Array, k: jax.Array, noise: jax.Array) -> jax.Array:
  """Forward noising `x_k = sqrt(abar_k) x0 + sqrt(1 - abar_k) eps`."""
  return _at(sched.sqrt_alphas_cumprod, k, x0) * x0 + _at(
      sched.sqrt_one_minus_alphas_cumprod, k, x0) * noise


def predict_x0_from_eps(sched: Schedule, x_k: jax.Array, k: jax.Array, eps: jax.Array) -> jax.Array:
  return _at(sched.sqrt_recip_alphas_cumprod, k, x_k) * x_k - _at(
      sched.sqrt_recipm1_alphas_cumprod, k, x_k) * eps


def predict_eps_from_x0(sched: Schedule, x_k: jax.Array, k: jax.Array, x0: jax.Array) -> jax.Array:
  return (_at(sched.sqrt_recip_alphas_cumprod, k, x_k) * x_k - x0) / _at(
      sched.sqrt_recipm1_alphas_cumprod, k, x_k)


def q_posterior(sched: Schedule, x0: jax.Array, x_k: jax.Array, k: jax.Array):
  """Mean and log-variance of `q(x_{k-1} | x_k, x0)`."""
  mean = _at(sched.posterior_mean_coef1, k, x_k) * x0 + _at(sched.posterior_mean_coef2, k, x_k) * x_k
  return mean, _at(sched.posterior_log_variance_clipped, k, x_k)


def ddpm_step(sched: Schedule, x_k: jax.Array, k: jax.Array, x0: jax.Array, noise: jax.Array,
              noise_scale: float | jax.Array = 1.0) -> jax.Array:
  """One ancestral step `x_{k-1} ~ N(mu, alpha Sigma)` given the predicted `x0`; no noise at k = 0.

  `noise_scale` is the paper's alpha (Algorithm 1): it scales the VARIANCE of the step's noise
  (its standard deviation by `sqrt(alpha)`), as in `mdx.diffusion.sampling`.
  """
  mean, log_var = q_posterior(sched, x0, x_k, k)
  nonzero = _at((jnp.arange(sched.num_steps) > 0).astype(x_k.dtype), k, x_k)
  return mean + nonzero * jnp.sqrt(noise_scale) * jnp.exp(0.5 * log_var) * noise


def ddim_step(sched: Schedule, x_k: jax.Array, k: jax.Array, k_prev: jax.Array, x0: jax.Array,
              eps: jax.Array, *, eta: float | jax.Array = 0.0,
              noise: jax.Array | None = None,
              noise_scale: float | jax.Array = 1.0) -> jax.Array:
  """DDIM (Song et al., 2021, Eq. 12) from step `k` to `k_prev` (`k_prev = -1` lands on x0):
  `x' = sqrt(abar') x0 + sqrt(1 - abar' - sigma^2) eps + sigma z`, with
  `sigma^2 = eta^2 (1 - abar') / (1 - abar) (1 - abar / abar')`. `eta = 0` is deterministic;
  `eta = 1` with `k_prev = k - 1` is DDPM's ancestral step (the same mean and variance).
  `noise_scale` (alpha) multiplies sigma^2 of the added noise, as in `ddpm_step`; `noise` is
  `z` (needed when `eta != 0`)."""
  ac = _at(sched.alphas_cumprod, k, x_k)
  ac_prev = jnp.where(k_prev >= 0, sched.alphas_cumprod[jnp.maximum(k_prev, 0)], 1.0)
  ac_prev = ac_prev.reshape(ac_prev.shape + (1,) * (x_k.ndim - ac_prev.ndim))
  if isinstance(eta, (int, float)) and eta == 0.0:
    return jnp.sqrt(ac_prev) * x0 + jnp.sqrt(1.0 - ac_prev) * eps
  if noise is None:
    raise ValueError('ddim_step: eta != 0 adds noise; pass noise=z (standard normals like x_k)')
  var = eta ** 2 * (1.0 - ac_prev) / (1.0 - ac) * (1.0 - ac / ac_prev)
  return (jnp.sqrt(ac_prev) * x0 + jnp.sqrt(jnp.maximum(1.0 - ac_prev - var, 0.0)) * eps
          + jnp.sqrt(noise_scale * var) * noise)
