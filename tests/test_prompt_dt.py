"""Prompt-DT: the token layout and causal masking, the prompt and segment windows, and the in-graph
autoregressive rollout against a step-by-step Python loop (the reference's `get_action`)."""
import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mdx import data as mdata
from mdx import methods
from mdx.envs import family_from_config
from mdx.evaluation.rollout import rollout
from mdx.methods.prompt_dt import data as dt_data
from mdx.methods.prompt_dt.model import PromptDT, Steps
from mdx.methods.prompt_dt.policy import prompt_dt_policy
from mdx.nets.transformer import attention_mask

K, KP, S, A = 4, 2, 3, 2


def _steps(rng, k, mask=None):
  r = jax.random.split(rng, 3)
  return Steps(states=jax.random.normal(r[0], (1, k, S)),
               actions=jax.random.uniform(r[1], (1, k, A), minval=-1, maxval=1),
               returns_to_go=jax.random.normal(r[2], (1, k)),
               timesteps=jnp.arange(k, dtype=jnp.int32)[None] + 7,
               mask=jnp.ones((1, k), bool) if mask is None else mask)


@pytest.fixture(scope='module')
def tiny():
  model = PromptDT(obs_dim=S, act_dim=A, embed_dim=16, num_layers=2, num_heads=2, hidden=32,
                   max_episode_length=50)
  prompt, steps = _steps(jax.random.PRNGKey(1), KP), _steps(jax.random.PRNGKey(2), K)
  params = model.init(jax.random.PRNGKey(0), prompt, steps)
  return model, params, prompt, steps


def test_attention_mask_is_causal_and_drops_padded_keys():
  m = np.asarray(attention_mask(jnp.array([[False, True, True]])))[0]
  np.testing.assert_array_equal(m, [[True, False, False], [False, True, False],
                                    [False, True, True]])


def test_an_action_never_sees_its_own_or_later_tokens(tiny):
  model, params, prompt, steps = tiny
  apply = jax.jit(lambda p, s: model.apply(params, p, s))
  base = np.asarray(apply(prompt, steps))
  for t in range(K):
    later = steps.replace(actions=steps.actions.at[:, t:].add(0.7),
                          states=steps.states.at[:, t + 1:].add(0.7),
                          returns_to_go=steps.returns_to_go.at[:, t + 1:].add(0.7))
    out = np.asarray(apply(prompt, later))
    np.testing.assert_allclose(out[:, :t + 1], base[:, :t + 1], atol=1e-6)
    # ... but it does see its own state and return-to-go, and the earlier actions.
    # (at GPT-2's small initial weights a token moves the output by ~1e-4; float noise is 1e-7)
    own = np.asarray(apply(prompt, steps.replace(states=steps.states.at[:, t].add(2.0))))
    assert np.abs(own[:, t] - base[:, t]).max() > 1e-5
  earlier = np.asarray(apply(prompt, steps.replace(actions=steps.actions.at[:, 0].add(2.0))))
  assert np.abs(earlier[:, 1:] - base[:, 1:]).max() > 1e-5
  prompted = np.asarray(apply(prompt.replace(states=prompt.states + 2.0), steps))
  assert np.abs(prompted - base).max() > 1e-5  # every step sees the prompt


def test_padded_steps_change_nothing(tiny):
  model, params, prompt, steps = tiny
  mask = jnp.array([[False, False, True, True]])
  padded = steps.replace(mask=mask)
  junk = padded.replace(states=padded.states.at[:, :2].set(99.0),
                        actions=padded.actions.at[:, :2].set(-10.0),
                        returns_to_go=padded.returns_to_go.at[:, :2].set(5.0))
  a = model.apply(params, prompt, padded)[:, 2:]
  b = model.apply(params, prompt, junk)[:, 2:]
  np.testing.assert_allclose(a, b, atol=1e-6)


