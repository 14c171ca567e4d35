"""The MetaDiffuser planner: a pure function in the style of `mctx.muzero_policy`.

`plan(params, rng, obs, context, denoise_fn, guide_fn, *, normalizer, config)` draws
`config.num_candidates` plans for each of the B states, with the whole K-step reverse chain as one
`lax.scan`. At every step:
1. Classifier-free guidance (Eq. 6): the conditional and unconditional branches are ONE call of
   `denoise_fn` on a `[2 B N]` batch whose context mask is `[True]*BN + [False]*BN`;
   `out = out_u + omega (out_c - out_u)` (linear, so the same in eps or x0 parameterization).
   With `cfg_weight == 1` the unconditional branch is not computed at all.
2. The dual guide (Eq. 7, Algorithm 1): `g = grad_x sum(J - lambda zeta)`, with
   `J = sum_t R(s_t, a_t, z)` and `zeta = sum_t ||s_{t+1} - P(s_t, a_t, z)||^2` evaluated by
   `guide_fn` on UNNORMALIZED states and actions (the normalizer is differentiated through).
   DESIGN (sign): the paper's Eq. 7 writes `J + lambda zeta`; zeta is a discrepancy to be reduced,
   so we ascend `J - lambda zeta`. The guide is zeroed for `k < t_stopgrad` (Diffuser). With
   `guide_scale == 0` or no `guide_fn` no gradient is taken. Two forms (`guide_form`):
   - 'mean' (default): `mu_hat = mu + s Sigma_k g` (Dhariwal & Nichol's classifier guidance;
     Diffuser's `scale_grad_by_std` step, which multiplies the gradient by the posterior variance).
   - 'eps': the paper's Algorithm 1 literally, `eps_hat = eps - s sqrt(1 - abar_k) g`. It moves
     the posterior mean by `s beta_k / sqrt(alpha_k) g`; with the cosine schedule beta reaches its
     0.999 clip at the first (noisiest) steps, where that factor is ~30, so this form needs a much
     smaller `s` (measured in tests/test_planning.py) and `clip_denoised`.
   - 'x0': reconstruction guidance (Bansal et al. 2023's universal guidance, forward step): the
     objective is evaluated on the predicted clean plan, where R and P were trained, and that
     prediction is moved, `x0_hat <- x0_hat + s grad_{x0} (J - lambda zeta)(x0_hat)`, before the
     posterior step. Unlike the other forms it also acts at k = 0, where the posterior variance is
     0 and the sample is the prediction itself.
   With `clip_denoised` the guided mean is clipped to the same range as the predicted x0, so the
   guide cannot push plans where the reward and dynamics models were never trained.
3. The DDPM step `x_{k-1} ~ N(mu, alpha Sigma)` (alpha = `noise_scale`; no noise at k = 0), then
   inpainting of the current state `x[0, :obs_dim] = s_t`.
After the chain, each plan is scored by `J - lambda zeta` and the best of the N candidates is kept.

The library never jits: callers wrap `plan` in `jax.jit` (and `jax.vmap`) with `config` closed
over. Randomness is drawn per example from `split(rng, B)`, so a batched call and per-example calls
with those keys agree.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
from flax import struct

from mdx.data import normalizer as nz
from mdx.diffusion import schedule as sch
from mdx.diffusion.losses import DenoiseFn, inpaint

Params = Any
# guide_fn(params, states [B, H, obs], actions [B, H, act], context [B, C]) -> (J [B], zeta [B])
GuideFn = Callable[[Params, jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


@dataclasses.dataclass(frozen=True)
class PlanConfig:
  """Static knobs of the planner (hashable: close over it, or pass it as a static argument)."""
  horizon: int  # H, steps per plan.
  num_steps: int = 20  # K, denoising steps.
  num_candidates: int = 1  # N plans per state; the best by J - lambda * zeta is kept.
  cfg_weight: float = 1.0  # omega of Eq. 6; 1.0 skips the unconditional branch.
  guide_scale: float = 0.0  # s, the step size of the dual guide; 0.0 disables it.
  dynamics_weight: float = 1.0  # lambda, the weight of zeta against J.
  t_stopgrad: int = 0  # no guide at denoising steps k < t_stopgrad.
  noise_scale: float = 1.0  # alpha of Algorithm 1: scales the sampling noise's std.
  predict_epsilon: bool = True  # the network's parameterization (must match training).
  clip_denoised: Optional[float] = None  # clip the predicted x0 to [-c, c] (normalized units).
  guide_form: str = 'mean'  # 'mean' (mu + s Sigma g), 'eps' (paper's Alg. 1) or 'x0' (on x0_hat)
  guide_units: str = 'normalized'  # the space of the guide's step: 'normalized' or 'env'

  def __post_init__(self):
    checks = [('horizon', self.horizon >= 1, '>= 1'), ('num_steps', self.num_steps >= 1, '>= 1'),
              ('num_candidates', self.num_candidates >= 1, '>= 1'),
              ('noise_scale', self.noise_scale >= 0, '>= 0'),
              ('t_stopgrad', 0 <= self.t_stopgrad <= self.num_steps, 'in [0, num_steps]'),
              ('guide_form', self.guide_form in ('mean', 'eps', 'x0'), "'mean', 'eps' or 'x0'"),
              ('guide_units', self.guide_units in ('normalized', 'env'), "'normalized' or 'env'")]
    for name, ok, want in checks:
      if not ok:
        raise ValueError(f'PlanConfig.{name} must be {want}, got {getattr(self, name)!r}')


@struct.dataclass
class PlanOutput:
  """The kept plan for each of the B states, in environment units."""
  action: jax.Array  # [B, act_dim]: the first action, to execute now.
  states: jax.Array  # [B, H, obs_dim]: planned states (states[:, 0] is the current state).
  actions: jax.Array  # [B, H, act_dim]: planned actions.
  value: jax.Array  # [B]: J of the kept plan (NaN when planning without a guide_fn).
  discrepancy: jax.Array  # [B]: zeta of the kept plan (NaN without a guide_fn).


def plan(params: Params, rng: jax.Array, obs: jax.Array, context: jax.Array,
         denoise_fn: DenoiseFn, guide_fn: Optional[GuideFn], *, normalizer: nz.Normalizer,
         config: PlanConfig) -> PlanOutput:
  """Plans from B states.

  Args:
    params: passed unchanged to `denoise_fn` and `guide_fn`.
    rng: PRNG key.
    obs: `[B, obs_dim]` current states (environment units).
    context: `[B, C]` task contexts z.
    denoise_fn: `(params, x_k [M, H, D], k [M], context [M, C], mask [M]) -> [M, H, D]`, the
      network in normalized units, predicting eps or x0 per `config.predict_epsilon`.
    guide_fn: `(params, states, actions, context) -> (J [M], zeta [M])` in environment units, or
      None (no guide, no candidate scoring: the first candidate is kept).
    normalizer: maps environment units to the denoiser's normalized units.
    config: the static knobs.

  Returns:
    `PlanOutput` with leading axis `[B]`.
  """
  batch, obs_dim = obs.shape
  n, horizon = config.num_candidates, config.horizon
  act_dim = normalizer.act_lo.shape[-1]
  dim = obs_dim + act_dim
  sched = sch.make_schedule(config.num_steps)
  use_cfg = config.cfg_weight != 1.0
  use_guide = guide_fn is not None and config.guide_scale != 0.0

  flat = lambda x: x.reshape((batch * n,) + x.shape[2:])  # [B, N, ...] -> [BN, ...]
  obs_n = flat(jnp.repeat(nz.normalize_obs(normalizer, obs)[:, None], n, axis=1))
  ctx_n = flat(jnp.repeat(context[:, None], n, axis=1))

  def objective(x):  # [BN, H, D] normalized -> [BN] J - lambda zeta, and (J, zeta)
    states, actions = nz.unnormalize_traj(normalizer, x)
    j, zeta = guide_fn(params, states, actions, ctx_n)
    return j - config.dynamics_weight * zeta, (j, zeta)

  # The guide's gradient, w.r.t. normalized x. With guide_units 'env' it is preconditioned by the
  # squared half-ranges of the normalizer, which makes the step `s * grad` in environment units
  # (dx_env = s dJ/dx_env): normalized units stretch Point-Robot's actions 10x against its
  # states, so a step that moves an action by 0.04 moves a state by 4 normalized units.
  if config.guide_units == 'env':
    half = 0.5 * jnp.concatenate([normalizer.obs_hi - normalizer.obs_lo,
                                  normalizer.act_hi - normalizer.act_lo])
    precond = (1.0 / jnp.square(half))[None, None, :]  # [1, 1, D]
  else:
    precond = 1.0
  guide_grad = lambda y: precond * jax.grad(lambda u: objective(u)[0].sum())(y)

  def step(x, inputs):
    k, noise = inputs
    ks = jnp.full((batch * n,), k, jnp.int32)
    if use_cfg:
      both = denoise_fn(params, jnp.concatenate([x, x]), jnp.concatenate([ks, ks]),
                        jnp.concatenate([ctx_n, ctx_n]),
                        jnp.concatenate([jnp.ones_like(ks, bool), jnp.zeros_like(ks, bool)]))
      out_c, out_u = jnp.split(both, 2)
      out = out_u + config.cfg_weight * (out_c - out_u)
    else:
      out = denoise_fn(params, x, ks, ctx_n, jnp.ones_like(ks, bool))
    x0 = sch.predict_x0_from_eps(sched, x, ks, out) if config.predict_epsilon else out
    if use_guide:
      scale = jnp.where(k >= config.t_stopgrad, config.guide_scale, 0.0)
    if use_guide and config.guide_form != 'x0':
      grad = guide_grad(x)
      if config.guide_form == 'eps':
        eps = out if config.predict_epsilon else sch.predict_eps_from_x0(sched, x, ks, out)
        eps = eps - scale * sched.sqrt_one_minus_alphas_cumprod[k] * grad
        x0 = sch.predict_x0_from_eps(sched, x, ks, eps)
    if config.clip_denoised is not None:
      x0 = jnp.clip(x0, -config.clip_denoised, config.clip_denoised)
    if use_guide and config.guide_form == 'x0':
      x0 = inpaint(x0, obs_n)  # R(s_0, a_0) must see the true current state
      x0 = x0 + scale * guide_grad(x0)
      if config.clip_denoised is not None:
        x0 = jnp.clip(x0, -config.clip_denoised, config.clip_denoised)
    mean, log_var = sch.q_posterior(sched, x0, x, ks)
    if use_guide and config.guide_form == 'mean':
      mean = mean + scale * sched.posterior_variance[k] * grad
      if config.clip_denoised is not None:  # keep guided plans where R and P were trained
        mean = jnp.clip(mean, -config.clip_denoised, config.clip_denoised)
    std = jnp.where(k > 0, config.noise_scale * jnp.exp(0.5 * log_var), 0.0)
    x = mean + std * noise
    return inpaint(x, obs_n), None

  # All the chain's Gaussian draws at once, one key per example (so `plan` under `vmap` equals
  # per-example calls): [K + 1, BN, H, D], the initial x_K first. DESIGN: drawing per step inside
  # the scan cost ~0.6 ms of RNG ops per step at batch 1 on CPU, a third of the U-Net's time.
  draw = lambda key: jax.random.normal(key, (config.num_steps + 1, n, horizon, dim))
  noise = jax.vmap(draw)(jax.random.split(rng, batch))  # [B, K + 1, N, H, D]
  noise = jnp.moveaxis(noise, 1, 0).reshape((config.num_steps + 1, batch * n, horizon, dim))
  x = inpaint(noise[0], obs_n)
  x, _ = jax.lax.scan(step, x, (jnp.arange(config.num_steps - 1, -1, -1), noise[1:]))

  states, actions = nz.unnormalize_traj(normalizer, x)
  states = states.reshape(batch, n, horizon, obs_dim)
  actions = actions.reshape(batch, n, horizon, act_dim)
  if guide_fn is not None:
    score, (j, zeta) = objective(x)
    best = jnp.argmax(score.reshape(batch, n), axis=1)
    j, zeta = j.reshape(batch, n), zeta.reshape(batch, n)
  else:
    best = jnp.zeros((batch,), jnp.int32)
    j = zeta = jnp.full((batch, n), jnp.nan)
  pick = lambda a: jnp.take_along_axis(a, best.reshape((batch,) + (1,) * (a.ndim - 1)), 1)[:, 0]
  states, actions = pick(states), pick(actions)
  return PlanOutput(action=actions[:, 0], states=states, actions=actions, value=pick(j),
                    discrepancy=pick(zeta))


def trajectory_objective(reward_fn: Callable, next_state_fn: Callable) -> Callable:
  """Builds `(states, actions, z) -> (J, zeta)` from per-transition models.

  Args:
    reward_fn: `(s [..., obs], a [..., act], z [..., C]) -> r [...]`.
    next_state_fn: `(s, a, z) -> s' [..., obs]`.

  Returns:
    A function of `states [M, H, obs]`, `actions [M, H, act]`, `z [M, C]` returning
    `J = sum_t R(s_t, a_t, z)` `[M]` and `zeta = sum_{t<H-1} ||s_{t+1} - P(s_t, a_t, z)||^2` `[M]`.
  """
  def fn(states, actions, z):
    zs = jnp.broadcast_to(z[:, None, :], states.shape[:2] + z.shape[-1:])
    j = reward_fn(states, actions, zs).sum(-1)
    pred = next_state_fn(states[:, :-1], actions[:, :-1], zs[:, :-1])
    zeta = jnp.square(states[:, 1:] - pred).sum((-1, -2))
    return j, zeta
  return fn
