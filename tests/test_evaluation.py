"""The `Policy` contract under `rollout`: a toy policy with carried state, plans replayed open-loop
(the paper's Figure 3) with hand-made planners whose plans are exactly right or off by a known
amount, the registry, the bootstrap intervals and the table."""
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mdx import methods, progress
from mdx.envs import make_family
from mdx.evaluation import Policy, plots, stats
from mdx.evaluation.evaluate import format_table, make_records
from mdx.evaluation.rollout import plan_discrepancy, replay_mask, replay_plan, rollout

H = 4


def straight_planner(offset: float):
  """Plans H steps of a = (0.05, -0.2) (clipped to -0.1 by the env); the planned states follow
  the true dynamics, shifted by `offset` after the current state."""
  def act(params, state, obs, rng):
    del params, rng
    b = obs.shape[0]
    actions = jnp.broadcast_to(jnp.array([0.05, -0.2]), (b, H, 2))
    steps = jnp.cumsum(jnp.clip(actions, -0.1, 0.1), axis=1)[:, :-1]
    states = jnp.concatenate([obs[:, None], obs[:, None] + steps + offset], axis=1)
    return actions[:, 0], state, {'plan_states': states, 'plan_actions': actions}
  return Policy(params=None, init_fn=lambda p, rng, tasks, warm: jnp.zeros(()), act_fn=act)


@pytest.fixture(scope='module')
def family():
  return make_family('point_robot')


def test_replay_plan_executes_the_actions_open_loop(family):
  task = jax.tree.map(lambda x: x[0], family.test_tasks())
  state = family.reset(task, jax.random.PRNGKey(0))
  actions = jnp.array([[0.05, 0.3], [-0.02, 0.0], [0.1, -0.1], [9.0, 9.0]])
  reached = replay_plan(family, task, state, actions)
  expected = np.cumsum(np.array([[0, 0], [0.05, 0.1], [-0.02, 0.0], [0.1, -0.1]]), axis=0)
  np.testing.assert_allclose(reached, expected, atol=1e-6)  # the last action is never executed


@pytest.mark.parametrize('offset', [0.0, 0.25])
def test_rollout_replays_every_plan(family, offset):
  tasks = family.test_tasks()
  run = jax.jit(lambda r: rollout(family, tasks, straight_planner(offset), r, replay_plans=True))
  ep = run(jax.random.PRNGKey(0))
  t = family.episode_length
  assert ep.reached.shape == ep.plans.shape == (10, t, H, 2)
  np.testing.assert_allclose(ep.reached[:, :, 0], ep.observations[:, :-1], atol=1e-6)
  # Plans made in the last H - 1 steps run past the episode's end, where the state is frozen.
  mask = replay_mask(np.asarray(ep.alive), H)
  assert mask[:, :t - H + 2].all() and not mask[:, t - H + 2:, H - 1].any()
  shift = np.where(np.arange(H) > 0, offset, 0.0)[:, None]
  gap = np.abs(np.asarray(ep.reached) - (np.asarray(ep.plans) - shift)).max(-1)
  assert gap[mask].max() < 1e-5
  np.testing.assert_allclose(plan_discrepancy(ep), [0.0] + [offset] * (H - 1), atol=1e-5)
  assert bool(ep.alive[:, :-1].all())
  # Without replay the episode is the same and nothing is replayed.
  plain = jax.jit(lambda r: rollout(family, tasks, straight_planner(offset), r))(
      jax.random.PRNGKey(0))
  assert plain.reached is None
  np.testing.assert_array_equal(plain.observations, ep.observations)


def memory_policy():
  """A toy policy with carried state: it steps along the previous step's displacement (the first
  step goes `params` x (0.1, 0.05)) and counts its calls."""
  def init(params, rng, tasks, warm):
    b = tasks.task_id.shape[0]
    return {'prev': jnp.zeros((b, 2)), 'count': jnp.zeros((b,), jnp.int32),
            'first': jnp.ones((b,), bool)}

  def act(params, state, obs, rng):
    move = jnp.where(state['first'][:, None], params * jnp.array([0.1, 0.05]),
                     obs - state['prev'])
    new = {'prev': obs, 'count': state['count'] + 1, 'first': jnp.zeros_like(state['first'])}
    return move, new, {'count': new['count']}
  return Policy(params=jnp.asarray(1.0), init_fn=init, act_fn=act)


