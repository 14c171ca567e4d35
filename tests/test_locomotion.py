"""Locomotion families (mdx/envs/locomotion.py) and the expert loader (mdx/experts).

Kept fast: a few compiled functions (Cheetah-Vel on spring, Hopper-Param on the generalized
backend next to Brax's own hopper), shared through module-scoped fixtures; rollouts are short.
"""
import json
import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax import envs as brax_envs

from mdx.envs import EnvState, Task, make_family
from mdx import experts
from mdx.envs import locomotion
from mdx.evaluation import video

jax.config.update('jax_numpy_rank_promotion', 'raise')

STEPS = 4


class _Compiled:
  """A family's `vmap`ped `reset` and `step`, jitted once and stepped from Python."""

  def __init__(self, family):
    self.family = family
    self.reset = jax.jit(jax.vmap(family.reset))
    self.step = jax.jit(jax.vmap(family.step))

  def rollout(self, tasks, keys, actions):
    """Start states, and per-step states before/after, stacked `[STEPS, n]`."""
    start = state = self.reset(tasks, keys)
    before, after = [], []
    for action in actions:
      before.append(state)
      state = self.step(tasks, state, action)
      after.append(state)
    stack = lambda xs: jax.tree.map(lambda *x: jnp.stack(x), *xs)  # noqa: E731
    return start, stack(before), stack(after)


@pytest.fixture(scope='module')
def cheetah():
  """Cheetah-Vel: three tasks (0.5, 2.5, 2.5 m/s) from the same start, out-of-box actions."""
  compiled = _Compiled(make_family('cheetah_vel'))
  tasks = Task(params=jnp.array([[0.5], [2.5], [2.5]], jnp.float32),
               task_id=jnp.arange(3, dtype=jnp.int32))
  actions = 1.5 * jax.random.uniform(jax.random.PRNGKey(1), (STEPS, 3, 6), minval=-1, maxval=1)
  actions = actions.at[:, 1].set(actions[:, 0]).at[:, 2].set(actions[:, 0])
  keys = jnp.stack([jax.random.PRNGKey(0)] * 3)
  return compiled, tasks, actions, keys, compiled.rollout(tasks, keys, actions)


@pytest.fixture(scope='module')
def hopper():
  """Hopper-Param (generalized backend) with u = 0 and one parameter group at u = 1.5 each, next
  to Brax's hopper."""
  compiled = _Compiled(make_family('hopper_param', backend='generalized', cone='pyramidal'))
  params = jnp.concatenate([jnp.zeros((1, 4)), 1.5 * jnp.eye(4)]).astype(jnp.float32)
  tasks = Task(params=params, task_id=jnp.arange(5, dtype=jnp.int32))
  actions = jax.random.uniform(jax.random.PRNGKey(2), (STEPS, 5, 3), minval=-1, maxval=1)
  keys = jnp.stack([jax.random.PRNGKey(3)] * 5)
  ours = compiled.rollout(tasks, keys, actions)
  env = brax_envs.get_environment('hopper', backend=compiled.family.backend)
  env_step = jax.jit(jax.vmap(env.step))
  state = jax.jit(jax.vmap(env.reset))(keys)
  theirs = []
  for action in actions:
    state = env_step(state, action)
    theirs.append(state)
  theirs = jax.tree.map(lambda *x: jnp.stack(x), *theirs)
  return compiled.family, tasks, ours, theirs


