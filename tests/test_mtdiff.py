"""MTDiff-P: the VP schedule, the prompt-conditioned transformer noise model (causality, return
dropout, a toy distribution recovered), pytree contexts through the sampler's CFG, action-only
plans, its data (returns, histories, windows) and its policy's carried history."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mdx.data import normalizer as nz
from mdx.diffusion import denoising_loss, loss_weights, make_schedule, sampling
from mdx.diffusion.schedule import vp_betas
from mdx.methods.mtdiff import data as md_data
from mdx.nets.prompt_denoiser import PromptCondition, PromptTransformerDenoiser
from mdx.planning import PlanConfig, plan


def test_vp_schedule_known_values():
  # prod_k (1 - beta_k) = exp(-(beta_min + (beta_max - beta_min) / 2)) for every K, since
  # sum_{k=1..K} (2k - 1) = K^2.
  for k in (1, 5, 200):
    sched = make_schedule(k, 'vp')
    np.testing.assert_allclose(float(sched.alphas_cumprod[-1]), np.exp(-5.05), rtol=1e-5)
  np.testing.assert_allclose(vp_betas(1), [1 - np.exp(-5.05)])
  np.testing.assert_allclose(vp_betas(2), [1 - np.exp(-0.05 - 4.95 / 4),
                                           1 - np.exp(-0.05 - 3 * 4.95 / 4)])
  assert np.all(np.diff(vp_betas(200)) > 0)
  with pytest.raises(ValueError, match="schedule must be one of"):
    make_schedule(4, 'linear')


def _condition(b, j, length, p_dim, s_dim, rng):
  a, c, d = jax.random.split(rng, 3)
  return PromptCondition(prompt=jax.random.normal(a, (b, j, p_dim)),
                         history=jax.random.normal(c, (b, length, s_dim)),
                         returns=jax.random.uniform(d, (b,)))


def test_rows_see_no_later_row_and_a_dropped_return_is_ignored():
  net = PromptTransformerDenoiser(out_dim=2, max_horizon=5, prompt_len=3, history_len=2, width=16,
                                  num_layers=2, num_heads=2, hidden=32, dropout=0.0)
  rng = jax.random.PRNGKey(0)
  cond = _condition(4, 3, 2, 5, 3, rng)
  x = jax.random.normal(rng, (4, 5, 2))
  k = jnp.arange(4)
  params = net.init(rng, x, k, cond, jnp.ones((4,), bool))
  # Position embeddings start at zero (learned); give them values so the test sees them too.
  params = jax.tree.map(lambda v: v + 0.1 * jax.random.normal(rng, v.shape), params)
  on, off = jnp.ones((4,), bool), jnp.zeros((4,), bool)
  out = net.apply(params, x, k, cond, on)
  later = net.apply(params, x.at[:, 3:].add(1.0), k, cond, on)
  np.testing.assert_allclose(later[:, :3], out[:, :3], atol=1e-6)
  assert float(jnp.abs(later[:, 3:] - out[:, 3:]).max()) > 1e-3
  # Three rows planned: the first three rows' outputs are those of five (causal attention).
  np.testing.assert_allclose(net.apply(params, x[:, :3], k, cond, on), out[:, :3], atol=1e-5)
  other = cond.replace(returns=cond.returns + 1.0)
  np.testing.assert_array_equal(net.apply(params, x, k, other, off), net.apply(params, x, k, cond,
                                                                                off))
  assert float(jnp.abs(net.apply(params, x, k, other, on) - out).max()) > 1e-3
  # (not a constant shift: f_P's LayerNorm over a step's features erases it, as the code's)
  prompt = cond.replace(prompt=cond.prompt.at[:, 0].add(jnp.arange(5.0)))
  np.testing.assert_allclose(net.apply(params, x, k, cond.replace(prompt=cond.prompt + 1.0), on),
                             out, atol=1e-5)
  assert float(jnp.abs(net.apply(params, x, k, prompt, on)[:, 0] - out[:, 0]).max()) > 1e-3
  with pytest.raises(ValueError, match='max_horizon=5'):
    net.apply(params, jnp.zeros((4, 6, 2)), k, cond, on)


def test_the_denoiser_recovers_a_toy_distribution():
  """Actions are +0.5 or -0.5 (std 0.05) by the task's prompt; the trained model samples each
  task's mode from its prompt (the marginal is bimodal, mean 0)."""
  k_steps, horizon, j = 10, 2, 2
  net = PromptTransformerDenoiser(out_dim=1, max_horizon=horizon, prompt_len=j, history_len=1,
                                  width=32, num_layers=1, num_heads=2, hidden=64, dropout=0.0,
                                  mlp_layers=1)

  def cond(sign):  # the prompt's two features differ (a LayerNorm erases a constant vector)
    return PromptCondition(
        prompt=jnp.broadcast_to(jnp.stack([sign, -sign], -1)[:, None], (sign.shape[0], j, 2)),
        history=jnp.zeros((sign.shape[0], 1, 1)), returns=jnp.zeros(sign.shape))

  sched = make_schedule(k_steps, 'vp')
  weights = loss_weights(horizon, 0, 1, 1.0)
  params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, horizon, 1)), jnp.zeros((1,), jnp.int32),
                    cond(jnp.ones((1,))), jnp.ones((1,), bool))
  tx = optax.adam(3e-3)

  def step(carry, i):
    p, opt = carry
    r1, r2, r3 = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(1), i), 3)
    sign = jnp.where(jax.random.bernoulli(r1, 0.5, (128,)), 1.0, -1.0)
    x0 = 0.5 * sign[:, None, None] + 0.05 * jax.random.normal(r2, (128, horizon, 1))
    g = jax.grad(lambda q: denoising_loss(net.apply, q, sched, r3, x0, cond(sign), obs_dim=0,
                                          context_dropout=0.0, predict_epsilon=True,
                                          weights=weights)[0])(p)
    u, opt = tx.update(g, opt, p)
    return (optax.apply_updates(p, u), opt), None

  (params, _), _ = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), jnp.arange(600)))(params)
  sign = jnp.concatenate([jnp.ones(256), -jnp.ones(256)])
  config = sampling.SampleConfig(num_diffusion_steps=k_steps, schedule='vp')
  x = jax.jit(lambda p, keys: sampling.sample(lambda xk, kk, c, m: net.apply(p, xk, kk, c, m),
                                              keys, cond(sign), shape=(horizon, 1),
                                              config=config))(
      params, jax.random.split(jax.random.PRNGKey(2), 512))
  for half, mode in ((x[:256], 0.5), (x[256:], -0.5)):
    assert abs(float(half.mean()) - mode) < 0.06
    assert float(half.std()) < 0.1


