"""Collection, the dataset round trip, every bad-input error, the sampler and the normalizer."""
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mdx import data as mdata
from mdx.data import trajectories as trj
from mdx.envs import PointRobot

FAMILY = PointRobot()
DIMS = dict(obs_dim=2, act_dim=2, task_dim=2)


@pytest.fixture(scope='module')
def expert():
  tasks = jax.tree.map(lambda x: x[:3], FAMILY.train_tasks())
  return jax.device_get(mdata.collect(FAMILY, tasks, mdata.behaviour_policy(FAMILY, 'expert'),
                                      jax.random.PRNGKey(0), 2))


def test_collect_shapes_and_returns(expert):
  assert expert.observations.shape == (3, 2, 20, 2)
  assert expert.rewards.shape == (3, 2, 20)
  np.testing.assert_array_equal(expert.observations[:, :, 1:], expert.next_observations[:, :, :-1])
  assert expert.valid.all() and expert.timeouts[:, :, -1].all() and not expert.terminals.any()
  # Rewards recomputed from the stored next states.
  goals = np.asarray(expert.task_params)[:, None, None]
  np.testing.assert_allclose(expert.rewards, -np.linalg.norm(expert.next_observations - goals,
                                                             axis=-1), rtol=1e-5)


def test_tiers_are_ordered():
  tasks = FAMILY.train_tasks()
  rets = {t: mdata.collect(FAMILY, tasks, mdata.behaviour_policy(FAMILY, t), jax.random.PRNGKey(1),
                           4).returns().mean() for t in mdata.TIERS}
  assert rets['random'] < rets['medium'] < rets['expert']


def test_round_trip(tmp_path, expert):
  path = str(tmp_path / 'ds')
  mdata.save(path, expert, {'family': 'point_robot', 'split': 'train', 'tier': 'expert',
                            'seed': 0})
  loaded, meta = mdata.load(path, family='point_robot', **DIMS)
  for k, v in vars(expert).items():
    np.testing.assert_array_equal(getattr(loaded, k), v)
  assert meta['format_version'] == trj.FORMAT_VERSION and meta['tier'] == 'expert'
  np.testing.assert_allclose(meta['per_task_return_mean'], expert.returns().mean(1), rtol=1e-6)


def _write(tmp_path, expert, **changes):
  path = str(tmp_path / 'bad')
  mdata.save(path, expert, {'family': 'point_robot'})
  arrays = trj.to_numpy(expert)
  for k, v in changes.items():
    if v is None:
      arrays.pop(k)
    else:
      arrays[k] = v
  np.savez(os.path.join(path, trj.DATA_FILE), **arrays)
  return path


@pytest.mark.parametrize('change, match', [
    (dict(rewards=None), "missing array 'rewards'"),
    (dict(actions='f64'), "'actions' has dtype float64, expected float32"),
    (dict(observations='wrong_dim'), r"'observations' has shape \(3, 2, 20, 3\): axis 3 must be 2"),
    (dict(rewards='nan'), "'rewards' has 1 non-finite values"),
    (dict(terminals='short'), r"'terminals' has shape \(3, 2, 19\): axis 2 \(T\) is 19"),
])
def test_bad_arrays_raise_clear_errors(tmp_path, expert, change, match):
  (field, kind), = change.items()
  value = None
  if kind == 'f64':
    value = np.asarray(getattr(expert, field), np.float64)
  elif kind == 'wrong_dim':
    value = np.zeros((3, 2, 20, 3), np.float32)
  elif kind == 'nan':
    value = np.array(getattr(expert, field))
    value[0, 0, 0] = np.nan
  elif kind == 'short':
    value = np.asarray(getattr(expert, field))[:, :, :19]
  path = _write(tmp_path, expert, **{field: value})
  with pytest.raises(mdata.DatasetError, match=match):
    mdata.load(path, **DIMS)


def test_bad_files_raise_clear_errors(tmp_path, expert):
  with pytest.raises(mdata.DatasetError, match='not found'):
    mdata.load(str(tmp_path / 'absent'), **DIMS)
  path = _write(tmp_path, expert)
  with pytest.raises(mdata.DatasetError, match="family is 'point_robot', expected 'cheetah_vel'"):
    mdata.load(path, family='cheetah_vel', **DIMS)
  meta_file = os.path.join(path, trj.META_FILE)
  meta = json.load(open(meta_file))
  json.dump(dict(meta, format_version=99), open(meta_file, 'w'))
  with pytest.raises(mdata.DatasetError, match='format_version is 99'):
    mdata.load(path, **DIMS)
  open(meta_file, 'w').write('{not json')
  with pytest.raises(mdata.DatasetError, match='not valid JSON'):
    mdata.load(path, **DIMS)
  path = _write(tmp_path, expert)
  open(os.path.join(path, trj.DATA_FILE), 'wb').write(b'garbage')
  with pytest.raises(mdata.DatasetError, match='cannot be read as .npz'):
    mdata.load(path, **DIMS)