def test_registry_and_splits():
  for name, cls in locomotion.FAMILIES.items():
    family = make_family(name)
    assert isinstance(family, cls) and family.name == name
    train, test = family.train_tasks(), family.test_tasks()
    assert train.params.shape[1] == test.params.shape[1] == family.task_dim
    state = jax.eval_shape(family.reset, jax.tree.map(lambda x: x[0], test), jax.random.PRNGKey(0))
    assert state.obs.shape == (family.obs_dim,) and state.obs.dtype == jnp.float32
    assert family.feature_dim == (2 if name == 'ant_dir' else family.task_dim)
  vel = make_family('cheetah_vel')
  assert vel.train_tasks().params.shape == (30, 1) and vel.test_tasks().params.shape == (10, 1)
  np.testing.assert_array_equal(vel.all_tasks().params, make_family('cheetah_vel').all_tasks().params)
  assert float(vel.all_tasks().params.min()) >= 0 and float(vel.all_tasks().params.max()) <= 3
  direction = make_family('cheetah_dir')
  np.testing.assert_array_equal(direction.train_tasks().params, [[-1.0], [1.0]])
  np.testing.assert_array_equal(direction.test_tasks().params, [[-1.0], [1.0]])
  param = make_family('walker_param').all_tasks().params
  assert param.shape == (40, 4) and float(jnp.abs(param).max()) <= 3
  with pytest.raises(ValueError, match='backend'):
    make_family('cheetah_vel', backend='bogus')
  with pytest.raises(ValueError, match="pass cone='pyramidal'"):
    make_family('hopper_param', backend='generalized')
  with pytest.raises(ValueError, match="cone must be 'pyramidal' or 'elliptic'"):
    make_family('cheetah_vel', cone='round')


def test_prompt_dt_task_splits():
  """The Prompt-DT repository's splits (papers 003 and 004): its test velocities and angles, the
  other tasks training, set by the config's preset option; a size mismatch names the fields."""
  from configs import ant_dir, cheetah_vel  # pylint: disable=g-import-not-at-top
  from mdx.envs import family_from_config  # pylint: disable=g-import-not-at-top
  vel = family_from_config(cheetah_vel.get_config('test,prompt_dt_split'))
  np.testing.assert_allclose(vel.test_tasks().params[:, 0], [0.225, 0.6, 1.2, 1.8, 2.025],
                             rtol=1e-6)
  np.testing.assert_allclose(np.sort(vel.all_tasks().params[:, 0]), np.linspace(0.075, 3, 40),
                             rtol=1e-6)
  assert vel.train_tasks().params.shape == (35, 1)
  np.testing.assert_array_equal(vel.all_tasks().task_id, np.arange(40))
  assert vel.validation_tasks().task_id.min() == 40
  ant = family_from_config(ant_dir.get_config('test,prompt_dt_split'))
  np.testing.assert_allclose(ant.test_tasks().params[:, 0],
                             [0.2454, 1.7781, 0.9042, 3.5688, 4.1419])
  train = np.asarray(ant.train_tasks().params)
  assert train.shape == (45, 1) and 0 <= train.min() and train.max() < 2 * math.pi
  with pytest.raises(ValueError, match='env.num_test_tasks=5'):
    make_family('cheetah_vel', task_split='prompt_dt')
  with pytest.raises(ValueError, match='task_split must be one of'):
    make_family('ant_dir', task_split='prompt-dt')
  with pytest.raises(ValueError, match='no Prompt-DT split other than its own'):
    from configs import cheetah_dir  # pylint: disable=g-import-not-at-top
    cheetah_dir.get_config('cpu,prompt_dt_split')


def test_cheetah_vel_reward_is_hand_computed(cheetah):
  compiled, tasks, actions, _, (_, before, after) = cheetah
  family = compiled.family
  x0 = np.asarray(family.torso_position(before)[..., 0])
  x1 = np.asarray(family.torso_position(after)[..., 0])
  v = (x1 - x0) / np.float32(family.dt)  # [STEPS, n]
  a = np.clip(np.asarray(actions), -1, 1)  # actions beyond the box are clipped before physics and cost
  expected = -np.abs(v - np.asarray(tasks.params)[None, :, 0]) - 0.05 * np.sum(a**2, axis=-1)
  np.testing.assert_allclose(after.reward, expected, rtol=1e-5, atol=1e-5)
  assert family.dt == pytest.approx(0.05)
  assert not bool(after.done.any()) and np.all(after.t == np.arange(1, STEPS + 1)[:, None])