def test_a_pytree_context_under_cfg_is_the_packed_array():
  """CFG's two branches of a dict context are one batched call, as of one packed array."""
  w = jax.random.normal(jax.random.PRNGKey(3), (5, 3))

  def packed(x, k, c, m):  # c [M, 5]: the first 2 columns 'a', the last 3 'b'
    return x * (1.0 + 0.1 * k[:, None, None]) + jnp.where(m[:, None], c @ w, 0.0)[:, None]

  def tree(x, k, c, m):
    return packed(x, k, jnp.concatenate([c['a'], c['b']], -1), m)

  c = jax.random.normal(jax.random.PRNGKey(4), (6, 5))
  keys = jax.random.split(jax.random.PRNGKey(5), 6)
  config = sampling.SampleConfig(num_diffusion_steps=4, cfg_weight=2.0, schedule='vp')
  a = sampling.sample(packed, keys, c, shape=(2, 3), config=config)
  b = sampling.sample(tree, keys, {'a': c[:, :2], 'b': c[:, 2:]}, shape=(2, 3), config=config)
  np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_action_only_plans():
  norm = nz.Normalizer(obs_lo=-jnp.ones(3), obs_hi=jnp.ones(3), act_lo=-2 * jnp.ones(2),
                       act_hi=2 * jnp.ones(2), rew_lo=jnp.float32(0), rew_hi=jnp.float32(1))
  config = PlanConfig(horizon=4, num_diffusion_steps=3, schedule='vp', plan_states=False,
                      clip_denoised=1.0)
  denoise = lambda params, x, k, c, m: jnp.zeros_like(x) + c['bias'][:, None, None]
  out = plan(None, jax.random.PRNGKey(0), jnp.zeros((5, 3)), {'bias': jnp.zeros(5)}, denoise,
             None, normalizer=norm, config=config)
  assert out.actions.shape == (5, 4, 2) and out.action.shape == (5, 2)
  assert bool(jnp.isnan(out.states).all()) and bool(jnp.isnan(out.value).all())
  assert float(jnp.abs(out.actions).max()) <= 2.0 + 1e-5  # x0 clipped to [-1, 1], then unscaled
  with pytest.raises(ValueError, match='plans actions only'):
    plan(None, jax.random.PRNGKey(0), jnp.zeros((5, 3)), {'bias': jnp.zeros(5)}, denoise,
         lambda *a: (0.0, 0.0), normalizer=norm, config=config)
  with pytest.raises(ValueError, match='num_candidates'):
    PlanConfig(horizon=4, plan_states=False, num_candidates=2)


