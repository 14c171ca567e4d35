"""The planner: inpainting, CFG algebra and its single batched call, the dual guide's signs,
candidate selection, and `jit(vmap(plan))` against per-example calls."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mdx.data import Normalizer
from mdx.planning import PlanConfig, plan, trajectory_objective

OBS, ACT, H = 2, 2, 4
NORM = Normalizer(obs_lo=-jnp.ones(OBS), obs_hi=3 * jnp.ones(OBS), act_lo=-jnp.ones(ACT),
                  act_hi=jnp.ones(ACT), rew_lo=jnp.array(-1.0), rew_hi=jnp.array(0.0))


def analytic_denoiser(params, x, k, c, mask):
  """x0 prediction: a context-dependent pull, different with the null context."""
  target = jnp.where(mask[:, None, None], jnp.tanh(c[:, None, :1]), -0.5)
  return 0.5 * x + params['w'] * target + 0.01 * k[:, None, None]


PARAMS = {'w': jnp.asarray(0.7)}


def _obs_ctx(b, seed=0):
  r1, r2 = jax.random.split(jax.random.PRNGKey(seed))
  return jax.random.uniform(r1, (b, OBS), minval=-1, maxval=3), jax.random.normal(r2, (b, 3))


def _plan(config, denoise=analytic_denoiser, guide=None, b=5, seed=0, rng=0):
  obs, ctx = _obs_ctx(b, seed)
  return plan(PARAMS, jax.random.PRNGKey(rng), obs, ctx, denoise, guide, normalizer=NORM,
              config=config)


def shifted_dynamics_guide(reward_target=None):
  """P(s, a) = s + a + 0.5 (so a zero plan is inconsistent); R = -||a - target||^2 or 0."""
  def fn(params, states, actions, z):
    reward = (lambda s, a, zz: jnp.zeros(s.shape[:-1])) if reward_target is None else (
        lambda s, a, zz: -jnp.square(a - reward_target.reshape((1,) * (a.ndim - 1) + (-1,))).sum(-1))
    return trajectory_objective(reward, lambda s, a, zz: s + a + 0.5)(states, actions, z)
  return fn


def test_inpainting_keeps_current_state():
  obs, _ = _obs_ctx(5)
  config = PlanConfig(horizon=H, num_diffusion_steps=6, num_candidates=3, cfg_weight=1.5, guide_scale=0.5,
                      predict_epsilon=False)
  out = jax.jit(lambda: _plan(config, guide=shifted_dynamics_guide()))()
  np.testing.assert_allclose(out.states[:, 0], obs, atol=1e-6)
  np.testing.assert_allclose(out.action, out.actions[:, 0])
  assert out.states.shape == (5, H, OBS) and out.actions.shape == (5, H, ACT)
  assert out.value.shape == (5,) and np.all(np.isfinite(out.discrepancy))


def test_cfg_weight_one_is_the_conditional_model_and_skips_the_null_branch():
  config = PlanConfig(horizon=H, num_diffusion_steps=5, predict_epsilon=False)
  seen = []

  def poisoned(params, x, k, c, mask):
    seen.append(x.shape[0])
    return jnp.where(mask[:, None, None], analytic_denoiser(params, x, k, c, mask), 1e6)

  cond_only = lambda p, x, k, c, m: analytic_denoiser(p, x, k, c, jnp.ones_like(m))
  a = jax.jit(lambda: _plan(config, poisoned))()
  b = jax.jit(lambda: _plan(config, cond_only))()
  np.testing.assert_array_equal(a.states, b.states)
  assert seen == [5]  # one network call per step, B * N = 5 rows: no unconditional branch


def test_cfg_combination_in_one_batched_call():
  seen = []

  def recording(params, x, k, c, mask):
    seen.append((x.shape[0], int(np.asarray(mask).sum()) if not isinstance(mask, jax.core.Tracer)
                 else None))
    return analytic_denoiser(params, x, k, c, mask)

  def combined(params, x, k, c, mask):  # eps_u + 2 (eps_c - eps_u), computed by hand
    on, off = jnp.ones_like(mask), jnp.zeros_like(mask)
    return 2 * analytic_denoiser(params, x, k, c, on) - analytic_denoiser(params, x, k, c, off)

  cfg = jax.jit(lambda: _plan(PlanConfig(horizon=H, num_diffusion_steps=5, cfg_weight=2.0,
                                         predict_epsilon=False), recording))()
  manual = jax.jit(lambda: _plan(PlanConfig(horizon=H, num_diffusion_steps=5, predict_epsilon=False),
                                 combined))()
  np.testing.assert_allclose(cfg.states, manual.states, rtol=1e-5, atol=1e-5)
  assert [s for s, _ in seen] == [10]  # both branches in ONE call on a [2 B N] batch


def test_raising_lambda_lowers_dynamics_discrepancy():
  zetas = []
  # Step sizes stay inside gradient ascent's stable range (scale * lambda * curvature < 2).
  for lam in (0.0, 0.5, 2.0):
    config = PlanConfig(horizon=H, num_diffusion_steps=10, guide_scale=0.02, dynamics_weight=lam,
                        predict_epsilon=False, noise_scale=0.0)
    # An x0 denoiser that returns its input (a flat prior) lets the guide's shifts accumulate.
    out = jax.jit(lambda c=config: _plan(c, lambda p, x, k, c_, m: x,
                                         shifted_dynamics_guide(), b=16))()
    zetas.append(float(out.discrepancy.mean()))
  assert zetas[0] > zetas[1] > zetas[2], zetas
  assert zetas[2] < 0.5 * zetas[0], zetas


def test_paper_eps_form_also_lowers_discrepancy_at_small_scale():
  zetas = []
  for lam in (0.0, 2.0):
    config = PlanConfig(horizon=H, num_diffusion_steps=10, guide_scale=0.005, dynamics_weight=lam,
                        predict_epsilon=False, noise_scale=0.0, guide_form='eps',
                        clip_denoised=1.0)
    out = jax.jit(lambda c=config: _plan(c, lambda p, x, k, c_, m: x,
                                         shifted_dynamics_guide(), b=16))()
    zetas.append(float(out.discrepancy.mean()))
  assert zetas[1] < 0.8 * zetas[0], zetas


def test_reward_guide_raises_return_and_t_stopgrad_disables_it():
  guide = shifted_dynamics_guide(reward_target=jnp.array([0.8, -0.8]))
  values = {}
  for name, scale, stop in (('off', 0.0, 0), ('on', 0.05, 0), ('stopped', 0.05, 10)):
    config = PlanConfig(horizon=H, num_diffusion_steps=10, guide_scale=scale, dynamics_weight=0.0,
                        t_stopgrad=stop, predict_epsilon=False, noise_scale=0.0)
    out = jax.jit(lambda c=config: _plan(c, lambda p, x, k, c_, m: x, guide, b=8))()
    values[name] = float(out.value.mean())
  assert values['on'] > values['off'] + 0.5, values
  np.testing.assert_allclose(values['stopped'], values['off'], rtol=1e-6)


def test_best_candidate_is_kept():
  guide = shifted_dynamics_guide(reward_target=jnp.array([0.8, -0.8]))
  mean_value = lambda n: float(jax.jit(lambda: _plan(
      PlanConfig(horizon=H, num_diffusion_steps=5, num_candidates=n, dynamics_weight=0.0,
                 predict_epsilon=False), lambda p, x, k, c, m: 0.0 * x + x, guide, b=32))().value.mean())
  assert mean_value(16) > mean_value(1)


def test_x0_denoiser_lands_exactly_on_its_prediction():
  """No noise at k = 0 and posterior coef1 = 1 there: the sample is the last x0 prediction."""
  const = lambda p, x, k, c, m: jnp.full_like(x, 0.25)
  out = jax.jit(lambda: _plan(PlanConfig(horizon=H, num_diffusion_steps=7, predict_epsilon=False), const))()
  # 0.25 normalized is (0.25 + 1) / 2 * 4 - 1 = 1.5 for states in [-1, 3], 0.25 for actions.
  np.testing.assert_allclose(out.states[:, 1:], 1.5, atol=1e-5)
  np.testing.assert_allclose(out.actions, 0.25, atol=1e-5)


def test_vmapped_plan_equals_per_example_calls():
  config = PlanConfig(horizon=H, num_diffusion_steps=5, num_candidates=3, cfg_weight=1.4, guide_scale=0.1,
                      t_stopgrad=1, predict_epsilon=True)
  guide = shifted_dynamics_guide(reward_target=jnp.array([0.3, 0.1]))
  obs, ctx = _obs_ctx(4, seed=3)
  keys = jax.random.split(jax.random.PRNGKey(9), 4)
  single = lambda r, o, c: plan(PARAMS, r, o[None], c[None], analytic_denoiser, guide,
                                normalizer=NORM, config=config)
  batched = jax.jit(jax.vmap(single))(keys, obs, ctx)
  one = jax.jit(single)
  for i in range(4):
    ref = one(keys[i], obs[i], ctx[i])
    np.testing.assert_allclose(batched.states[i], ref.states, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batched.value[i], ref.value, rtol=1e-5, atol=1e-5)


def test_config_errors():
  with pytest.raises(ValueError, match='num_candidates must be >= 1'):
    PlanConfig(horizon=4, num_candidates=0)
  with pytest.raises(ValueError, match=r't_stopgrad must be in \[0, num_diffusion_steps\]'):
    PlanConfig(horizon=4, num_diffusion_steps=5, t_stopgrad=6)


def test_x0_guide_moves_the_final_plan_where_the_mean_form_cannot():
  """At k = 0 the posterior variance is 0: the mean form cannot move the final sample of a
  confident x0 denoiser, while the x0 form ascends J on the prediction itself."""
  guide = shifted_dynamics_guide(reward_target=jnp.array([0.8, -0.8]))
  const = lambda p, x, k, c, m: jnp.zeros_like(x)
  values = {}
  for form in ('off', 'mean', 'x0'):
    config = PlanConfig(horizon=H, num_diffusion_steps=1, guide_scale=0.0 if form == 'off' else 0.5,
                        guide_form='mean' if form == 'off' else form, dynamics_weight=0.0,
                        predict_epsilon=False)
    values[form] = jax.jit(lambda c=config: _plan(c, const, guide, b=4))()
  np.testing.assert_allclose(values['mean'].actions, values['off'].actions, atol=1e-6)
  assert float(values['x0'].value.mean()) > float(values['off'].value.mean()) + 0.5
  # One x0 step of size s: a <- a + s dJ/da, with J = -||a - target||^2 in normalized = raw units.
  expected = np.broadcast_to(0.5 * 2 * np.array([0.8, -0.8]), (4, H, 2))
  np.testing.assert_allclose(values['x0'].actions, expected, rtol=1e-5)


def test_guide_units_env_steps_in_environment_units():
  """With guide_units 'env' one x0 step moves x by s dJ/dx in environment units; in normalized
  units the same s moves a state of half-range 2 by 4 s dJ/dx_env."""
  reward = lambda s, a, zz: -jnp.square(s - 2.0).sum(-1)  # dJ/ds = 2 at s = 1
  guide = lambda p, s, a, z: trajectory_objective(reward, lambda s, a, zz: s)(s, a, z)
  const = lambda p, x, k, c, m: jnp.zeros_like(x)  # normalized 0: states at 1.0 in env units
  out = {}
  for units in ('normalized', 'env'):
    config = PlanConfig(horizon=H, num_diffusion_steps=1, guide_scale=0.1, guide_form='x0',
                        guide_units=units, dynamics_weight=0.0, predict_epsilon=False)
    out[units] = jax.jit(lambda c=config: _plan(c, const, guide, b=3))()
  np.testing.assert_allclose(out['env'].states[:, 1:], 1.0 + 0.1 * 2.0, rtol=1e-5)
  np.testing.assert_allclose(out['normalized'].states[:, 1:], 1.0 + 4 * 0.1 * 2.0, rtol=1e-5)
  np.testing.assert_allclose(out['env'].actions, 0.0, atol=1e-6)  # R does not read actions
  with pytest.raises(ValueError, match="guide_units must be one of"):
    PlanConfig(horizon=4, guide_units='raw')


def _numpy_cosine_schedule(k_steps, s=0.008):
  """Nichol & Dhariwal's cosine schedule, written out again in float64 (betas clipped at 0.999)."""
  t = np.arange(k_steps + 1) / k_steps
  f = np.cos((t + s) / (1 + s) * np.pi / 2) ** 2
  betas = np.clip(1 - f[1:] / f[:-1], 0, 0.999)
  abar = np.cumprod(1 - betas)
  abar_prev = np.concatenate([[1.0], abar[:-1]])
  return betas, abar, abar_prev


