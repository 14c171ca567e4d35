"""The MetaDiffuser planner: a pure function in the style of `mctx.muzero_policy`.

`plan(params, rng, obs, context, denoise_fn, guide_fn, *, normalizer, config)` draws
`config.num_candidates` plans for each of the B states with the reverse chain of
`mdx.diffusion.sampling.sample` (one `lax.scan`, CFG in one batched call), and adds:
- inpainting of the current state `x[0, :obs_dim] = s_t` on `x_K` and after every step;
- the dual guide (Eq. 7, Algorithm 1) as the sampler's guide hook: `g = grad_x sum(J - lambda zeta)`,
  `J = sum_t R(s_t, a_t, z)`, `zeta = sum_t ||s_{t+1} - P(s_t, a_t, z)||^2`, evaluated by
  `guide_fn` on UNNORMALIZED states and actions (the normalizer is differentiated through).
  DESIGN (sign): the paper's Eq. 7 writes `J + lambda zeta`; zeta is a discrepancy to be reduced,
  so we ascend `J - lambda zeta`. No guide at steps `k < t_stopgrad` (Diffuser). With
  `guide_scale == 0` or no `guide_fn` no gradient is taken. Three forms (`guide_form`):
  - 'mean': `mu_hat = mu + s Sigma_k g(x_k)` (Dhariwal & Nichol's classifier guidance;
    Diffuser's `scale_grad_by_std` step). Only x0_hat is clipped, never the guided mean.
  - 'eps': the paper's Algorithm 1 literally, `eps_hat = eps - s sqrt(1 - abar_k) g(x_k)`, i.e.
    `x0_hat += s sqrt(1/abar_k - 1) sqrt(1 - abar_k) g`. With the cosine schedule this moves the
    mean ~30x more than 'mean' at the noisiest steps (measured in tests/test_planning.py).
  - 'x0': reconstruction guidance (universal guidance's forward step): the objective is evaluated
    on the predicted clean plan, where R and P were trained, `x0_hat += s g(x0_hat)`, also at
    k = 0.
- candidate selection: each plan is scored by `J - lambda zeta` and the best of N is kept.

The library never jits: callers wrap `plan` in `jax.jit` (and `jax.vmap`) with `config` closed
over. Randomness is drawn per example from `split(rng, B)`, so a batched call and per-example calls
with those keys agree.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mdx.data import normalizer as nz
from mdx.diffusion import sampling
from mdx.diffusion import schedule as sch
from mdx.diffusion.losses import DenoiseFn, inpaint

Params = Any
# guide_fn(params, states [B, H, obs], actions [B, H, act], context [B, C]) -> (J [B], zeta [B])
GuideFn = Callable[[Params, jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
GUIDE_FORMS = ('mean', 'eps', 'x0')
GUIDE_UNITS = ('normalized', 'env')


@dataclasses.dataclass(frozen=True)
class PlanConfig:
  """Static knobs of the planner (hashable: close over it, or pass it as a static argument)."""
  horizon: int  # H, steps per plan.
  num_diffusion_steps: int = 20  # K, denoising steps of the trained schedule.
  sampler: str = 'ddpm'  # 'ddpm' or 'ddim' (`num_sample_steps` of the K)
  num_sample_steps: Optional[int] = None  # DDIM only: steps actually taken (None: all K)
  eta: float = 0.0  # DDIM only: 0 deterministic, 1 DDPM's variance
  num_candidates: int = 1  # N plans per state; the best by J - lambda * zeta is kept.
  cfg_weight: float = 1.0  # omega of Eq. 6; 1.0 skips the unconditional branch.
  guide_scale: float = 0.0  # s, the step size of the dual guide; 0.0 disables it.
  dynamics_weight: float = 1.0  # lambda, the weight of zeta against J.
  t_stopgrad: int = 0  # no guide at denoising steps k < t_stopgrad.
  noise_scale: float = 1.0  # alpha of Algorithm 1: the variance multiplier of x_K and each step.
  predict_epsilon: bool = True  # the network's parameterization (must match training).
  clip_denoised: Optional[float] = None  # clip the predicted x0 to [-c, c] (normalized units).
  guide_form: str = 'mean'  # 'mean' (mu + s Sigma g), 'eps' (paper's Alg. 1) or 'x0' (on x0_hat)
  guide_units: str = 'normalized'  # the space of the guide's step: 'normalized' or 'env'
  schedule: str = 'cosine'  # the trained noise schedule ('cosine' or 'vp')
  # True: plans are state-action rows `[H, obs + act]` with the current state inpainted (Diffuser,
  # MetaDiffuser); False: action sequences `[H, act]` whose state enters through the context
  # (Decision Diffuser's and MTDiff-P's planners; no inpainting, no dual guide).
  plan_states: bool = True

  def __post_init__(self):
    checks = [('horizon', self.horizon >= 1, '>= 1'),
              ('num_candidates', self.num_candidates >= 1 and (
                  self.plan_states or self.num_candidates == 1),
               '>= 1 (1 with plan_states=False: no guide scores action-only plans)'),
              ('guide_scale', _finite(self.guide_scale), 'finite'),
              ('dynamics_weight', _finite(self.dynamics_weight), 'finite'),
              ('t_stopgrad', 0 <= self.t_stopgrad <= self.num_diffusion_steps,
               'in [0, num_diffusion_steps]'),
              ('guide_form', self.guide_form in GUIDE_FORMS, f'one of {GUIDE_FORMS}'),
              ('guide_units', self.guide_units in GUIDE_UNITS, f'one of {GUIDE_UNITS}')]
    for name, ok, want in checks:
      if not ok:
        raise ValueError(f'PlanConfig.{name} must be {want}, got {getattr(self, name)!r}')
    self.sample_config  # validates the sampler's knobs  # pylint: disable=pointless-statement

  @property
  def sample_config(self) -> sampling.SampleConfig:
    return sampling.SampleConfig(
        num_diffusion_steps=self.num_diffusion_steps, sampler=self.sampler,
        num_sample_steps=self.num_sample_steps, eta=self.eta, cfg_weight=self.cfg_weight,
        noise_scale=self.noise_scale, predict_epsilon=self.predict_epsilon,
        clip_denoised=self.clip_denoised, schedule=self.schedule)


def _finite(v) -> bool:
  """False for a non-finite Python number; True otherwise (a traced knob is checked by whoever
  made it: the Figure-3 replay and evaluation sweeps vmap `dynamics_weight`, `guide_scale`,
  `cfg_weight` and `noise_scale`, `mdx.methods.metadiffuser.policy.SWEEPABLE`)."""
  return not sampling.is_number(v) or bool(np.isfinite(v))


@struct.dataclass
class PlanOutput:
  """The kept plan for each of the B states, in environment units."""
  action: jax.Array  # [B, act_dim]: the first action, to execute now.
  states: jax.Array  # [B, H, obs_dim]: planned states (states[:, 0] is the current state).
  actions: jax.Array  # [B, H, act_dim]: planned actions.
  value: jax.Array  # [B]: J of the kept plan (NaN when planning without a guide_fn).
  discrepancy: jax.Array  # [B]: zeta of the kept plan (NaN without a guide_fn).


def dual_guide(objective: Callable[[jax.Array], jax.Array], *, config: PlanConfig,
               inpaint_fn: Callable[[jax.Array], jax.Array], precond) -> sampling.GuideHook:
  """The sampler's guide hook for `config.guide_form`; `objective(x [M, H, D]) -> [M]`."""
  sched = sch.make_schedule(config.num_diffusion_steps, config.schedule)
  grad = lambda y: precond * jax.grad(lambda u: objective(u).sum())(y)

  def hook(x, x0, k):
    s = jnp.where(k >= config.t_stopgrad, config.guide_scale, 0.0)
    if config.guide_form == 'x0':
      x0 = inpaint_fn(x0)  # R(s_0, a_0) must see the true current state
      return x0 + s * grad(x0), 0.0
    g = grad(x)
    if config.guide_form == 'eps':
      return x0 + s * sched.sqrt_recipm1_alphas_cumprod[k] * sched.sqrt_one_minus_alphas_cumprod[
          k] * g, 0.0
    return x0, s * sched.posterior_variance[k] * g
  return hook