def test_returns_histories_and_windows():
  rewards = jnp.asarray([[1.0, 1.0, 1.0, 5.0]])
  valid = jnp.asarray([[True, True, True, False]])
  np.testing.assert_allclose(md_data.window_returns(rewards, valid, 0.5),
                             [[1.75 / 4, 1.5 / 3, 1.0 / 2, 0.0]])
  norm = nz.Normalizer(obs_lo=jnp.zeros(1), obs_hi=jnp.full(1, 10.0), act_lo=-jnp.ones(1),
                       act_hi=jnp.ones(1), rew_lo=jnp.float32(0), rew_hi=jnp.float32(1))
  obs = jnp.arange(5.0)[:, None] * 2.0  # states 0, 2, 4, 6, 8 -> normalized -1, -0.6, ...
  np.testing.assert_allclose(md_data.state_history(obs, jnp.int32(0), 3, norm)[:, 0],
                             [0.0, 0.0, -1.0])
  np.testing.assert_allclose(md_data.state_history(obs, jnp.int32(3), 2, norm)[:, 0], [-0.2, 0.2],
                             atol=1e-6)


def test_training_windows_stay_in_their_task_and_mask_the_episode_end(test_config,
                                                                      data_workdir):
  from mdx import data as mdata  # pylint: disable=g-import-not-at-top
  from mdx.envs import family_from_config  # pylint: disable=g-import-not-at-top
  family = family_from_config(test_config)
  data = mdata.load_dataset(data_workdir, family, 'train', 'expert')
  # Make task 1's episodes end after 3 steps: its windows' rows past step 2 are not valid.
  data = data.replace(valid=jnp.asarray(data.valid).at[1, :, 3:].set(False))
  scales = md_data.make_scales(data, discount=0.99, target_quantile=0.95)
  assert 0.0 <= float(scales.target) <= 1.0
  returns = md_data.window_returns(jnp.asarray(data.rewards), jnp.asarray(data.valid), 0.99)
  batch = md_data.sample_batch(jax.random.PRNGKey(0), jax.tree.map(jnp.asarray, data), returns,
                               scales, per_task=16, horizon=4, history_len=2, prompt_len=2)
  n = data.num_tasks
  assert batch.actions.shape == (16 * n, 4, family.act_dim)
  task1 = batch.valid[16:32]
  assert not bool(task1[:, 3].any()) and bool(batch.valid[:16, 0].all())
  assert 0.0 <= float(batch.condition.returns.min()) and float(batch.condition.returns.max()) <= 1
  # A prompt of task i is made of task i's normalized steps.
  rows = np.asarray(nz.normalize_traj(scales.norm, jnp.asarray(data.observations),
                                                    jnp.asarray(data.actions)))
  prompt = np.asarray(batch.condition.prompt[16 * 2])  # the first window of task 2
  assert any(np.allclose(prompt[0], r, atol=1e-6) for r in rows[2].reshape(-1, rows.shape[-1]))


def test_policy_carries_the_last_states(test_config, data_workdir):
  from mdx import data as mdata  # pylint: disable=g-import-not-at-top
  from mdx.envs import family_from_config  # pylint: disable=g-import-not-at-top
  from mdx.methods.mtdiff import policy as md_policy  # pylint: disable=g-import-not-at-top
  from mdx.methods.mtdiff import train as md_train  # pylint: disable=g-import-not-at-top
  family = family_from_config(test_config)
  data = mdata.load_dataset(data_workdir, family, 'train', 'expert')
  scales = md_data.make_scales(data, discount=0.99, target_quantile=0.95)
  net = md_train.init_state(test_config, family, jax.random.PRNGKey(0)).ema_params
  policy = md_policy.mtdiff_policy(test_config, family, {'net': net, 'scales': scales})
  warm = mdata.load_dataset(data_workdir, family, 'validation', 'expert')
  tasks = family.validation_tasks()
  state = policy.init(jax.random.PRNGKey(1), tasks, warm)
  m = test_config.mtdiff
  assert state.history.shape == (family.num_validation_tasks, m.history, family.obs_dim)
  obs1 = jnp.ones((tasks.task_id.shape[0], family.obs_dim)) * 0.3
  obs2 = -obs1
  a1, state, info = policy.act(state, obs1, jax.random.PRNGKey(2))
  _, state, _ = policy.act(state, obs2, jax.random.PRNGKey(3))
  np.testing.assert_allclose(state.history[:, -1], nz.normalize_obs(scales.norm, obs2))
  np.testing.assert_allclose(state.history[:, -2], nz.normalize_obs(scales.norm, obs1))
  assert a1.shape == (tasks.task_id.shape[0], family.act_dim)
  assert info['plan_actions'].shape == (tasks.task_id.shape[0], m.plan_horizon, family.act_dim)
  assert float(jnp.abs(a1).max()) <= family.action_high + 1e-5