@pytest.mark.parametrize('noise_scale', [0.0, 0.25])
def test_plan_matches_an_independent_numpy_ddpm_chain(noise_scale):
  """Golden test: eps-prediction DDPM with inpainting and x0 clipping, alpha = `noise_scale` the
  VARIANCE multiplier of x_K and of every step, against a numpy chain on the same noise."""
  from mdx.diffusion import sampling  # pylint: disable=g-import-not-at-top
  k_steps, b, d = 6, 3, OBS + ACT
  eps_model = lambda x, k: 0.3 * x + 0.05 * k  # a fixed, hand-checkable eps predictor
  denoise = lambda p, x, k, c, m: eps_model(x, k[:, None, None].astype(x.dtype))
  config = PlanConfig(horizon=H, num_diffusion_steps=k_steps, noise_scale=noise_scale,
                      clip_denoised=1.0, predict_epsilon=True)
  obs, ctx = _obs_ctx(b)
  rng = jax.random.PRNGKey(4)
  out = jax.jit(lambda: plan(PARAMS, rng, obs, ctx, denoise, None, normalizer=NORM,
                             config=config))()
  keys = jax.vmap(lambda key: jax.random.split(key, 1))(jax.random.split(rng, b)).reshape(b, -1)
  noise = np.asarray(sampling.draw_noise(keys, (H, d), k_steps + 1), np.float64)
  betas, abar, abar_prev = _numpy_cosine_schedule(k_steps)
  s0 = 2 * (np.asarray(obs, np.float64) + 1) / 4 - 1  # states normalized from [-1, 3]
  x = np.sqrt(noise_scale) * noise[0]
  x[:, 0, :OBS] = s0
  for i, k in enumerate(range(k_steps - 1, -1, -1)):
    x0 = np.clip((x - np.sqrt(1 - abar[k]) * eps_model(x, k)) / np.sqrt(abar[k]), -1, 1)
    mean = (betas[k] * np.sqrt(abar_prev[k]) * x0
            + (1 - abar_prev[k]) * np.sqrt(1 - betas[k]) * x) / (1 - abar[k])
    var = betas[k] * (1 - abar_prev[k]) / (1 - abar[k])
    x = mean + (np.sqrt(noise_scale * var) * noise[i + 1] if k > 0 else 0.0)
    x[:, 0, :OBS] = s0
  np.testing.assert_allclose(out.states, (x[..., :OBS] + 1) / 2 * 4 - 1, atol=2e-5)
  np.testing.assert_allclose(out.actions, x[..., OBS:], atol=2e-5)