def test_reward_change_families_share_physics_and_differ_in_reward(cheetah):
  compiled, tasks, actions, keys, (_, before, after) = cheetah
  family = compiled.family
  # Same start and actions: the physics ignores the task; only the reward depends on it.
  np.testing.assert_array_equal(after.obs[:, 0], after.obs[:, 1])
  np.testing.assert_array_equal(after.obs[:, 1], after.obs[:, 2])
  np.testing.assert_array_equal(after.reward[:, 1], after.reward[:, 2])
  assert np.abs(after.reward[:, 0] - after.reward[:, 1]).min() > 1e-3
  # Same task and seed: bit for bit; other seeds: other starts.
  _, _, again = compiled.rollout(tasks, keys, actions)
  jax.tree.map(np.testing.assert_array_equal, after, again)
  other = compiled.reset(tasks, jax.random.split(jax.random.PRNGKey(5), 3))
  assert not np.allclose(other.obs[0], other.obs[1])
  # Cheetah-Dir and Ant-Dir rewards from a simulated velocity.
  velocity = (family.torso_position(after) - family.torso_position(before))[0, 0] / family.dt
  a = jnp.clip(actions[0, 0], -1, 1)
  for d in (-1.0, 1.0):
    task = Task(params=jnp.array([d]), task_id=jnp.zeros((), jnp.int32))
    got = make_family('cheetah_dir').task_reward(task, velocity, a)
    np.testing.assert_allclose(got, d * velocity[0] - 0.05 * jnp.sum(a**2), rtol=1e-6)
  ant = make_family('ant_dir')
  theta = 2.0
  task = Task(params=jnp.array([theta]), task_id=jnp.zeros((), jnp.int32))
  v3 = jnp.array([0.3, -1.2, 0.1])
  a8 = jnp.linspace(-1, 1, 8)
  expected = 0.3 * math.cos(theta) - 1.2 * math.sin(theta) + 1.0 - 0.5 * float(jnp.sum(a8**2))
  np.testing.assert_allclose(ant.task_reward(task, v3, a8), expected, rtol=1e-5)


def test_cheetah_dir_forward_prob_sets_the_training_draws():
  draws = lambda p: np.asarray(make_family('cheetah_dir', forward_prob=p).sample_task_params(
      jax.random.PRNGKey(0), 64))
  np.testing.assert_array_equal(draws(0.0), -np.ones((64, 1)))
  np.testing.assert_array_equal(draws(1.0), np.ones((64, 1)))
  with pytest.raises(ValueError, match='forward_prob'):
    make_family('cheetah_dir', forward_prob=1.5)


def test_task_metric_by_hand():
  """The medium tier's half-way scalar: speed along the task's direction, or minus the tracking
  error, from `experts.quality` on hand-made trajectories (2 episodes x 200 steps)."""
  v = np.zeros((2, 200, 2), np.float32)
  v[0, :, 0], v[1, :, 0] = -2.0, 3.0
  traj = {'velocity': jnp.asarray(v), 'alive': jnp.ones((2, 200), bool), 'ret': jnp.zeros(2)}
  direction = make_family('cheetah_dir').all_tasks()  # d = -1, +1
  assert experts.task_metric(make_family('cheetah_dir'), direction, traj) == pytest.approx(2.5)
  goals = Task(params=jnp.array([[0.0], [math.pi]]), task_id=jnp.arange(2))
  assert experts.task_metric(make_family('ant_dir'), goals, traj) == pytest.approx(-2.5)
  targets = Task(params=jnp.array([[1.0], [1.0]]), task_id=jnp.arange(2))
  assert experts.task_metric(make_family('cheetah_vel'), targets, traj) == pytest.approx(-2.5)


def test_steps_after_done_leave_state_unchanged(cheetah):
  compiled, tasks, actions, _, (start, _, _) = cheetah
  done = start.replace(done=jnp.ones((3,), bool))
  stepped = compiled.step(tasks, done, actions[0])
  jax.tree.map(np.testing.assert_array_equal, stepped, done)
  # The time limit ends an episode at `episode_length` steps.
  late = start.replace(t=jnp.full((3,), compiled.family.episode_length - 1, jnp.int32))
  assert bool(compiled.step(tasks, late, actions[0]).done.all())