def test_mtdiff_s_network_has_no_return():
  net = PromptTransformerDenoiser(out_dim=7, max_horizon=4, prompt_len=3, history_len=0,
                                  width=16, num_layers=1, num_heads=2, hidden=32, dropout=0.0,
                                  use_return=False)
  cond = PromptCondition(prompt=jnp.ones((2, 3, 5)), history=jnp.zeros((2, 0, 2)),
                         returns=jnp.zeros((2,)))
  x, k = jnp.ones((2, 4, 7)), jnp.zeros((2,), jnp.int32)
  params = net.init(jax.random.PRNGKey(0), x, k, cond, jnp.ones((2,), bool))
  assert 'return_mlp' not in params['params']
  assert params['params']['position_emb'].shape == (1 + 3 + 0 + 4, 16)
  # The mask (CFG's) is ignored: there is no return to drop.
  np.testing.assert_array_equal(net.apply(params, x, k, cond, jnp.zeros((2,), bool)),
                                net.apply(params, x, k, cond, jnp.ones((2,), bool)))


def _point_robot_windows(family, goals, rng, noise=0.0):
  """Windows of exact Point-Robot transitions (`noise` added to s'), chained s_{t+1} = s'_t."""
  from mdx.data.trajectories import Trajectories  # pylint: disable=g-import-not-at-top
  n, m, h = goals.shape[0], 3, 5
  acts = jax.random.uniform(rng, (n, m, h, 2), minval=-0.1, maxval=0.1)
  start = jnp.zeros((n, m, 2))
  pos = start[:, :, None] + jnp.cumsum(acts, axis=2)  # s'_t
  obs = jnp.concatenate([start[:, :, None], pos[:, :, :-1]], axis=2)
  rew = -jnp.linalg.norm(pos - goals[:, None, None], axis=-1)
  shape = rew.shape
  return Trajectories(observations=obs, actions=acts, rewards=rew,
                      next_observations=pos + noise, terminals=jnp.zeros(shape, bool),
                      timeouts=jnp.zeros(shape, bool).at[..., -1].set(True),
                      valid=jnp.ones(shape, bool), task_params=goals,
                      task_ids=jnp.arange(n, dtype=jnp.int32))


def test_synthetic_transitions_checked_against_the_simulator(test_config):
  from mdx.envs import family_from_config  # pylint: disable=g-import-not-at-top
  from mdx.methods.mtdiff import synthesis  # pylint: disable=g-import-not-at-top
  family = family_from_config(test_config)
  goals = jnp.asarray([[0.5, -0.5], [0.2, 0.9]])
  exact = synthesis.check(family, _point_robot_windows(family, goals, jax.random.PRNGKey(0)))
  assert exact == pytest.approx({'dynamics_error': 0.0, 'reward_error': 0.0,
                                 'consistency_gap': 0.0}, abs=1e-6)
  off = synthesis.check(family, _point_robot_windows(family, goals, jax.random.PRNGKey(0),
                                                     noise=0.1))
  assert off['dynamics_error'] == pytest.approx(0.1, abs=1e-6)
  assert off['consistency_gap'] == pytest.approx(0.1, abs=1e-6)


def test_mtdiff_s_trains_synthesizes_and_writes_a_valid_dataset(test_config, data_workdir,
                                                                tmp_path):
  from mdx import data as mdata  # pylint: disable=g-import-not-at-top
  from mdx.data.trajectories import DatasetError  # pylint: disable=g-import-not-at-top
  from mdx.envs import family_from_config  # pylint: disable=g-import-not-at-top
  from mdx.methods.mtdiff import synthesis  # pylint: disable=g-import-not-at-top
  family = family_from_config(test_config)
  synthesis.train_mtdiff_s(test_config, data_workdir, 0)
  params = synthesis.load_mtdiff_s(test_config, data_workdir, 0, family)
  prompts = mdata.load_dataset(data_workdir, family, 'validation', 'expert')
  rows = synthesis.synthesize(test_config, family, params, jax.random.PRNGKey(0), prompts, 3)
  s = test_config.mtdiff_s
  assert rows.shape == (prompts.num_tasks, 3, s.horizon, synthesis.row_dim(family))
  data = synthesis.to_trajectories(family, params['norm'], rows, prompts)
  path = str(tmp_path / 'synthetic')
  synthesis.save_synthetic(path, family, data, {'family': family.name})
  loaded, _ = mdata.load(path, obs_dim=family.obs_dim, act_dim=family.act_dim,
                         task_dim=family.task_dim, family=family.name)
  np.testing.assert_allclose(loaded.observations, data.observations, rtol=1e-6)
  np.testing.assert_array_equal(loaded.task_ids, prompts.task_ids)
  assert float(jnp.abs(loaded.actions).max()) <= family.action_high + 1e-6
  with pytest.raises(DatasetError, match='already there'):
    synthesis.save_synthetic(path, family, data, {'family': family.name})