def test_mean_guide_with_zero_gradient_leaves_samples_unchanged():
  """Only x0_hat is clipped: a guide whose gradient is zero must not move the samples, even where
  the posterior mean lies outside the clip range (clipping the mean shifted x0 ~ N(0.7, 0.1^2)
  samples from 0.6999 to 0.6959 at K = 20)."""
  flat = lambda p, s, a, z: (jnp.zeros(s.shape[0]), jnp.zeros(s.shape[0]))
  x0_model = lambda p, x, k, c, m: 0.7 + 0.0 * x
  outs = {}
  for scale in (0.0, 1.0):
    config = PlanConfig(horizon=H, num_diffusion_steps=20, guide_scale=scale, guide_form='mean',
                        clip_denoised=1.0, predict_epsilon=False)
    outs[scale] = jax.jit(lambda c=config: _plan(c, x0_model, flat, b=64))()
  np.testing.assert_array_equal(outs[1.0].actions, outs[0.0].actions)
  np.testing.assert_array_equal(outs[1.0].states, outs[0.0].states)


def test_sampler_ddim_with_an_exact_x0_model_lands_on_it():
  """DDIM (eta = 0) with a model that always predicts the same clean sample lands on it exactly,
  in any number of steps; CFG with omega = 1 computes no unconditional branch."""
  from mdx.diffusion import sampling  # pylint: disable=g-import-not-at-top
  target = jnp.linspace(-0.5, 0.5, 6).reshape(1, 3, 2)
  calls = []

  def model(x, k, c, m):
    calls.append(x.shape[0])
    return jnp.broadcast_to(target, x.shape)
  for steps in (1, 4, 10):
    config = sampling.SampleConfig(num_diffusion_steps=10, sampler='ddim', num_sample_steps=steps,
                                   predict_epsilon=False)
    x = jax.jit(lambda c=config: sampling.sample(model, jax.random.split(jax.random.PRNGKey(0), 5),
                                                 jnp.zeros((5, 1)), shape=(3, 2), config=c))()
    np.testing.assert_allclose(x, jnp.broadcast_to(target, (5, 3, 2)), atol=1e-5)
  assert set(calls) == {5}
  with pytest.raises(ValueError, match="use sampler='ddim'"):
    sampling.SampleConfig(num_diffusion_steps=10, num_sample_steps=4)