def test_save_failure_keeps_old_dataset(tmp_path, expert):
  path = str(tmp_path / 'keep')
  mdata.save(path, expert, {'family': 'point_robot'})
  with pytest.raises(TypeError):
    mdata.save(path, expert, {'family': object()})  # not JSON-serializable: fails mid-write
  loaded, _ = mdata.load(path, **DIMS)
  np.testing.assert_array_equal(loaded.observations, expert.observations)
  assert [p for p in os.listdir(tmp_path) if p.startswith('.tmp')] == []


def test_sampler_windows_are_contiguous_and_from_one_task(expert):
  seg = jax.jit(lambda r: mdata.sample_segments(r, expert, 64, history=3, horizon=4,
                                                num_context=2))(jax.random.PRNGKey(0))
  assert seg.states.shape == (64, 4, 2) and seg.context.shape == (64, 2, 3, 7)
  np.testing.assert_array_equal(seg.states[:, 1:], seg.next_states[:, :-1])
  goals = np.asarray(expert.task_params)[np.asarray(seg.task_index)]
  np.testing.assert_allclose(seg.rewards, -np.linalg.norm(seg.next_states - goals[:, None], axis=-1),
                             rtol=1e-5)
  ctx_s2, ctx_r = seg.context[..., 5:], seg.context[..., 4]
  np.testing.assert_allclose(ctx_r, -np.linalg.norm(ctx_s2 - goals[:, None, None], axis=-1),
                             rtol=1e-5)


def test_sampler_context_blocks_draw_every_window_from_one_tier(expert):
  # Six episodes per task read as blocks (tiers) of 2, 1 and 3 episodes; each episode's actions
  # are stamped with its index, so a context row shows which episode it came from.
  data = mdata.concat_episodes([expert] * 3)
  stamp = np.broadcast_to(np.arange(6, dtype=np.float32)[None, :, None, None], data.actions.shape)
  data = data.replace(actions=stamp)
  block_of = np.array([0, 0, 1, 2, 2, 2])
  sample = lambda blocks: jax.jit(lambda r: mdata.sample_segments(
      r, data, 256, history=3, horizon=4, num_context=5, context_blocks=blocks))(
          jax.random.PRNGKey(0))
  block = block_of[np.asarray(sample((2, 1, 3)).context[..., 2]).astype(int)]  # [B, n, h]
  assert (block == block[:, :1, :1]).all()  # one block per sample
  assert set(np.unique(block[:, 0, 0])) == {0, 1, 2}  # and every block drawn
  mixed = block_of[np.asarray(sample(None).context[..., 2]).astype(int)]
  assert not (mixed == mixed[:, :1, :1]).all()
  with pytest.raises(ValueError, match=r'blocks=\(2, 2, 3\) must be positive episode counts'):
    sample((2, 2, 3))


def test_normalizer_round_trip(tmp_path, expert):
  n = mdata.init_normalizer(expert)
  x = mdata.normalize_traj(n, expert.observations, expert.actions)
  assert float(x.min()) >= -1 - 1e-6 and float(x.max()) <= 1 + 1e-6
  s, a = mdata.unnormalize_traj(n, x)
  np.testing.assert_allclose(s, expert.observations, atol=1e-6)
  np.testing.assert_allclose(a, expert.actions, atol=1e-6)
  mdata.save_normalizer(str(tmp_path / 'n.npz'), n)
  m = mdata.load_normalizer(str(tmp_path / 'n.npz'))
  jax.tree.map(np.testing.assert_array_equal, n, m)


def _short_episodes(expert, length=5):
  """`expert` with every episode ended after `length` steps; the padding is marked by rewards of
  999 and actions of 9, so any window that reaches it shows."""
  valid = np.zeros_like(expert.valid)
  valid[:, :, :length] = True
  pad = ~valid
  return expert.replace(valid=valid, rewards=np.where(pad, 999.0, expert.rewards),
                        actions=np.where(pad[..., None], 9.0, expert.actions))