def test_param_u0_reproduces_brax(hopper):
  family, tasks, (_, _, ours), theirs = hopper
  # u = 0 leaves every leaf of the System bit for bit unchanged ...
  unrandomized = family.task_system(jax.tree.map(lambda x: x[0], tasks))
  jax.tree.map(np.testing.assert_array_equal, unrandomized, family.sys)
  # ... so the motion is Brax's own hopper; the compiled programs differ (a traced System
  # against a constant one), which moves float32 rounding by ~1e-7, and a contact solve can
  # amplify that in the velocities (measured: q within 8e-8, velocities 1.7e-5 in two of 44
  # entries). One parameter group at u = 1.5 moves q by 0.03-0.06 in these steps (next test).
  np.testing.assert_allclose(ours.obs[:, 0], theirs.obs[:, 0], rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(ours.physics.q[:, 0], theirs.pipeline_state.q[:, 0],
                             rtol=1e-5, atol=1e-6)
  # Brax's hopper reward is v_x + 1 - 1e-3 ||a||^2 with v_x from positions over dt: the same.
  alive = ~np.asarray(theirs.done[:, 0], bool)
  np.testing.assert_allclose(ours.reward[alive, 0], theirs.reward[alive, 0], rtol=1e-6, atol=1e-6)
  assert family.dt == pytest.approx(float(brax_envs.get_environment('hopper').dt))


def test_each_randomized_group_changes_motion(hopper):
  family, tasks, (_, _, ours), _ = hopper
  q = np.asarray(ours.physics.q)  # [STEPS, 5, q_size]
  for group in range(1, 5):  # mass, inertia, friction, damping
    # measured 0.027 (damping) to 0.057 (friction) after 4 steps
    assert np.abs(q[:, group] - q[:, 0]).max() > 1e-3, f'group {group - 1} has no effect'
  # The randomized System carries the multipliers, and only those leaves differ.
  sys = family.task_system(jax.tree.map(lambda x: x[1], tasks))
  np.testing.assert_allclose(sys.link.inertia.mass, family.sys.link.inertia.mass * 1.5**1.5,
                             rtol=1e-6)
  np.testing.assert_allclose(sys.body_mass, family.sys.body_mass * 1.5**1.5, rtol=1e-6)
  damped = family.task_system(jax.tree.map(lambda x: x[4], tasks))
  np.testing.assert_allclose(damped.dof.damping, family.sys.dof.damping * 1.3**1.5, rtol=1e-6)
  np.testing.assert_array_equal(damped.link.inertia.mass, family.sys.link.inertia.mass)


def test_param_health_checks(hopper):
  family, _, (start, _, _), _ = hopper
  physics = jax.tree.map(lambda x: x[0], start.physics)
  assert bool(family.healthy(physics))
  fallen = physics.replace(x=physics.x.replace(pos=physics.x.pos.at[0, 2].set(0.6)))
  assert not bool(family.healthy(fallen))
  tilted = physics.replace(q=physics.q.at[2].set(0.3))
  assert not bool(family.healthy(tilted))
  # Walker: torso height in (0.8, 2), pitch in (-1, 1).
  walker = make_family('walker_param')
  fake = lambda z, pitch: types.SimpleNamespace(  # noqa: E731
      x=types.SimpleNamespace(pos=jnp.array([[0.0, 0.0, z]])), q=jnp.array([0.0, z, pitch]))
  assert bool(walker.healthy(fake(1.2, 0.5)))
  assert not bool(walker.healthy(fake(0.7, 0.0))) and not bool(walker.healthy(fake(1.2, -1.1)))
  # Ant: torso height in [0.2, 1].
  ant = make_family('ant_dir')
  assert bool(ant.healthy(fake(0.5, 0.0))) and not bool(ant.healthy(fake(1.1, 0.0)))


def test_expert_roundtrip_and_missing_file(tmp_path, cheetah):
  compiled, tasks, _, _, (state, _, _) = cheetah
  family = compiled.family
  network = {'policy_hidden_layer_sizes': [8, 8], 'value_hidden_layer_sizes': [8],
             'activation': 'swish', 'normalize_observations': True}
  obs_size = family.obs_dim + family.feature_dim
  normalizer, policy = experts.params_template(obs_size, family.act_dim, network)
  normalizer = normalizer.replace(mean=jnp.full((obs_size,), 0.1), std=jnp.full((obs_size,), 2.0))
  (tmp_path / 'cheetah_vel.msgpack').write_bytes(experts.to_bytes((normalizer, policy)))
  (tmp_path / 'cheetah_vel.json').write_text(json.dumps(
      {'obs_size': obs_size, 'act_size': family.act_dim, 'network': network,
       'backend': family.backend}))
  policy_fn = experts.load_expert('cheetah_vel', directory=tmp_path)
  actions = jax.vmap(policy_fn)(tasks, state, jax.random.split(jax.random.PRNGKey(0), 3))
  nets = experts.make_networks(obs_size, family.act_dim, network)
  x = jnp.concatenate([state.obs, tasks.params], axis=-1)
  logits = jax.vmap(lambda x: nets.policy_network.apply(normalizer, policy, x))(x)
  expected = jnp.tanh(logits[:, :family.act_dim])
  np.testing.assert_allclose(actions, expected, rtol=1e-5, atol=1e-6)
  with pytest.raises(FileNotFoundError, match='cheetah_vel_medium.msgpack'):
    experts.load_expert('cheetah_vel', 'medium', directory=tmp_path)
  # A training run's resume state adds the value function, and restores leaf for leaf.
  template = experts.params_template(obs_size, family.act_dim, network, with_value=True)
  value = jax.tree.map(lambda x: x + 0.5, template[2])
  restored = experts.from_bytes(template, experts.to_bytes((normalizer, policy, value)))
  for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves((normalizer, policy, value))):
    np.testing.assert_array_equal(got, want)
  with pytest.raises(ValueError, match='backend'):
    experts.load_expert(make_family('cheetah_vel', backend='generalized'), directory=tmp_path)