def _episode():
  t = 6
  obs = jnp.arange(t * S, dtype=jnp.float32).reshape(t, S)
  act = jnp.tile(jnp.array([[0.5, -0.5]]), (t, 1))
  rewards = jnp.array([1.0, 2.0, 3.0, 4.0, 0.0, 0.0])
  valid = jnp.array([True] * 4 + [False] * 2)
  return obs, act, rewards, valid


def test_windows_prompts_and_returns_to_go():
  obs, act, rewards, valid = _episode()
  rtg = dt_data.returns_to_go(rewards, valid)
  np.testing.assert_array_equal(rtg, [10, 9, 7, 4, 0, 0])
  scales = dt_data.Scales(state_mean=jnp.zeros(S), state_std=jnp.ones(S), action_low=-1.0,
                          action_high=1.0, return_scale=2.0)
  w = dt_data.window(obs, act, rtg, 4, 2, K, scales)  # steps 2, 3 of 4 valid: left-padded
  np.testing.assert_array_equal(w.mask, [False, False, True, True])
  np.testing.assert_array_equal(w.timesteps, [0, 0, 2, 3])
  np.testing.assert_array_equal(w.returns_to_go, [0, 0, 3.5, 2])
  np.testing.assert_array_equal(w.states[2:], obs[2:4])
  np.testing.assert_array_equal(w.actions[:2], dt_data.ACTION_PAD)
  p = dt_data.prompt_window(obs, act, rtg, 4, KP, scales)  # the last 2 steps but the final one
  np.testing.assert_array_equal(p.timesteps, [1, 2])
  np.testing.assert_array_equal(p.mask, [True, True])
  short = dt_data.prompt_window(obs, act, rtg, 1, 3, scales)  # a 1-step episode
  np.testing.assert_array_equal(short.mask, [False, False, True])


def test_in_graph_rollout_matches_a_step_by_step_loop(test_config, data_workdir):
  config = copy.deepcopy(test_config)
  config.prompt_dt.context_len, config.prompt_dt.prompt_len = K, KP
  family = family_from_config(config)
  warm = mdata.load_dataset(data_workdir, family, 'validation', 'expert')
  tasks = family.split_tasks('validation')
  data = mdata.load_dataset(data_workdir, family, 'train', 'expert')
  scales = dt_data.make_scales(data, family, config.prompt_dt.return_scale)
  from mdx.methods.prompt_dt import train as dt_train  # pylint: disable=g-import-not-at-top
  net = dt_train.init_state(config, family, jax.random.PRNGKey(3)).params
  policy = prompt_dt_policy(config, family, {'net': net, 'scales': scales})
  rng = jax.random.PRNGKey(5)
  episodes = jax.jit(lambda r: rollout(family, tasks, policy, r, warm_start=warm))(rng)
  # The same episode, one step at a time in Python, as the reference's evaluation loop: lists of
  # the episode so far, the last K steps left-padded into the network at every step.
  model = PromptDT(obs_dim=family.obs_dim, act_dim=family.act_dim,
                   embed_dim=config.prompt_dt.embed_dim, num_layers=config.prompt_dt.num_layers,
                   num_heads=config.prompt_dt.num_heads, hidden=config.prompt_dt.hidden,
                   max_episode_length=config.prompt_dt.max_episode_length)
  _, init_rng, _ = jax.random.split(rng, 3)
  prompt = policy.init(init_rng, tasks, warm).prompt
  b = tasks.task_id.shape[0]
  env = jax.vmap(family.reset)(tasks, jax.random.split(jax.random.split(rng, 3)[0], b))
  states, actions, rtgs, steps = [], [], [], []
  rtg = np.full(b, config.prompt_dt.target_return / config.prompt_dt.return_scale)
  for t in range(family.episode_length):
    states.append(np.asarray(scales.states(env.obs)))
    actions.append(np.zeros((b, family.act_dim)))
    rtgs.append(rtg.copy())
    steps.append(np.full(b, t))
    n = min(len(states), K)
    pad = K - n
    window = Steps(
        states=jnp.asarray(np.concatenate([np.zeros((b, pad, family.obs_dim)),
                                           np.stack(states[-n:], 1)], 1), jnp.float32),
        actions=jnp.asarray(np.concatenate([np.zeros((b, pad, family.act_dim)),
                                            np.stack(actions[-n:], 1)], 1), jnp.float32),
        returns_to_go=jnp.asarray(np.concatenate([np.zeros((b, pad)), np.stack(rtgs[-n:], 1)],
                                                 1), jnp.float32),
        timesteps=jnp.asarray(np.concatenate([np.zeros((b, pad)), np.stack(steps[-n:], 1)], 1),
                              jnp.int32),
        mask=jnp.asarray(np.arange(K)[None].repeat(b, 0) >= pad))
    a = np.asarray(model.apply(net, prompt, window))[:, -1]
    actions[-1] = a
    np.testing.assert_allclose(np.asarray(episodes.actions[:, t]),
                               np.clip(np.asarray(scales.env_actions(a)), family.action_low,
                                       family.action_high), atol=1e-5, err_msg=f'step {t}')
    nxt = jax.vmap(family.step)(tasks, env, jnp.asarray(scales.env_actions(a)))
    rtg = rtg - np.asarray(jnp.where(env.done, 0.0, nxt.reward)) / scales.return_scale
    env = nxt


