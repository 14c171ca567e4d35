"""The offline actor-critic learners on problems with known answers."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mdx import rl
from mdx.rl import brac, networks, sac


def test_tanh_gaussian_log_prob_is_the_change_of_variables():
  mean, log_std = jnp.array([[0.3, -1.0]]), jnp.array([[-0.5, 0.2]])
  a, logp, u = networks.sample_tanh_gaussian(mean, log_std, jax.random.PRNGKey(0))
  std = np.exp(log_std)
  gauss = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
  want = np.sum(gauss - np.log(1 - np.tanh(u) ** 2), -1)
  np.testing.assert_allclose(logp, want, rtol=1e-5)
  np.testing.assert_allclose(a, np.tanh(u), rtol=1e-6)


def test_kl_dual_estimate_equals_kl_at_the_optimal_critic():
  # p = N(0, 1), b = N(0.5, 1): KL(p || b) = 0.125; the supremum is at softplus(c) = p / b.
  mu = 0.5
  a_p, a_b = (jax.random.normal(jax.random.PRNGKey(k), (200_000,)) + m for k, m in ((1, 0), (2, mu)))
  ratio = lambda a: jnp.exp((mu ** 2 - 2 * a * mu) / 2)  # p(a) / b(a)
  logit = lambda a: jnp.log(jnp.expm1(ratio(a)))  # softplus^-1
  est = jnp.mean(brac.kl_dual_estimate(logit(a_p), logit(a_b)))
  assert abs(float(est) - 0.125) < 0.01
  worse = jnp.mean(brac.kl_dual_estimate(logit(a_p) + 0.5, logit(a_b) + 0.5))
  assert float(worse) < float(est)  # any other critic gives a lower bound


def _bandit(rng, n, act_fn):
  a = act_fn(rng, n)
  return rl.Batch(obs=jnp.zeros((n, 1)), act=a[:, None], rew=-jnp.square(a - 0.5),
                  next_obs=jnp.zeros((n, 1)), done=jnp.ones((n,)))


def _train(update, state, sample, calls, num_updates, seed=0):
  step = rl.make_train_step(update, sample, num_updates)
  rng = jax.random.PRNGKey(seed)
  for i in range(calls):
    state, metrics = step(state, jax.random.fold_in(rng, i))
  assert int(state.step) == calls
  return state, jax.device_get(metrics)


def test_sac_on_a_one_step_bandit_fits_the_reward_and_finds_its_maximum():
  config = rl.SACConfig(hidden=(32, 32), alpha=0.01, learning_rate=3e-3)
  uniform = lambda r, n: jax.random.uniform(r, (n,), minval=-1, maxval=1)
  state = rl.init_sac(jax.random.PRNGKey(0), 1, 1, config)
  state, _ = _train(lambda s, b, r: rl.sac_update(s, b, r, config), state,
                    lambda r: _bandit(r, 128, uniform), calls=4, num_updates=500)
  grid = jnp.linspace(-0.9, 0.9, 7)[:, None]
  q = rl.TwinQ(config.hidden).apply(state.critic.params, jnp.zeros((7, 1)), grid)
  np.testing.assert_allclose(q, np.broadcast_to(-(grid[:, 0] - 0.5) ** 2, (2, 7)), atol=0.03)
  action = rl.policy_mode(state.actor.params, jnp.zeros((1, 1)), 1, config.hidden)
  assert abs(float(action[0, 0]) - 0.5) < 0.05


def test_sac_on_a_two_state_chain_learns_the_optimal_values():
  # States s in {0, 1} (one-hot), s' = 1 - s, r = s - a^2, never terminal: with alpha = 0,
  # V*(1) = 1 / (1 - g^2), V*(0) = g / (1 - g^2), Q*(s, a) = s - a^2 + g V*(1 - s).
  g = 0.8
  config = rl.SACConfig(hidden=(32, 32), alpha=0.0, learning_rate=3e-3, discount=g, tau=0.05)

  def sample(rng):
    s_rng, a_rng = jax.random.split(rng)
    s = jax.random.bernoulli(s_rng, 0.5, (128,)).astype(jnp.float32)
    a = jax.random.uniform(a_rng, (128,), minval=-1, maxval=1)
    one_hot = lambda x: jnp.stack([1 - x, x], -1)
    return rl.Batch(obs=one_hot(s), act=a[:, None], rew=s - a ** 2, next_obs=one_hot(1 - s),
                    done=jnp.zeros((128,)))
  state = rl.init_sac(jax.random.PRNGKey(1), 2, 1, config)
  state, _ = _train(lambda s, b, r: rl.sac_update(s, b, r, config), state, sample, calls=6,
                    num_updates=500)
  v1, v0 = 1 / (1 - g ** 2), g / (1 - g ** 2)
  obs = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
  act = jnp.array([[0.0], [0.0], [0.5]])
  q = rl.TwinQ(config.hidden).apply(state.critic.params, obs, act).mean(0)
  np.testing.assert_allclose(q, [g * v1, 1 + g * v0, 1 - 0.25 + g * v0], atol=0.1)
  assert np.all(np.abs(rl.policy_mode(state.actor.params, obs[:2], 1, config.hidden)) < 0.1)


def test_brac_penalty_weight_follows_the_divergence_and_is_clipped():
  config = rl.BRACConfig(hidden=(8,), alpha_init=1.0, alpha_lr=0.5, alpha_max=1.2,
                         target_divergence=10.0, c_iter=2)
  state = rl.init_brac(jax.random.PRNGKey(0), 1, 1, config)
  batches = jax.tree.map(lambda *x: jnp.stack(x), *[_bandit(jax.random.PRNGKey(k), 16, lambda r, n:
                         jax.random.uniform(r, (n,), minval=-1, maxval=1)) for k in range(2)])
  new, metrics = jax.jit(lambda s, b, r: rl.brac_update(s, b, r, config))(
      state, batches, jax.random.PRNGKey(3))
  np.testing.assert_allclose(new.alpha, 1.0 + 0.5 * (metrics['divergence'] - 10.0), rtol=1e-6)
  assert float(brac.penalty_weight(new.replace(alpha=jnp.asarray(5.0)), config)) == pytest.approx(1.2)
  assert float(brac.penalty_weight(new.replace(alpha=jnp.asarray(-5.0)), config)) == 0.0
  assert int(new.c.step) == 2 and int(new.q.step) == 1  # c_iter dual-critic steps per update


def test_brac_value_penalty_lowers_the_q_target_by_gamma_alpha_divergence():
  # A non-terminal batch: with the value penalty the target drops by gamma * alpha * D (the
  # reference's `use_value_penalty`), without it the target is the plain soft Bellman target.
  batches = jax.tree.map(lambda *x: jnp.stack(x), *[_bandit(jax.random.PRNGKey(k), 16, lambda r, n:
                         jax.random.uniform(r, (n,), minval=-1, maxval=1)) for k in range(2)])
  batches = batches.replace(done=jnp.zeros_like(batches.done))
  out = {}
  for penalty in (False, True):
    config = rl.BRACConfig(hidden=(8,), alpha_init=3.0, value_penalty=penalty, c_iter=2)
    state = rl.init_brac(jax.random.PRNGKey(0), 1, 1, config)
    out[penalty] = rl.brac_update(state, batches, jax.random.PRNGKey(3), config)[1]
  np.testing.assert_allclose(out[True]['divergence'], out[False]['divergence'])
  np.testing.assert_allclose(out[True]['target'] - out[False]['target'],
                             -0.99 * 3.0 * out[False]['divergence'], rtol=1e-4, atol=1e-6)


def test_brac_keeps_the_policy_near_the_data():
  # Data actions ~ N(-0.5, 0.1^2), reward peaked at +0.5: the penalized policy stays near -0.5
  # and its critic fits the reward where the data are.
  config = rl.BRACConfig(hidden=(32, 32), reward_scale=1.0, learning_rate=3e-3,
                         c_learning_rate=1e-3, alpha_init=20.0, alpha_lr=0.0, c_iter=2)
  data = lambda r, n: jnp.clip(-0.5 + 0.1 * jax.random.normal(r, (n,)), -0.99, 0.99)

  def sample(rng):
    return jax.tree.map(lambda *x: jnp.stack(x), *[_bandit(k, 128, data) for k in
                                                   jax.random.split(rng, config.c_iter)])
  state = rl.init_brac(jax.random.PRNGKey(2), 1, 1, config)
  state, metrics = _train(lambda s, b, r: rl.brac_update(s, b, r, config), state, sample,
                          calls=4, num_updates=500)
  action = float(rl.policy_mode(state.actor.params, jnp.zeros((1, 1)), 1, config.hidden)[0, 0])
  assert abs(action + 0.5) < 0.15, action
  q = rl.TwinQ(config.hidden).apply(state.q.params, jnp.zeros((1, 1)), jnp.array([[-0.5]]))
  np.testing.assert_allclose(q, -1.0, atol=0.05)
  assert np.isfinite(metrics['divergence'])


def test_make_train_step_checks_its_update_count():
  with pytest.raises(ValueError, match='num_updates must be >= 1'):
    rl.make_train_step(lambda s, b, r: (s, {}), lambda r: None, 0)


def test_focal_distance_metric_loss_by_hand():
  from mdx.methods.focal.losses import distance_metric_loss  # pylint: disable=g-import-not-at-top
  z = jnp.array([[0.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
  # pairs: (0, 1) same task, d = 1; (0, 2) different, d = 2; (1, 2) different, d = 1.
  got = distance_metric_loss(z, jnp.array([4, 4, 7]))
  want = np.sqrt(1 + 1e-3) / (1 + 1e-3) + (1 / 2.1 + 1 / 1.1) / (2 + 1e-3)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  # Without a repeated task the loss is repulsion only (why FOCAL samples with replacement).
  only_neg = distance_metric_loss(z, jnp.array([0, 1, 2]))
  np.testing.assert_allclose(only_neg, (1 / 1.1 + 1 / 2.1 + 1 / 1.1) / (3 + 1e-3), rtol=1e-6)


def test_corro_info_nce_by_hand():
  from mdx.methods.corro.losses import info_nce  # pylint: disable=g-import-not-at-top
  q = jnp.array([[1.0, 0.0]])
  k = jnp.array([[0.6, 0.8]])
  negs = jnp.array([[[0.0, 1.0], [-1.0, 0.0]]])
  logits = np.array([0.6, 0.0, -1.0]) / 0.1
  want = np.log(np.exp(logits).sum()) - logits[0]
  np.testing.assert_allclose(info_nce(q, k, negs, 0.1), want, atol=1e-6)


def test_sample_transitions_draws_valid_steps_of_the_given_tasks(test_config, data_workdir):
  from mdx import data as mdata  # pylint: disable=g-import-not-at-top
  from mdx.envs import family_from_config  # pylint: disable=g-import-not-at-top
  data = mdata.load_dataset(data_workdir, family_from_config(test_config), 'train', 'expert')
  n, e, t = data.rewards.shape
  code = 100.0 * np.arange(n)[:, None, None] + np.arange(t)[None, None, :]  # task * 100 + step
  valid = np.broadcast_to(np.arange(t) < 5, (n, e, t))
  data = data.replace(rewards=jnp.asarray(np.broadcast_to(code, (n, e, t)), jnp.float32),
                      valid=jnp.asarray(valid))
  tasks = jnp.array([3, 0, 3])
  got = mdata.sample_transitions(jax.random.PRNGKey(0), data, tasks, 200)
  r = np.asarray(got.rewards)
  assert r.shape == (3, 200) and got.states.shape == (3, 200, data.observations.shape[-1])
  np.testing.assert_array_equal(r // 100, np.broadcast_to(np.asarray(tasks)[:, None], (3, 200)))
  assert set(np.unique(r % 100).tolist()) == {0, 1, 2, 3, 4}  # every valid step, no padding


def test_nth_valid_step_walks_the_valid_prefixes_in_episode_order():
  from mdx.data import sampler  # pylint: disable=g-import-not-at-top
  n_valid = jnp.array([3, 1, 0, 2])  # episode 2 has none (a block outside the context's)
  e, t = sampler._nth_valid_step(n_valid, jnp.arange(6))  # pylint: disable=protected-access
  np.testing.assert_array_equal(e, [0, 0, 0, 1, 3, 3])
  np.testing.assert_array_equal(t, [0, 1, 2, 0, 0, 1])


def test_focal_policy_embeds_only_the_valid_warm_start_transitions(test_config, data_workdir):
  from mdx import data as mdata  # pylint: disable=g-import-not-at-top
  from mdx.envs import family_from_config  # pylint: disable=g-import-not-at-top
  from mdx.methods.focal import model, policy, train  # pylint: disable=g-import-not-at-top
  family = family_from_config(test_config)
  warm = jax.device_put(mdata.load_dataset(data_workdir, family, 'validation', 'expert'))
  state = train.init_state(test_config, family, jax.random.PRNGKey(0))
  params = {'encoder': state.encoder.params, 'actor': state.brac.actor.params}
  pol = policy.focal_policy(test_config, family, params)
  tasks = family.split_tasks('validation')
  cut = warm.replace(valid=warm.valid.at[:, :, 7:].set(False))
  padded = cut.replace(observations=cut.observations.at[:, :, 7:].set(99.0))  # padding differs
  z_cut, z_pad = (pol.init(jax.random.PRNGKey(1), tasks, w) for w in (cut, padded))
  np.testing.assert_allclose(z_cut, z_pad)
  rows = model.context_rows(test_config, warm.observations[0, :, :7],
                            warm.actions[0, :, :7] / family.action_high, warm.rewards[0, :, :7],
                            warm.next_observations[0, :, :7]).reshape(-1, model.row_dim(
                                test_config, family))
  want = model.build_encoder(test_config).apply(params['encoder'], rows)
  np.testing.assert_allclose(z_cut[0], want, rtol=1e-5, atol=1e-6)
  action, _, _ = pol.act(z_cut, warm.observations[:, 0, 0], jax.random.PRNGKey(2))
  assert action.shape == (tasks.task_id.shape[0], family.act_dim)
  assert bool(jnp.all(jnp.abs(action) <= family.action_high))


def test_corro_negatives_share_the_query_state_and_action_and_z_is_a_unit_vector(test_config):
  from mdx import data as mdata  # pylint: disable=g-import-not-at-top
  from mdx.envs import family_from_config  # pylint: disable=g-import-not-at-top
  from mdx.methods.corro import model, train  # pylint: disable=g-import-not-at-top
  family = family_from_config(test_config)
  o, a = family.obs_dim, family.act_dim
  cvae = model.build_cvae(test_config, family)
  params = train.init_cvae(test_config, family, jax.random.PRNGKey(0)).net.params
  k = jax.random.split(jax.random.PRNGKey(1), 4)
  t = mdata.Transitions(states=jax.random.normal(k[0], (5, o)), actions=jax.random.normal(k[1], (5, a)),
                        rewards=jnp.zeros((5,)), next_states=jax.random.normal(k[2], (5, o)),
                        terminals=jnp.zeros((5,)))
  negs = train.negatives(cvae, params, t, 3, test_config.corro.cvae_latent_dim, k[3])
  assert negs.shape == (5, 3, 2 * o + a + 1)
  np.testing.assert_array_equal(negs[..., :o], np.broadcast_to(t.states[:, None], (5, 3, o)))
  np.testing.assert_array_equal(negs[..., o:o + a], np.broadcast_to(t.actions[:, None], (5, 3, a)))
  assert float(jnp.std(negs[:, :, -o:], axis=1).min()) > 0  # (s', r) differ between negatives
  enc = model.build_encoder(test_config)
  z = enc.apply(enc.init(jax.random.PRNGKey(2), negs), negs)
  np.testing.assert_allclose(jnp.linalg.norm(z, axis=-1), 1.0, rtol=1e-5)


def test_corro_reward_randomize_negatives_change_only_the_reward():
  from mdx import data as mdata  # pylint: disable=g-import-not-at-top
  from mdx.methods.corro import train  # pylint: disable=g-import-not-at-top
  k = jax.random.split(jax.random.PRNGKey(1), 5)
  o, a = 3, 2
  t = mdata.Transitions(states=jax.random.normal(k[0], (4, o)), actions=jax.random.normal(k[1], (4, a)),
                        rewards=jax.random.normal(k[2], (4,)), next_states=jax.random.normal(k[3], (4, o)),
                        terminals=jnp.zeros((4,)))
  negs = train.reward_negatives(t, 6, 0.5, k[4])
  assert negs.shape == (4, 6, 2 * o + a + 1)
  rep = lambda x: np.broadcast_to(np.asarray(x)[:, None], (4, 6) + x.shape[1:])
  np.testing.assert_array_equal(negs[..., :o], rep(t.states))
  np.testing.assert_array_equal(negs[..., o:o + a], rep(t.actions))
  np.testing.assert_array_equal(negs[..., -o:], rep(t.next_states))
  np.testing.assert_allclose(negs[..., o + a], rep(t.rewards) + 0.5 * jax.random.normal(k[4], (4, 6)),
                             rtol=1e-6)


def test_corro_aggregator_ignores_padded_transitions():
  from mdx.methods.corro import model  # pylint: disable=g-import-not-at-top
  agg = model.AttentionAggregator()
  z = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 3))
  mask = jnp.array([[True] * 4 + [False] * 2, [True] * 6])
  params = agg.init(jax.random.PRNGKey(1), z, mask)
  changed = z.at[0, 4:].set(50.0)
  np.testing.assert_allclose(agg.apply(params, z, mask), agg.apply(params, changed, mask))
  one = agg.apply(params, z[:1, :1], jnp.ones((1, 1), bool))
  np.testing.assert_allclose(one, z[:1, 0], rtol=1e-6)  # a single transition is its own z


def test_cql_term_is_the_logsumexp_gap_by_hand():
  config = rl.SACConfig(hidden=(4,), cql_weight=2.0)
  state = rl.init_sac(jax.random.PRNGKey(0), 1, 1, config)
  obs, act, target = jnp.zeros((3, 1)), jnp.array([[0.1], [0.2], [0.3]]), jnp.zeros((3,))
  actions = jnp.array([[[-0.5], [0.5]]] * 3)
  log_density = jnp.array([[-0.7, 0.4]] * 3)
  q_net = rl.TwinQ(config.hidden)
  plain, q = sac.critic_loss(state.critic.params, obs, act, target, config)
  with_cql, _ = sac.critic_loss(state.critic.params, obs, act, target, config,
                                (actions, log_density))
  qs = np.stack([q_net.apply(state.critic.params, obs, actions[:, i]) for i in range(2)], -1)
  lse = np.log(np.exp(qs - np.asarray(log_density)[None]).sum(-1))  # [2, 3]
  np.testing.assert_allclose(with_cql - plain, 2.0 * (lse - np.asarray(q)).mean(1).sum(),
                             rtol=1e-5)


def test_cql_keeps_offline_q_values_below_the_data_maximum():
  # Data actions ~ N(-0.5, 0.1^2) with reward peaked at +0.5, s' = s, never terminal: plain
  # offline SAC's actor follows the critic's extrapolation off the data (Q near 0, the value of
  # a = 0.5 that no datum shows); CQL's Q at the policy's action stays below the best value the
  # data support (about r(-0.3) / (1 - gamma) = -6.4; the data's mean is -10).
  data = lambda r, n: jnp.clip(-0.5 + 0.1 * jax.random.normal(r, (n,)), -0.99, 0.99)

  def sample(rng):
    a = data(rng, 128)
    return rl.Batch(obs=jnp.zeros((128, 1)), act=a[:, None], rew=-jnp.square(a - 0.5),
                    next_obs=jnp.zeros((128, 1)), done=jnp.zeros((128,)))
  q_at_policy = {}
  for weight in (0.0, 5.0):
    config = rl.SACConfig(hidden=(32, 32), alpha=0.0, learning_rate=3e-3, discount=0.9, tau=0.05,
                          cql_weight=weight)
    state = rl.init_sac(jax.random.PRNGKey(3), 1, 1, config)
    state, _ = _train(lambda s, b, r, c=config: rl.sac_update(s, b, r, c), state, sample,
                      calls=3, num_updates=500)
    a = rl.policy_mode(state.actor.params, jnp.zeros((1, 1)), 1, config.hidden)
    q_at_policy[weight] = float(rl.TwinQ(config.hidden).apply(state.critic.params,
                                                               jnp.zeros((1, 1)), a).min())
  assert q_at_policy[5.0] < -6.0 < q_at_policy[0.0], q_at_policy


def test_corro_diagnose_probe_metrics_on_known_embeddings():
  from mdx.methods.corro import diagnose  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  params = rng.uniform(-1, 1, (6, 2))  # 6 tasks, 2 parameters
  # z a linear function of the task plus a little noise: every episode finds its task, R^2 ~ 1.
  w = rng.normal(size=(2, 4))
  z = (params @ w)[:, None] + 1e-3 * rng.normal(size=(6, 3, 4))
  assert diagnose.nearest_task_accuracy(z) == 1.0
  flat = lambda x: x.reshape(-1, x.shape[-1])
  r2 = diagnose.ridge_r2(flat(z), np.repeat(params, 3, 0), flat(z), np.repeat(params, 3, 0))
  np.testing.assert_allclose(r2, 1.0, atol=1e-4)
  # Known spread: task centroids at +-1 on every axis (std 1), episodes +-0.1 about them (std 0.1).
  signs = np.array([1.0, -1.0])[:, None, None]
  s = diagnose.spread(signs + np.array([0.1, -0.1])[None, :, None] * np.ones((2, 2, 3)))
  assert s == pytest.approx(dict(between_task_std=1.0, within_task_std=0.1))
  # One z for every task: the nearest centroid is the first task's (ties), so 1 / M; R^2 <= 0.
  same = np.zeros((6, 3, 4))
  assert diagnose.nearest_task_accuracy(same) == pytest.approx(1 / 6)
  r2 = diagnose.ridge_r2(flat(same), np.repeat(params, 3, 0), flat(same), np.repeat(params, 3, 0))
  assert np.all(r2 <= 1e-9)
  with pytest.raises(ValueError, match='at least 2 episodes'):
    diagnose.nearest_task_accuracy(z[:, :1])


def test_corro_diagnose_knn_r2_separates_placing_from_naming():
  from mdx.methods.corro import diagnose  # pylint: disable=g-import-not-at-top
  # Tasks on a line, z on 0.9 of a circle: curved (the linear fit misses: R^2 0.86) but placing
  # (nearby z, nearby task): k = 1 from the fit's own points finds each point itself.
  p_fit = np.linspace(0.0, 1.0, 11)[:, None]
  circle = lambda p: np.concatenate([np.cos(1.8 * np.pi * p), np.sin(1.8 * np.pi * p)], 1)
  p_eval = p_fit[1:-1]
  assert diagnose.ridge_r2(circle(p_fit), p_fit, circle(p_eval), p_eval)[0] < 0.9
  np.testing.assert_allclose(diagnose.knn_r2(circle(p_fit), p_fit, circle(p_eval), p_eval, k=1),
                             1.0)
  # Hand-computed k = 2: eval point at 0.45 -> neighbours 0.4 and 0.5 -> 0.45, error 0; at 0.05
  # -> 0.0 and 0.1 -> 0.05. Both exact: R^2 = 1.
  q = np.array([[0.45], [0.05]])
  np.testing.assert_allclose(diagnose.knn_r2(circle(p_fit), p_fit, circle(q), q, k=2), 1.0,
                             atol=1e-12)
  # Codes that name tasks without placing them (random z per task): R^2 far below 1.
  rng = np.random.default_rng(0)
  codes = rng.normal(size=(11, 2))
  held = rng.normal(size=(9, 2))  # unseen tasks' codes, unrelated to their parameters
  np.testing.assert_allclose(diagnose.knn_r2(codes, p_fit, held, p_eval, k=1), -2 / 15)
  with pytest.raises(ValueError, match='k: expected'):
    diagnose.knn_r2(codes, p_fit, held, p_eval, k=12)
