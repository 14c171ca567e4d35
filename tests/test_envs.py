"""Point-Robot against hand computation, and the TaskFamily contract."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mdx.envs import PointRobot, Task, make_family


@pytest.fixture(scope='module')
def family():
  return PointRobot()


def _task(goal):
  return Task(params=jnp.asarray(goal, jnp.float32), task_id=jnp.asarray(0, jnp.int32))


def test_rewards_by_hand(family):
  task = _task([0.5, -0.25])
  state = family.reset(task, jax.random.PRNGKey(0))
  np.testing.assert_array_equal(state.obs, [0.0, 0.0])
  step = jax.jit(family.step)
  # 0.3 is clipped to 0.1; -0.05 passes: s' = (0.1, -0.05); r = -||(0.1-0.5, -0.05+0.25)||.
  state = step(task, state, jnp.array([0.3, -0.05]))
  np.testing.assert_allclose(state.obs, [0.1, -0.05], rtol=1e-6)
  np.testing.assert_allclose(state.reward, -np.hypot(-0.4, 0.2), rtol=1e-6)
  state = step(task, state, jnp.array([-1.0, 0.0]))  # clipped to -0.1: back to x = 0
  np.testing.assert_allclose(state.obs, [0.0, -0.05], atol=1e-7)
  np.testing.assert_allclose(state.reward, -np.hypot(-0.5, 0.2), rtol=1e-6)
  assert int(state.t) == 2 and not bool(state.done)


def test_episode_ends_and_freezes(family):
  task = _task([1.0, 1.0])
  state = family.reset(task, jax.random.PRNGKey(0))
  step = jax.jit(family.step)
  for _ in range(family.episode_length):
    state = step(task, state, jnp.array([0.1, 0.1]))
  assert bool(state.done) and int(state.t) == 20
  frozen = step(task, state, jnp.array([0.1, 0.1]))
  np.testing.assert_array_equal(frozen.obs, state.obs)
  assert int(frozen.t) == 20


def test_optimal_return_by_hand(family):
  """Goal (0.35, 0): the expert moves 0.1, 0.1, 0.1, 0.05, then stays."""
  task = _task([0.35, 0.0])
  state = family.reset(task, jax.random.PRNGKey(0))
  total = 0.0
  for _ in range(20):
    state = family.step(task, state, family.optimal_action(task, state))
    total += float(state.reward)
  np.testing.assert_allclose(total, -(0.25 + 0.15 + 0.05), atol=1e-6)


def test_tasks_deterministic_and_split(family):
  a, b = family.all_tasks(), PointRobot().all_tasks()
  np.testing.assert_array_equal(a.params, b.params)
  assert family.train_tasks().params.shape == (30, 2)
  assert family.test_tasks().params.shape == (10, 2)
  assert np.all(np.abs(a.params) <= 1.0)
  np.testing.assert_array_equal(family.test_tasks().task_id, np.arange(30, 40))
  assert make_family('point_robot') == family
  with pytest.raises(ValueError, match='Unknown family'):
    make_family('nope')


def test_vmapped_step_over_tasks(family):
  tasks = family.train_tasks()
  states = jax.vmap(family.reset)(tasks, jax.random.split(jax.random.PRNGKey(0), 30))
  actions = jnp.full((30, 2), 0.05)
  nxt = jax.jit(jax.vmap(family.step))(tasks, states, actions)
  expected = -np.linalg.norm(np.full((30, 2), 0.05) - np.asarray(tasks.params), axis=1)
  np.testing.assert_allclose(nxt.reward, expected, rtol=1e-6)


# Seeds `experiments/select_expert.py` (7) and `experiments/expert_map.py` (123) use by default,
# and a range of others any user may pass.
TOOL_SEEDS = sorted({7, 123, *range(0, 64)})


def test_validation_split_is_disjoint_and_no_seed_reproduces_the_test_draw(family):
  from mdx.envs import base  # pylint: disable=g-import-not-at-top
  rows = lambda t: {tuple(np.asarray(p).round(7)) for p in np.asarray(t.params)}
  train, test, val = rows(family.train_tasks()), rows(family.test_tasks()), rows(
      family.validation_tasks())
  assert len(val) == family.num_validation_tasks == 10
  assert not val & train and not val & test and not train & test
  np.testing.assert_array_equal(family.validation_tasks().task_id, np.arange(40, 50))
  np.testing.assert_array_equal(family.validation_tasks().params,
                                PointRobot().validation_tasks().params)  # deterministic
  for seed in TOOL_SEEDS:
    drawn = rows(family.distribution_tasks(seed, 50))
    assert not drawn & test and not drawn & val, seed
  # No plain PRNGKey(s) equals a derived key, so no seed value turns into the test draw.
  derived = [jax.random.fold_in(jax.random.PRNGKey(family.task_seed), base.VALIDATION_STREAM)]
  derived += [jax.random.fold_in(jax.random.PRNGKey(base.DISTRIBUTION_STREAM), s)
              for s in TOOL_SEEDS]
  assert all(int(np.asarray(k)[0]) != 0 for k in derived)  # PRNGKey(s) is [0, s] for s < 2^32
  assert np.asarray(jax.random.PRNGKey(family.task_seed))[0] == 0
  with pytest.raises(ValueError, match=r"split must be one of \('train', 'validation', 'test'\)"):
    family.split_tasks('val')