def _untrained(config, workdir):
  """`(family, validation warm-start data, validation tasks, scales, an untrained network)`."""
  from mdx.methods.prompt_dt import train as dt_train  # pylint: disable=g-import-not-at-top
  family = family_from_config(config)
  warm = mdata.load_dataset(workdir, family, 'validation', 'expert')
  scales = dt_data.make_scales(mdata.load_dataset(workdir, family, 'train', 'expert'),
                               family, config.prompt_dt.return_scale)
  net = dt_train.init_state(config, family, jax.random.PRNGKey(3)).params
  return family, warm, family.split_tasks('validation'), scales, net


def test_a_traced_target_return_starts_as_the_configured_one(test_config, data_workdir):
  """The sweep's knob (`params['knobs']['target_return']`) replaces the config's target return,
  and only it: the same first return-to-go and the same first action as a config set to it."""
  family, warm, tasks, scales, net = _untrained(test_config, data_workdir)
  set_in_config = copy.deepcopy(test_config)
  set_in_config.prompt_dt.target_return = -7.0
  rng, obs = jax.random.PRNGKey(1), jnp.zeros((tasks.task_id.shape[0], family.obs_dim))
  first = lambda pol: pol.act(pol.init(rng, tasks, warm), obs, rng)[:2]
  a_config, s_config = first(prompt_dt_policy(set_in_config, family,
                                              {'net': net, 'scales': scales}))
  a_knob, s_knob = first(prompt_dt_policy(test_config, family, {
      'net': net, 'scales': scales, 'knobs': {'target_return': jnp.float32(-7.0)}}))
  np.testing.assert_allclose(s_knob.return_to_go, -7.0 / scales.return_scale)
  np.testing.assert_array_equal(s_knob.return_to_go, s_config.return_to_go)
  np.testing.assert_array_equal(a_knob, a_config)
  assert methods.get_method('PromptDT').sweepable == ('target_return',)