def test_policy_with_carried_state_under_rollout(family):
  tasks = jax.tree.map(lambda x: x[:3], family.test_tasks())
  ep = jax.jit(lambda p, r: rollout(family, tasks, p, r))(memory_policy(), jax.random.PRNGKey(0))
  t = family.episode_length
  # It repeats its first displacement: s_t = t (0.1, 0.05), and the state counted every call.
  expected = np.arange(t + 1)[:, None] * np.array([0.1, 0.05])
  np.testing.assert_allclose(ep.observations, np.broadcast_to(expected, (3, t + 1, 2)), atol=1e-5)
  np.testing.assert_array_equal(ep.info['count'], np.broadcast_to(np.arange(1, t + 1), (3, t)))
  goals = np.asarray(tasks.params)[:, None]
  np.testing.assert_allclose(ep.returns, -np.linalg.norm(expected[None, 1:] - goals, axis=-1).sum(
      -1), rtol=1e-5)
  # params are a pytree: vmapping over two stacked policies runs both in one program.
  stacked = memory_policy().replace(params=jnp.array([1.0, 0.5]))
  both = jax.jit(jax.vmap(lambda p, r: rollout(family, tasks, p, r).observations,
                          in_axes=(0, None)))(stacked, jax.random.PRNGKey(0))
  np.testing.assert_allclose(both[1], 0.5 * both[0], atol=1e-5)


def test_registry_names_every_method_and_explains_unknown_ones():
  assert {'MetaDiffuser', 'UDiffuser', 'PromptDT', 'FOCAL', 'CORRO', 'Ours+CORRO', 'Oracle',
          'Random'} <= set(methods.REGISTRY)
  assert methods.get_method('MetaDiffuser').uses_warm_start
  assert [s.name for s in methods.get_method('MetaDiffuser').stages] == ['context', 'diffusion']
  assert not methods.get_method('Oracle').stages
  assert [s.name for s in methods.get_method('Ours+CORRO').stages] == [
      'corro_cvae', 'corro_encoder', 'corro_context', 'corro_diffusion']
  with pytest.raises(ValueError, match=r"unknown method 'MTDiff'; registered: \["):
    methods.get_method('MTDiff')


def test_oracle_and_random_policies_score_as_their_behaviour_policies(family):
  tasks = family.test_tasks()
  oracle = methods.get_method('Oracle').make_policy(None, None, None, family)
  ep = jax.jit(lambda r: rollout(family, tasks, oracle, r))(jax.random.PRNGKey(0))
  # The optimal controller's return by hand: it closes 0.1 per axis per step.
  goals = np.asarray(tasks.params)
  pos, total = np.zeros_like(goals), np.zeros(len(goals))
  for _ in range(family.episode_length):
    pos = pos + np.clip(goals - pos, -0.1, 0.1)
    total -= np.linalg.norm(pos - goals, axis=-1)
  np.testing.assert_allclose(ep.returns, total, rtol=1e-5)


def test_bootstrap_interval_by_hand():
  # Two cells, 0 and 1: a resample's mean is k/2 with k ~ Binomial(2, 1/2).
  reps = stats.bootstrap_means(np.array([[0.0, 1.0]]), num_resamples=20000)
  np.testing.assert_allclose([np.mean(reps == 0), np.mean(reps == 0.5)], [0.25, 0.5], atol=0.01)
  assert stats.interval(np.array([[0.0, 1.0]])) == (0.0, 1.0)
  assert stats.interval(np.full((3, 4), 2.5)) == (2.5, 2.5)
  # Training seeds resampled first: seeds of constant returns 0 and 1 give the same law.
  reps = stats.bootstrap_means(np.array([[0.0] * 5, [1.0] * 5]), num_resamples=20000)
  np.testing.assert_allclose(np.mean(reps == 0.5), 0.5, atol=0.01)


