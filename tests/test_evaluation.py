"""Receding-horizon rollout with plans replayed open-loop (the paper's Figure 3), on Point-Robot
with hand-made planners whose plans are exactly right or off by a known amount."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mdx.envs import make_family
from mdx.evaluation.evaluate import plan_discrepancy
from mdx.evaluation.rollout import replay_mask, replay_plan, rollout
from mdx.planning import PlanOutput

H = 4


def straight_planner(offset: float):
  """Plans H steps of a = (0.05, -0.2) (clipped to -0.1 by the env); the planned states follow
  the true dynamics, shifted by `offset` after the current state."""
  def plan_fn(rng, obs, context):
    del rng, context
    b = obs.shape[0]
    actions = jnp.broadcast_to(jnp.array([0.05, -0.2]), (b, H, 2))
    steps = jnp.cumsum(jnp.clip(actions, -0.1, 0.1), axis=1)[:, :-1]
    states = jnp.concatenate([obs[:, None], obs[:, None] + steps + offset], axis=1)
    nan = jnp.full((b,), jnp.nan)
    return PlanOutput(action=actions[:, 0], states=states, actions=actions, value=nan,
                      discrepancy=nan)
  return plan_fn


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
  run = jax.jit(lambda r: rollout(family, tasks, jnp.zeros((10, 3)), straight_planner(offset), r,
                                  replay_plans=True))
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
  plain = jax.jit(lambda r: rollout(family, tasks, jnp.zeros((10, 3)), straight_planner(offset),
                                    r))(jax.random.PRNGKey(0))
  assert plain.reached is None
  np.testing.assert_array_equal(plain.observations, ep.observations)