@pytest.mark.parametrize('name', sorted(locomotion.FAMILIES))
def test_committed_experts_load(name):
  params_path, _ = experts.paths(name)
  if not params_path.exists():
    pytest.skip(f'no committed expert for {name}')
  family = make_family(name)
  task = jax.tree.map(lambda x: x[0], family.test_tasks())
  state = EnvState(obs=jnp.zeros((family.obs_dim,)), reward=jnp.zeros(()),
                   done=jnp.zeros((), bool), t=jnp.zeros((), jnp.int32))  # the policy reads obs
  for tier in experts.TIERS:
    action = experts.load_expert(family, tier)(task, state, jax.random.PRNGKey(1))
    assert action.shape == (family.act_dim,) and bool(jnp.all(jnp.abs(action) <= 1))
  if experts.paths(name, experts.EARLY_TIER)[0].exists():  # the early random tier samples
    from mdx.data import policies  # pylint: disable=g-import-not-at-top
    policy_fn = policies.behaviour_policy(family, 'random', 'checkpoint')
    a, b = (policy_fn(task, state, jax.random.PRNGKey(k)) for k in (1, 2))
    assert bool(jnp.all(jnp.abs(a) <= 1)) and not np.allclose(a, b)
    assert policies.behaviour_id(family, 'random', 'checkpoint').endswith(' sampled')
    assert 'random_tier' in json.loads(experts.paths(name)[1].read_text())


class _CountingEnv(brax_envs.Env):
  """A toy env: the task is a uniform draw at reset, an episode ends after 2 steps (task <= 0.5)
  or 3 steps (task > 0.5); obs = (task, steps so far)."""
  observation_size, action_size, backend = 2, 1, 'none'

  def reset(self, rng):
    task = jax.random.uniform(rng)
    return brax_envs.State(pipeline_state=(task, jnp.zeros(())), obs=jnp.stack([task, 0.0]),
                           reward=jnp.zeros(()), done=jnp.zeros(()), metrics={})

  def step(self, state, action):
    task, t = state.pipeline_state
    t = t + 1
    return state.replace(pipeline_state=(task, t), obs=jnp.stack([task, t]),
                         done=(t >= 2 + (task > 0.5)).astype(jnp.float32))


def test_redraw_autoreset_starts_a_new_task_after_each_episode():
  env = experts.wrap_for_training(_CountingEnv(), episode_length=100)
  state = jax.jit(env.reset)(jax.random.split(jax.random.PRNGKey(0), 6))
  step = jax.jit(env.step)
  tasks_seen = [set(np.asarray(state.obs[:, 0]).tolist())]
  for _ in range(8):
    old = np.asarray(state.obs)
    state = step(state, jnp.zeros((6, 1)))
    obs, done = np.asarray(state.obs), np.asarray(state.done) > 0
    length = np.where(old[:, 0] > 0.5, 3, 2)
    np.testing.assert_array_equal(done, old[:, 1] + 1 >= length)
    # Finished slots restart at t = 0 with a new task; the others go on with theirs.
    np.testing.assert_array_equal(obs[:, 1], np.where(done, 0, old[:, 1] + 1))
    assert np.all(obs[done, 0] != old[done, 0]) and np.all(obs[~done, 0] == old[~done, 0])
    tasks_seen.append(set(obs[:, 0].tolist()))
  assert len(set().union(*tasks_seen)) > 3 * 6  # Brax's AutoResetWrapper would replay the 6 tasks