def test_context_windows_never_reach_the_padding_and_segments_mark_it(expert):
  data = _short_episodes(jax.device_get(expert))
  seg = jax.jit(lambda r: mdata.sample_segments(r, data, 256, history=4, horizon=8,
                                                num_context=6))(jax.random.PRNGKey(0))
  # 4-step histories from 5-step episodes: every row is a real transition (two episodes of 5
  # valid steps each give 10 valid rows in episode order).
  assert float(np.abs(np.asarray(seg.context[..., 4])).max()) < 100
  # 8-step windows of 5-step episodes: the first 5 steps are valid, the last 3 are padding.
  np.testing.assert_array_equal(seg.valid, np.broadcast_to(np.arange(8) < 5, (256, 8)))
  np.testing.assert_array_equal(np.asarray(seg.rewards)[:, 5:], 999.0)
  # Windows cross from one episode into the next in order: rows stay consecutive within one.
  rows = np.asarray(seg.context)
  same = np.all(rows[:, :, 1:, :2] == rows[:, :, :-1, 5:], axis=-1)  # s_{t+1} == s'_t
  assert same.mean() > 0.5 and not same.all()


def test_every_loss_ignores_the_padding(expert, test_config):
  """The context loss and the denoising loss are unchanged when the padded steps change."""
  from mdx.diffusion import denoising_loss, loss_weights, make_schedule  # pylint: disable=g-import-not-at-top
  from mdx.methods.metadiffuser import context as ctx_stage  # pylint: disable=g-import-not-at-top
  data = _short_episodes(jax.device_get(expert))
  seg = mdata.sample_segments(jax.random.PRNGKey(0), data, 16, history=4, horizon=8,
                              num_context=2)
  changed = seg.replace(rewards=jnp.where(seg.valid, seg.rewards, -5.0),
                        next_states=jnp.where(seg.valid[..., None], seg.next_states, 7.0),
                        states=jnp.where(seg.valid[..., None], seg.states, -3.0))
  norm = mdata.init_normalizer(expert)
  model = ctx_stage.build_context_model(test_config, FAMILY)
  params = model.init(jax.random.PRNGKey(1), norm, seg.context, seg.states, seg.actions)
  a, _ = ctx_stage.context_loss(model, params, norm, seg)
  b, _ = ctx_stage.context_loss(model, params, norm, changed)
  np.testing.assert_allclose(a, b, rtol=1e-6)
  net = lambda p, x, k, c, m: p * x
  sched, w = make_schedule(4), loss_weights(8, 2, 2, 10.0)
  loss = lambda s: denoising_loss(net, 0.5, sched, jax.random.PRNGKey(2),
                                  mdata.normalize_traj(norm, s.states, s.actions),
                                  jnp.zeros((16, 1)), obs_dim=2, context_dropout=0.0,
                                  predict_epsilon=False, weights=w, valid=s.valid)[0]
  np.testing.assert_allclose(loss(seg), loss(changed), rtol=1e-6)
  # With every step valid the mask changes nothing.
  full = seg.replace(valid=jnp.ones_like(seg.valid))
  unmasked = denoising_loss(net, 0.5, sched, jax.random.PRNGKey(2),
                            mdata.normalize_traj(norm, seg.states, seg.actions), jnp.zeros((16, 1)),
                            obs_dim=2, context_dropout=0.0, predict_epsilon=False, weights=w)[0]
  np.testing.assert_allclose(loss(full), unmasked, rtol=1e-6)