def plan(params: Params, rng: jax.Array, obs: jax.Array, context: jax.Array,
         denoise_fn: DenoiseFn, guide_fn: Optional[GuideFn], *, normalizer: nz.Normalizer,
         config: PlanConfig) -> PlanOutput:
  """Plans from B states.

  Args:
    params: passed unchanged to `denoise_fn` and `guide_fn`.
    rng: PRNG key.
    obs: `[B, obs_dim]` current states (environment units).
    context: `[B, C]` task contexts z (or any pytree of `[B, ...]` arrays: a prompt, a history).
    denoise_fn: `(params, x_k [M, H, D], k [M], context [M, ...], mask [M]) -> [M, H, D]`, the
      network in normalized units, predicting eps or x0 per `config.predict_epsilon`; D is
      obs + act, or act with `config.plan_states=False`.
    guide_fn: `(params, states, actions, context) -> (J [M], zeta [M])` in environment units, or
      None (no guide, no candidate scoring: the first candidate is kept).
    normalizer: maps environment units to the denoiser's normalized units.
    config: the static knobs.

  Returns:
    `PlanOutput` with leading axis `[B]` (with `plan_states=False` its `states` are NaN: nothing
    was planned for them).
  """
  batch, obs_dim = obs.shape
  n, horizon = config.num_candidates, config.horizon
  act_dim = normalizer.act_lo.shape[-1]
  if not config.plan_states:
    if guide_fn is not None:
      raise ValueError('plan: the dual guide scores planned states; PlanConfig.plan_states=False '
                       'plans actions only (pass guide_fn=None)')
    return _plan_actions(params, rng, obs, context, denoise_fn, normalizer=normalizer,
                         config=config)
  use_guide = guide_fn is not None and not (sampling.is_number(config.guide_scale)
                                            and config.guide_scale == 0.0)

  flat = lambda x: x.reshape((batch * n,) + x.shape[2:])  # [B, N, ...] -> [BN, ...]
  obs_n = flat(jnp.repeat(nz.normalize_obs(normalizer, obs)[:, None], n, axis=1))
  ctx_n = jax.tree.map(lambda c: flat(jnp.repeat(c[:, None], n, axis=1)), context)

  def objective(x):  # [BN, H, D] normalized -> [BN] J - lambda zeta, and (J, zeta)
    states, actions = nz.unnormalize_traj(normalizer, x)
    j, zeta = guide_fn(params, states, actions, ctx_n)
    return j - config.dynamics_weight * zeta, (j, zeta)

  # With guide_units 'env' the gradient w.r.t. normalized x is preconditioned by the squared
  # half-ranges of the normalizer, which makes the step `s * grad` in environment units
  # (dx_env = s dJ/dx_env): normalized units stretch Point-Robot's actions 10x against its
  # states, so a step that moves an action by 0.04 moves a state by 4 normalized units.
  if config.guide_units == 'env':
    half = 0.5 * jnp.concatenate([normalizer.obs_hi - normalizer.obs_lo,
                                  normalizer.act_hi - normalizer.act_lo])
    precond = (1.0 / jnp.square(half))[None, None, :]  # [1, 1, D]
  else:
    precond = 1.0
  inpaint_fn = lambda x: inpaint(x, obs_n)
  guide = (dual_guide(lambda x: objective(x)[0], config=config, inpaint_fn=inpaint_fn,
                      precond=precond) if use_guide else None)
  keys = jax.vmap(lambda key: jax.random.split(key, n))(jax.random.split(rng, batch))
  x = sampling.sample(lambda xk, k, c, m: denoise_fn(params, xk, k, c, m),
                      keys.reshape((batch * n,) + keys.shape[2:]), ctx_n,
                      shape=(horizon, obs_dim + act_dim), config=config.sample_config,
                      guide=guide, inpaint=inpaint_fn)

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


def _plan_actions(params, rng, obs, context, denoise_fn, *, normalizer, config) -> PlanOutput:
  """`plan` of action sequences (`config.plan_states=False`): one plan per state (no candidate
  is scored without a guide), the context carrying everything the network knows of the state."""
  batch, obs_dim = obs.shape
  act_dim = normalizer.act_lo.shape[-1]
  x = sampling.sample(lambda xk, k, c, m: denoise_fn(params, xk, k, c, m),
                      jax.random.split(rng, batch), context, shape=(config.horizon, act_dim),
                      config=config.sample_config)
  actions = nz.unnormalize_act(normalizer, x)
  nan = jnp.full((batch,), jnp.nan)
  states = jnp.full((batch, config.horizon, obs_dim), jnp.nan)
  return PlanOutput(action=actions[:, 0], states=states, actions=actions, value=nan,
                    discrepancy=nan)


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