def test_fine_tuning_adapts_each_environment_and_zero_steps_is_prompt_dt(test_config,
                                                                         data_workdir):
  """Prompt-DT-FT: with no fine-tuning steps it acts as Prompt-DT, action for action; with some,
  each environment's network fits its own task's warm-start data better than the trained one
  does, and environments of different tasks end with different networks."""
  from mdx.methods.prompt_dt import finetune as dt_ft  # pylint: disable=g-import-not-at-top
  family, warm, tasks, scales, net = _untrained(test_config, data_workdir)
  params = {'net': net, 'scales': scales}
  rng, obs = jax.random.PRNGKey(1), jnp.ones((tasks.task_id.shape[0], family.obs_dim))
  frozen = copy.deepcopy(test_config)
  frozen.prompt_dt.finetune_steps = 0
  dt, ft0 = prompt_dt_policy(test_config, family, params), dt_ft.prompt_dt_ft_policy(
      frozen, family, params)
  a_dt, s_dt, _ = dt.act(dt.init(rng, tasks, warm), obs, rng)
  a_ft, s_ft, _ = ft0.act(ft0.init(rng, tasks, warm), obs, rng)
  np.testing.assert_allclose(a_ft, a_dt, atol=1e-6)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, atol=1e-6), s_ft.dt, s_dt)

  tuned = copy.deepcopy(test_config)
  tuned.prompt_dt.finetune_steps, tuned.prompt_dt.finetune_batch = 30, 8
  tuned.prompt_dt.finetune_learning_rate = 3e-3
  state = dt_ft.prompt_dt_ft_policy(tuned, family, params).init(rng, tasks, warm)
  arrays = dt_data.episode_arrays(warm)
  model = dt_ft.build_model(tuned, family)

  def fit(p, i):  # the action MSE on task i's warm-start data, fixed segments, no dropout
    one = jax.tree.map(lambda x: x[i:i + 1], arrays)
    prompts, segments = dt_data.sample_batch(jax.random.PRNGKey(9), one, one, 64,
                                             tuned.prompt_dt.context_len,
                                             tuned.prompt_dt.prompt_len, scales)
    err = jnp.square(model.apply(p, prompts, segments) - segments.actions).mean(-1)
    return float(jnp.sum(jnp.where(segments.mask, err, 0.0)) / segments.mask.sum())

  for i in range(3):
    own = jax.tree.map(lambda x: x[i], state.net)
    assert fit(own, i) < 0.8 * fit(net, i), i
  first, second = (jax.tree.leaves(jax.tree.map(lambda x: x[i], state.net))[0] for i in (0, 1))
  assert float(jnp.abs(first - second).max()) > 1e-4
  assert methods.get_method('PromptDT-FT').stages == methods.get_method('PromptDT').stages


def test_prompts_from_another_tier_are_that_tiers_and_other_tasks_get_none(test_config,
                                                                            data_workdir):
  """`prompt_dt.prompt_tier` (paper 004's Table 2 grid): evaluated on expert data with the
  random tier's prompts, Prompt-DT starts from the prompts it takes when the random tier itself
  is evaluated (same key), on validation and test tasks alike, and not from the expert ones; a
  training task, outside the splits read, gets a NaN prompt rather than another task's."""
  from mdx.methods import prompt_dt  # pylint: disable=g-import-not-at-top
  family, _, _, scales, net = _untrained(test_config, data_workdir)
  grid = copy.deepcopy(test_config)
  grid.prompt_dt.prompt_tier = 'random'
  plain = prompt_dt_policy(test_config, family, {'net': net, 'scales': scales})
  crossed = prompt_dt_policy(grid, family, prompt_dt.with_prompt_tier(
      grid, data_workdir, family, {'net': net, 'scales': scales}))
  rng = jax.random.PRNGKey(4)
  for split in ('validation', 'test'):
    tasks = family.split_tasks(split)
    expert, random = (mdata.load_dataset(data_workdir, family, split, t)
                      for t in ('expert', 'random'))
    got = crossed.init(rng, tasks, expert).prompt
    jax.tree.map(np.testing.assert_array_equal, got, plain.init(rng, tasks, random).prompt)
    assert not np.allclose(got.states, plain.init(rng, tasks, expert).prompt.states), split
  train = family.split_tasks('train')
  train_warm = mdata.load_dataset(data_workdir, family, 'train', 'expert')
  assert np.all(np.isnan(crossed.init(rng, train, train_warm).prompt.states))
  assert prompt_dt.with_prompt_tier(test_config, data_workdir, family, {}) == {}