def test_records_and_table(family):
  per = {('Oracle', 'n/a', '{}'): np.full((1, 2, 10, 1), -2.0),
         ('Random', 'n/a', '{}'): np.full((1, 2, 10, 1), -12.0),
         ('M', 'expert', '{}'): np.concatenate([np.full((3, 2, 5, 1), -4.0),
                                                np.full((3, 2, 5, 1), -6.0)], axis=2),
         ('M', 'expert', '{"dynamics_weight": 2.0}'): np.full((3, 2, 10, 1), -7.0)}
  records = make_records(family, 'test', per, oracle='Oracle', random='Random',
                         trained={'Oracle': False, 'Random': False, 'M': True})
  m = [r for r in records if r['method'] == 'M'][0]
  assert m['normalized_score'] == pytest.approx(0.7)
  assert m['std_return'] == pytest.approx(1.0)  # per-task means -4 and -6
  assert (m['num_train_seeds'], m['num_eval_seeds'], m['split']) == (3, 2, 'test')
  assert 0.6 <= m['ci_low'] < 0.7 < m['ci_high'] <= 0.8
  swept = [r for r in records if r['method'] == 'M'][1]
  assert swept['sweep'] == {'dynamics_weight': 2.0} and m['sweep'] == {}
  assert swept['normalized_score'] == pytest.approx(0.5)
  table = format_table(records)
  assert 'test split' in table and '-5.00 (0.70 [' in table and 'train 3, eval 2' in table
  assert 'M dynamics_weight=2  ' in table and '-7.00 (0.50 [' in table


def test_progress_lines_from_inside_the_vmapped_rollout_change_nothing(family):
  tasks = jax.tree.map(lambda x: x[:3], family.test_tasks())
  stacked = memory_policy().replace(params=jnp.array([1.0, 0.5]))
  lines = []
  previous = progress.set_printer(lines.append)
  try:
    run = lambda every: jax.jit(jax.vmap(lambda p, r: rollout(
        family, tasks, p, r, progress=progress.Progress('eval/toy', every)).observations,
        in_axes=(0, None)))(stacked, jax.random.PRNGKey(0))
    quiet, loud = run(0), run(6)
    jax.effects_barrier()
  finally:
    progress.set_printer(previous)
  np.testing.assert_array_equal(quiet, loud)  # bitwise: the callback reads only the step
  t = family.episode_length
  # Once per reported step, not once per vmapped policy: steps 0, 6, 12, 18 and the last.
  steps = [int(l.split('step ')[1].split('/')[0]) for l in lines]
  assert steps == [1, 7, 13, 19, t], lines
  assert lines[0] == f'[progress] eval/toy: step 1/{t} (5%)'
  assert 'steps/s' in lines[-1] and 'ETA 0 s' in lines[-1]


def test_every_plot_keeps_its_text_inside_the_figure(family, monkeypatch, tmp_path):
  figures = []
  monkeypatch.setattr(plots.plt, 'close', figures.append)  # keep each figure to measure it
  tasks = family.test_tasks()
  name = 'MetaDiffuser-NoGuide-with-a-long-name'
  paths = SimpleNamespace(observations=np.zeros((10, family.episode_length + 1, 2)))
  returns = {(f'{name}-{i}', 'expert'): np.ones((1, 1, 10, 1)) for i in range(6)}
  ep = rollout(family, jax.tree.map(lambda x: x[:1], tasks), straight_planner(0.1),
               jax.random.PRNGKey(0), replay_plans=True)
  tmp = str(tmp_path / 'plot.png')
  plots.plot_point_robot(tmp, tasks, paths, name, 10, 1)
  plots.plot_returns(tmp, returns)
  plots.plot_plan_vs_reached(tmp, family, {0.0: ep, 1.0: ep})
  for fig in figures:
    assert plots.texts_outside(fig) == []
  # The measure itself: without the fitting, the long title runs off the paths plot.
  monkeypatch.setattr(plots, 'fit_texts', lambda fig: fig.tight_layout())
  plots.plot_point_robot(tmp, tasks, paths, name, 10, 1)
  assert plots.texts_outside(figures[-1]) == [f'{name}: executed paths (stars: goals)']
