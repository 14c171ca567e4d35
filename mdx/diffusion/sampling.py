"""The reverse diffusion chain as one pure function: `sample(...)`, one `lax.scan` over the steps.

Used by the planner (`mdx.planning.plan`), and by anything else that needs samples of a trained
denoiser (a data synthesizer, a prompt generator). At every step:
1. Classifier-free guidance (Eq. 6): the conditional and the unconditional branch are ONE call of
   `denoise_fn` on a `[2M]` batch whose context mask is `[True]*M + [False]*M`;
   `out = out_u + omega (out_c - out_u)` (linear, so the same in eps or x0 parameterization).
   With `cfg_weight == 1` the unconditional branch is not computed at all.
2. The predicted clean sample `x0_hat`, clipped to `[-clip_denoised, clip_denoised]` when set.
3. The guide hook, `guide(x_k, x0_hat, k) -> (x0_hat', mean_shift)`: it may move the prediction
   (then it is clipped again) and/or add a shift to the posterior mean (never clipped: clipping
   the mean would move samples even where the guide's gradient is zero).
4. The step: DDPM, `x_{k-1} ~ N(mu, alpha Sigma_k)`, or DDIM along a strided subsequence of the
   K steps, deterministic (`eta = 0`) or stochastic (`eta > 0`; `eta = 1` over all K steps is
   DDPM); no noise on the last step.
5. The inpainting hook, `inpaint(x) -> x` (for example the current state of a plan), also applied
   to `x_K`.

`noise_scale` is Algorithm 1's alpha: it multiplies the VARIANCE of `x_K ~ N(0, alpha I)` and of
every step's noise (the standard deviations by `sqrt(alpha)`).

Randomness: one key per sample (`keys [M]`), and all of a sample's Gaussian draws are made before
the scan, so `vmap` over samples equals per-sample calls. DESIGN: drawing inside the scan cost
~0.6 ms of RNG work per step at batch 1 on CPU, a third of the U-Net's time.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from mdx.diffusion import schedule as sch

# denoise_fn(x_k [M, ...], k [M] int32, context [M, C], mask [M] bool) -> [M, ...] (eps or x0)
SampleDenoiseFn = Callable[[jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]
# guide(x_k [M, ...], x0_hat [M, ...], k [] int32) -> (x0_hat [M, ...], mean_shift [M, ...] or 0)
GuideHook = Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
# inpaint(x [M, ...]) -> [M, ...]
InpaintHook = Callable[[jax.Array], jax.Array]

SAMPLERS = ('ddpm', 'ddim')


@dataclasses.dataclass(frozen=True)
class SampleConfig:
  """Static knobs of the reverse chain (hashable: close over it)."""
  num_diffusion_steps: int  # K of the trained schedule
  sampler: str = 'ddpm'  # 'ddpm' (ancestral, all K steps) or 'ddim'
  num_sample_steps: Optional[int] = None  # DDIM only: steps of the strided subsequence (None: K)
  eta: float = 0.0  # DDIM only: 0 deterministic, 1 DDPM's variance (Song et al.'s eta)
  cfg_weight: float = 1.0  # omega of Eq. 6; 1.0 skips the unconditional branch
  noise_scale: float = 1.0  # alpha: variance multiplier of x_K and of every step's noise
  predict_epsilon: bool = True  # the network's parameterization (must match training)
  clip_denoised: Optional[float] = None  # clip the predicted x0 to [-c, c]
  schedule: str = 'cosine'  # the trained noise schedule (`mdx.diffusion.schedule.SCHEDULES`)

  def __post_init__(self):
    k = self.num_diffusion_steps
    checks = [
        ('num_diffusion_steps', k >= 1, '>= 1'),
        ('sampler', self.sampler in SAMPLERS, f'one of {SAMPLERS}'),
        ('num_sample_steps', self.num_sample_steps is None or 1 <= self.num_sample_steps <= k,
         f'None or in [1, num_diffusion_steps={k}]'),
        ('noise_scale', not is_number(self.noise_scale) or (
            np.isfinite(self.noise_scale) and self.noise_scale >= 0), 'finite and >= 0'),
        ('cfg_weight', not is_number(self.cfg_weight) or np.isfinite(self.cfg_weight), 'finite'),
        ('clip_denoised', self.clip_denoised is None or self.clip_denoised > 0, 'None or > 0'),
        ('eta', not is_number(self.eta) or 0.0 <= self.eta <= 1.0, 'in [0, 1]'),
        ('schedule', self.schedule in sch.SCHEDULES, f'one of {sorted(sch.SCHEDULES)}'),
    ]
    for name, ok, want in checks:
      if not ok:
        raise ValueError(f'SampleConfig.{name} must be {want}, got {getattr(self, name)!r}')
    if self.sampler == 'ddpm' and self.num_sample_steps not in (None, k):
      raise ValueError('SampleConfig.num_sample_steps: DDPM runs all num_diffusion_steps steps; '
                       f"use sampler='ddim' for {self.num_sample_steps} steps")
    if self.sampler == 'ddpm' and not (is_number(self.eta) and self.eta == 0.0):
      raise ValueError("SampleConfig.eta is DDIM's: use sampler='ddim' (eta = 1 over all K "
                       'steps is DDPM)')

  @property
  def timesteps(self) -> np.ndarray:
    """The denoising steps visited, noisiest first, `[S]` (DDPM: K-1 ... 0)."""
    k = self.num_diffusion_steps
    s = self.num_sample_steps or k
    return np.round(np.linspace(k - 1, 0, s)).astype(np.int32)


def is_number(v) -> bool:
  """True for a Python or NumPy number; False for a JAX array, e.g. a knob swept under `vmap`
  (then the static shortcuts, such as skipping CFG's second branch at omega = 1, are off)."""
  return isinstance(v, (int, float, np.number))


def draw_noise(keys: jax.Array, shape: tuple[int, ...], num_draws: int) -> jax.Array:
  """`[num_draws, M, *shape]` standard normals, one key per sample (`keys [M]`)."""
  noise = jax.vmap(lambda key: jax.random.normal(key, (num_draws,) + tuple(shape)))(keys)
  return jnp.moveaxis(noise, 1, 0)


def guided_output(denoise_fn: SampleDenoiseFn, x: jax.Array, k: jax.Array, context: jax.Array,
                  cfg_weight: float) -> jax.Array:
  """The network's output at `x [M, ...]`, step `k [M]`, combined by CFG in one batched call.
  `context` is an array or a pytree of arrays with leading `[M]` (a prompt, a history, a return)."""
  on = jnp.ones(k.shape, bool)
  if is_number(cfg_weight) and cfg_weight == 1.0:
    return denoise_fn(x, k, context, on)
  twice = lambda v: jnp.concatenate([v, v])
  both = denoise_fn(twice(x), twice(k), jax.tree.map(twice, context), jnp.concatenate([on, ~on]))
  out_c, out_u = jnp.split(both, 2)
  return out_u + cfg_weight * (out_c - out_u)


def sample(denoise_fn: SampleDenoiseFn, keys: jax.Array, context: jax.Array, *,
           shape: tuple[int, ...], config: SampleConfig, guide: Optional[GuideHook] = None,
           inpaint: Optional[InpaintHook] = None, remat: bool = False) -> jax.Array:
  """Draws M samples with the reverse chain.

  Args:
    denoise_fn: the network, `(x_k, k, context, mask) -> eps or x0` (per `config.predict_epsilon`).
    keys: `[M]` PRNG keys, one per sample.
    context: `[M, C]` conditioning passed to `denoise_fn` (any array or pytree with leading `[M]`).
    shape: the shape of one sample (e.g. `(H, obs_dim + act_dim)`).
    config: the static knobs.
    guide: optional hook on the predicted x0 and the posterior mean (see the module docstring).
    inpaint: optional hook applied to `x_K` and after every step.
    remat: rematerialize each step in the backward pass (`jax.checkpoint`): gradients through the
      chain (Prompt Diffuser's L_DT) then keep one step's activations, not all S steps'.

  Returns:
    `[M, *shape]`, the final samples x_0 (after `inpaint`).
  """
  sched = sch.make_schedule(config.num_diffusion_steps, config.schedule)
  ts = config.timesteps
  prev = np.concatenate([ts[1:], [-1]]).astype(np.int32)  # the step each one lands on
  inpaint = inpaint or (lambda x: x)
  clip = ((lambda v: jnp.clip(v, -config.clip_denoised, config.clip_denoised))
          if config.clip_denoised is not None else (lambda v: v))
  num = keys.shape[0]
  alpha = config.noise_scale
  scale = np.float32(np.sqrt(alpha)) if is_number(alpha) else jnp.sqrt(alpha)
  noise = draw_noise(keys, shape, len(ts) + 1)  # [S + 1, M, *shape]; the first is x_K's
  ddim = config.sampler == 'ddim'

  def step(x, inputs):
    k, k_prev, eps_noise = inputs
    ks = jnp.full((num,), k, jnp.int32)
    out = guided_output(denoise_fn, x, ks, context, config.cfg_weight)
    x0 = clip(sch.predict_x0_from_eps(sched, x, ks, out) if config.predict_epsilon else out)
    shift = 0.0
    if guide is not None:
      x0, shift = guide(x, x0, k)
      x0 = clip(x0)  # idempotent where the guide left x0 as it was
    if ddim:
      eps = sch.predict_eps_from_x0(sched, x, ks, x0)
      x = sch.ddim_step(sched, x, ks, jnp.full((num,), k_prev, jnp.int32), x0, eps,
                        eta=config.eta, noise=eps_noise, noise_scale=config.noise_scale) + shift
    else:
      x = sch.ddpm_step(sched, x, ks, x0, eps_noise, config.noise_scale) + shift
    return inpaint(x), None

  x = inpaint(scale * noise[0])
  if remat:
    step = jax.checkpoint(step)
  x, _ = jax.lax.scan(step, x, (jnp.asarray(ts), jnp.asarray(prev), noise[1:]))
  return x