def test_minari_round_trip_keeps_tasks_tiers_and_the_padding(tmp_path, expert, monkeypatch):
  from mdx.data import minari_io  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv('MINARI_DATASETS_PATH', str(tmp_path / 'minari'))
  # Episode (1, 0) ends at step 12 (a termination), frozen afterwards as collection leaves it.
  arrays = {k: v.copy() for k, v in trj.to_numpy(expert).items()}
  arrays['valid'][1, 0, 12:] = False
  arrays['terminals'][1, 0, 11], arrays['timeouts'][1, 0] = True, False
  arrays['observations'][1, 0, 12:] = arrays['next_observations'][1, 0, 11]
  arrays['next_observations'][1, 0, 11:] = arrays['next_observations'][1, 0, 11]
  arrays['actions'][1, 0, 12:], arrays['rewards'][1, 0, 12:] = 0.0, 0.0
  data = mdata.Trajectories(**arrays)
  meta = {'family': 'point_robot', 'split': 'train', 'tier': 'expert', 'seed': 0}
  dataset = minari_io.to_minari(data, meta, 'mdx/point_robot/train-expert-v0', FAMILY)
  assert dataset.total_episodes == 6 and dataset.total_steps == 6 * 20 - 8
  episode_meta = list(dataset.storage.get_episode_metadata([2]))[0]
  assert episode_meta['task_id'] == int(expert.task_ids[1]) and episode_meta['tier'] == 'expert'
  np.testing.assert_array_equal(episode_meta['task_params'], expert.task_params[1])
  back, back_meta = minari_io.from_minari('mdx/point_robot/train-expert-v0', FAMILY)
  for k, v in arrays.items():
    np.testing.assert_array_equal(getattr(back, k), v, err_msg=k)
  assert back_meta == meta
  # A dataset without mdx's metadata needs the task named; the error says so.
  plain = minari_io.to_minari(data, meta, 'other/point-v0', FAMILY)
  monkeypatch.setattr(plain.storage, 'get_episode_metadata', lambda ids: [{} for _ in ids])
  monkeypatch.setattr(minari_io._minari(), 'load_dataset', lambda _: plain)
  with pytest.raises(mdata.DatasetError, match='no task_id / task_params metadata'):
    minari_io.from_minari('other/point-v0', FAMILY)
  single, _ = minari_io.from_minari('other/point-v0', FAMILY, task_params=[0.5, 0.5])
  assert single.observations.shape == (1, 6, 20, 2)
  with pytest.raises(mdata.DatasetError, match=r'observation|actions|bound'):
    minari_io.from_minari('other/point-v0', PointRobot(action_high=0.01, action_low=-0.01),
                          task_params=[0.5, 0.5])


def test_random_tier_source_is_checked_and_uniform_by_default():
  from mdx.data import policies  # pylint: disable=g-import-not-at-top
  assert policies.behaviour_id(FAMILY, 'random') == 'uniform'
  with pytest.raises(ValueError, match=r"random_from \(config.data.random_from\) must be one of"):
    policies.behaviour_policy(FAMILY, 'random', 'sideways')
  with pytest.raises(ValueError, match='point_robot has none'):
    policies.behaviour_id(FAMILY, 'random', 'checkpoint')


def test_nearest_checkpoint_picks_the_closest_score_and_the_earlier_on_ties():
  from mdx import experts  # pylint: disable=g-import-not-at-top
  assert experts.nearest_checkpoint([10.0, 50.0, 30.0], 28.0) == 2
  assert experts.nearest_checkpoint([10.0, 30.0, 50.0], 40.0) == 1  # 30 and 50 tie: earlier
  assert experts.nearest_checkpoint([5.0], -100.0) == 0
  with pytest.raises(ValueError, match='at least one'):
    experts.nearest_checkpoint([], 1.0)


def test_pick_tier_targets_the_fraction_between_uniform_and_expert():
  from mdx import experts  # pylint: disable=g-import-not-at-top
  # half-way between 0 and 100 is 50: 45 is nearer than 60; the random tier's 1/6 is ~16.7
  assert experts.pick_tier([10.0, 45.0, 60.0, 95.0], 0.0, 100.0, 0.5) == (1, 50.0)
  index, target = experts.pick_tier([10.0, 45.0, 60.0], -20.0, 100.0, 1 / 6)
  assert index == 0 and target == pytest.approx(0.0)
  with pytest.raises(ValueError, match='fraction must be in'):
    experts.pick_tier([1.0], 0.0, 1.0, 1.0)


def test_tier_score_is_the_return_or_the_task_metric():
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from mdx import experts  # pylint: disable=g-import-not-at-top
  from mdx.envs import make_family  # pylint: disable=g-import-not-at-top
  family = make_family('cheetah_vel')
  tasks = family.test_tasks()
  n, t = tasks.params.shape[0], family.episode_length
  # every episode runs at 1 m/s: the metric is minus the mean |1 - v_goal| over steps 50-200
  velocity = jnp.zeros((n, t, 3)).at[:, :, 0].set(1.0)
  traj = {'ret': jnp.arange(n, dtype=jnp.float32), 'velocity': velocity,
          'alive': jnp.ones((n, t), bool), 'reward': jnp.zeros((n, t))}
  assert experts.tier_score(family, tasks, traj, 'return') == pytest.approx((n - 1) / 2)
  want = -float(jnp.mean(jnp.abs(1.0 - tasks.params[:, 0])))
  assert experts.tier_score(family, tasks, traj, 'metric') == pytest.approx(want, rel=1e-5)
  with pytest.raises(ValueError, match="one of \\('return', 'metric'\\)"):
    experts.tier_score(family, tasks, traj, 'speed')