def test_stochastic_ddim_at_eta_1_over_every_step_is_the_ddpm_step():
  """Song et al.'s eta: with eta = 1 and k_prev = k - 1 a DDIM step has DDPM's posterior mean and
  variance, so with the same noise it lands where `ddpm_step` does, at every k and any alpha;
  eta = 0 adds no noise; and a whole chain of each, with the same keys, gives the same samples."""
  from mdx.diffusion import make_schedule, sampling  # pylint: disable=g-import-not-at-top
  from mdx.diffusion import schedule as sch  # pylint: disable=g-import-not-at-top
  sched = make_schedule(10)
  rng = np.random.default_rng(0)
  x, x0, z = (jnp.asarray(rng.normal(size=(10, 3, 2)), jnp.float32) for _ in range(3))
  k = jnp.arange(10)
  eps = sch.predict_eps_from_x0(sched, x, k, x0)
  for alpha in (1.0, 0.25):
    ddpm = sch.ddpm_step(sched, x, k, x0, z, alpha)
    ddim = sch.ddim_step(sched, x, k, k - 1, x0, eps, eta=1.0, noise=z, noise_scale=alpha)
    np.testing.assert_allclose(ddim, ddpm, atol=2e-5)
  quiet = sch.ddim_step(sched, x, k, k - 1, x0, eps)
  np.testing.assert_array_equal(sch.ddim_step(sched, x, k, k - 1, x0, eps, eta=0.0, noise=z),
                                quiet)  # eta = 0 draws nothing
  assert not np.allclose(sch.ddim_step(sched, x, k, k - 1, x0, eps, eta=0.5, noise=z), quiet)
  model = lambda x_k, kk, c, m: jnp.tanh(x_k) * 0.5  # any x0 model
  keys = jax.random.split(jax.random.PRNGKey(3), 4)
  run = lambda cfg: jax.jit(lambda: sampling.sample(model, keys, jnp.zeros((4, 1)), shape=(3, 2),
                                                    config=cfg))()
  ddpm = run(sampling.SampleConfig(num_diffusion_steps=10, predict_epsilon=False))
  ddim = run(sampling.SampleConfig(num_diffusion_steps=10, sampler='ddim', eta=1.0,
                                   predict_epsilon=False))
  np.testing.assert_allclose(ddim, ddpm, atol=1e-4)
  with pytest.raises(ValueError, match="eta is DDIM's"):
    sampling.SampleConfig(num_diffusion_steps=10, eta=0.5)