def test_task_conditioned_env_probe_tasks(cheetah):
  family = cheetah[0].family
  probe = jnp.array([[0.5], [2.5]])
  env = experts.TaskConditionedEnv(family, task_params=probe)
  state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), 8))
  drawn = np.asarray(state.pipeline_state[0].params[:, 0])
  assert set(drawn.tolist()) == {0.5, 2.5}
  np.testing.assert_array_equal(state.obs[:, -1], drawn)  # the policy sees the drawn task
  with pytest.raises(ValueError, match=r'task_params must have shape \[k, 1\]'):
    experts.TaskConditionedEnv(family, task_params=jnp.zeros((2, 3)))


def _tile_tasks(tasks, n):
  return jax.tree.map(lambda x: jnp.concatenate([x] * n), tasks)


def test_param_families_default_to_elliptic_cones_where_high_friction_does_not_sink():
  """The default physics of Walker/Hopper-Param (MJX, elliptic cones) against pyramidal cones.

  A hopper standing with zero torques for 60 steps (0.48 s): with pyramidal cones and the
  friction x 1.5^3 the contact goes soft and the torso sinks to a "fall" (docs/locomotion.md);
  with elliptic cones it stands at its nominal height whatever the friction. Each parameter
  group also changes the motion on this backend (MJX reads `body_mass`, `body_inertia`,
  `dof_damping`, `geom_friction`)."""
  family = make_family('hopper_param')
  assert (family.backend, family.cone) == ('mjx', 'elliptic')
  assert make_family('walker_param').cone == 'elliptic'
  params = jnp.concatenate([jnp.zeros((1, 4)), 3.0 * jnp.eye(4)]).astype(jnp.float32)
  tasks = Task(params=params, task_id=jnp.arange(5, dtype=jnp.int32))

  def rollout(family, tasks, actions):  # actions [60, n, act_dim]
    def run(actions):
      n = tasks.params.shape[0]
      state = jax.vmap(family.reset)(tasks, jnp.stack([jax.random.PRNGKey(0)] * n))
      def body(state, action):
        state = jax.vmap(family.step)(tasks, state, action)
        return state, (state.physics.x.pos[:, 0, 2], state.physics.q)
      return jax.lax.scan(body, state, actions)[1]
    return jax.device_get(jax.jit(run)(actions))

  still = jnp.zeros((60, 5, family.act_dim))
  shaken = jax.random.uniform(jax.random.PRNGKey(1), still.shape, minval=-1, maxval=1)
  # Still and shaken episodes in one program: tasks 0-4 stand still, 5-9 shake alike.
  z, q = rollout(family, _tile_tasks(tasks, 2),
                 jnp.concatenate([still, shaken.at[:, 1:].set(shaken[:, :1])], axis=1))
  assert float(z[:, :5].min()) > 1.15  # stands (starts at 1.25) in every task, friction x3.4 included
  q = q[:, 5:]
  for group in range(1, 5):
    # rounding alone moves q by ~1e-7; friction (x3.4) moved it by 6e-4 here
    assert float(np.abs(q[:, group] - q[:, 0]).max()) > 1e-4, f'group {group - 1} had no effect'
  pyramidal = make_family('hopper_param', cone='pyramidal')
  z_pyramidal, _ = rollout(pyramidal, tasks, still)
  assert float(z_pyramidal[-1, 3]) < 0.8  # friction x3.4: sunk from 1.25 to ~0.7 without a move
  assert float(z_pyramidal[-1, 0]) > 1.15  # nominal friction: stands


def test_ghost_of_a_perfect_plan_is_the_body_and_a_shifted_plan_is_shifted():
  # A planar robot: q = (x, z, pitch), observations = (z + 1.25, pitch, vx, vz, vpitch) (Brax's
  # hopper observes the torso's world height), x integrated from the observed vx.
  dt, steps, horizon, lead = 0.05, 12, 4, 3
  rng = np.random.default_rng(0)
  v = rng.normal(size=(steps + 1, 3))
  q = np.zeros((steps + 1, 3))
  q[:, 1:] = rng.normal(size=(steps + 1, 2))
  q[1:, 0] = np.cumsum(dt * v[1:, 0])
  obs = np.concatenate([q[:, 1:2] + 1.25, q[:, 2:], v], axis=1)
  index = np.minimum(np.arange(steps)[:, None] + np.arange(horizon), steps)
  plans = obs[index]  # [T, H, obs_dim]: every plan exactly what happened
  alive = np.ones(steps, bool)
  ghost, shown = video.ghost_positions(q, obs, plans, alive, nv=3, dt=dt, lead=lead)
  assert not shown[:lead].any() and shown[lead:].all()
  np.testing.assert_allclose(ghost[shown], q[shown], atol=1e-12)
  shifted = plans.copy()
  shifted[:, 1:, 1] += 0.2  # pitch planned 0.2 too high
  ghost, _ = video.ghost_positions(q, obs, shifted, alive, nv=3, dt=dt, lead=lead)
  np.testing.assert_allclose(ghost[lead:] - q[lead:], np.broadcast_to([0, 0, 0.2], (10, 3)),
                             atol=1e-12)
  alive[5:] = False  # plans made after the episode ended show no ghost
  _, shown = video.ghost_positions(q, obs, plans, alive, nv=3, dt=dt, lead=lead)
  assert shown[lead:5 + lead].all() and not shown[5 + lead:].any()
  with pytest.raises(ValueError, match='lead must be in'):
    video.ghost_positions(q, obs, plans, alive, nv=3, dt=dt, lead=horizon)


def test_video_of_a_cheetah_episode_draws_the_ghost(cheetah, tmp_path):
  compiled, _, _, _, (start, _, after) = cheetah
  q = np.concatenate([np.asarray(start.physics.q)[None, 0], np.asarray(after.physics.q)[:, 0]])
  obs = np.concatenate([np.asarray(start.obs)[None, 0], np.asarray(after.obs)[:, 0]])
  index = np.minimum(np.arange(STEPS)[:, None] + np.arange(3), STEPS)
  plans = obs[index].copy()
  plans[:, 1:, 0] += 0.5  # the ghost floats 0.5 m above the body
  episode = {'q': q, 'observations': obs, 'plan_states': plans, 'alive': np.ones(STEPS, bool),
             'rewards': np.ones(STEPS, np.float32), 'task_params': np.zeros(1),
             'meta': {'family': 'cheetah_vel', 'method': 'toy', 'task_id': 0, 'return': 4.0,
                      'dt': compiled.family.dt}}
  import ctypes.util  # pylint: disable=g-import-not-at-top
  if ctypes.util.find_library('EGL') is None:
    pytest.skip('no EGL library on this machine (headless rendering needs libEGL, e.g. Mesa)')
  with_ghost = video.render_frames('cheetah_vel', episode, width=64, height=48, every=1)
  plain = video.render_frames('cheetah_vel', {k: v for k, v in episode.items()
                                              if k != 'plan_states'}, width=64, height=48)
  assert with_ghost.shape == plain.shape == (STEPS + 1, 48, 64, 3)
  changed = np.abs(with_ghost.astype(int) - plain.astype(int)).sum(-1) > 30
  assert not changed[:2, 16:-16].any()  # no plan made `lead` = 2 steps earlier yet
  assert (changed[2:, 16:-16].mean((1, 2)) > 0.005).all()  # then the ghost, every frame
  path = str(tmp_path / 'episode.npz')
  video.save_episode(path, episode)
  loaded = video.load_episode(path)
  assert loaded['meta'] == episode['meta']
  frames = video.render_gif(str(tmp_path / 'episode.gif'), loaded, width=64, height=48, every=1)
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(tmp_path / 'episode.gif') as gif:
    assert frames == gif.n_frames == STEPS + 1
