"""Training: an interrupted run resumes to exactly the parameters of an unbroken one; metrics and
checkpoints land where the loop says; the end-to-end pipeline on the tiny test preset."""
import copy
import json
import os

import jax
import numpy as np
import pytest

from mdx.training import loop, trainers


class Interrupted(Exception):
  pass


def _norm(workdir, config):
  from mdx.data import init_normalizer  # pylint: disable=g-import-not-at-top
  family = trainers.family_from_config(config)
  return init_normalizer(trainers.load_dataset(workdir, family, 'train', 'expert')[0])


def _context_run(config, workdir, *, fail_at=None):
  """The context stage's own pieces, with an optional crash at step `fail_at`."""
  family = trainers.family_from_config(config)
  norm = _norm(workdir, config)
  data, tier_episodes = trainers.context_training_data(config, workdir, family)
  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(0))
  state = trainers.init_context_state(config, family, norm, init_rng)
  step = trainers.make_context_step(config, family, jax.device_put(data), norm, tier_episodes)

  def maybe_crash(state, rng):
    if fail_at is not None and int(state.step) == fail_at:
      raise Interrupted()
    return step(state, rng)

  return loop.train(os.path.join(workdir, 'ctx'), state, maybe_crash, train_rng,
                    num_steps=config.context.num_steps, log_every=5, checkpoint_every=10,
                    name='ctx')


def test_interrupted_run_resumes_to_the_same_parameters(test_config, data_workdir, tmp_path):
  config = copy.deepcopy(test_config)
  config.context.num_steps = 30
  broken = str(tmp_path / 'broken')
  os.makedirs(broken)
  os.symlink(os.path.join(data_workdir, 'data'), os.path.join(broken, 'data'))
  with pytest.raises(Interrupted):
    _context_run(config, broken, fail_at=17)  # dies between the checkpoints of steps 10 and 20
  assert loop.latest_step(os.path.join(broken, 'ctx', 'checkpoints')) == 10
  resumed = _context_run(config, broken)
  unbroken = _context_run(config, data_workdir)
  assert int(resumed.step) == int(unbroken.step) == 30
  jax.tree.map(np.testing.assert_array_equal, resumed.params, unbroken.params)
  jax.tree.map(np.testing.assert_array_equal, resumed.ema_params, unbroken.ema_params)
  jax.tree.map(np.testing.assert_array_equal, resumed.opt_state, unbroken.opt_state)
  # Metrics are machine-readable lines with the split prefix.
  lines = [json.loads(l) for l in open(os.path.join(broken, 'ctx', 'metrics.jsonl'))]
  logged = [(l['step'], l['train/loss']) for l in lines if 'train/loss' in l]
  # Step 15 was logged before the crash at 17 and again after resuming from 10: same loss.
  assert [s for s, _ in logged] == [5, 10, 15, 15, 20, 25, 30]
  assert logged[2][1] == logged[3][1]
  assert any(f.startswith('events.out.tfevents') for f in os.listdir(os.path.join(broken, 'ctx')))


def test_trained_stage_loads_under_another_optimizer_but_does_not_resume(test_config,
                                                                          data_workdir, tmp_path):
  """Loading a stage reads only its parameters; resuming it under a different optimizer state
  (here a learning-rate schedule) fails with an error that says so."""
  config = copy.deepcopy(test_config)
  config.context.num_steps = 10
  workdir = str(tmp_path / 'run')
  os.makedirs(workdir)
  os.symlink(os.path.join(data_workdir, 'data'), os.path.join(workdir, 'data'))
  trained = _context_run(config, workdir)
  decayed = copy.deepcopy(config)
  decayed.context.lr_decay = True
  family = trainers.family_from_config(decayed)
  template = trainers.init_context_state(decayed, family, _norm(workdir, decayed),
                                         jax.random.PRNGKey(5))
  assert jax.tree.structure(template.opt_state) != jax.tree.structure(trained.opt_state)
  params = loop.load_params(os.path.join(workdir, 'ctx', 'checkpoints'), template)
  jax.tree.map(np.testing.assert_array_equal, params, trained.ema_params)
  decayed.context.num_steps = 20
  with pytest.raises(ValueError, match='does not match the training state of this config'):
    _context_run(decayed, workdir)


def test_pipeline_end_to_end(test_config, data_workdir):
  from mdx.evaluation import evaluate  # pylint: disable=g-import-not-at-top
  trainers.train_context(test_config, data_workdir)
  trainers.train_diffusion(test_config, data_workdir)
  trainers.train_diffusion(test_config, data_workdir, unconditional=True)
  records = evaluate(test_config, data_workdir)
  with open(os.path.join(data_workdir, 'eval', 'results.json')) as f:
    assert json.load(f) == records
  from mdx.evaluation import RESULT_KEYS  # pylint: disable=g-import-not-at-top
  assert all(set(r) == set(RESULT_KEYS) for r in records)
  by = {(r['method'], r['warm_start']): r for r in records}
  assert set(by) == {('Oracle', 'n/a'), ('Random', 'n/a'), ('UDiffuser', 'n/a'),
                     ('MetaDiffuser', 'expert'), ('MetaDiffuser', 'random')}
  assert by[('Oracle', 'n/a')]['normalized_score'] == pytest.approx(1.0)
  assert by[('Random', 'n/a')]['normalized_score'] == pytest.approx(0.0)
  r = by[('MetaDiffuser', 'expert')]
  assert r['num_tasks'] == 10 and r['episodes_per_task'] == 1
  assert -20 * 3 < r['mean_return'] <= 0  # Point-Robot returns: 20 steps of -distance
  for name in ('returns_per_task.png', 'paths.png', 'plan_vs_reached.png'):
    assert os.path.exists(os.path.join(data_workdir, 'eval', name)), name
  with open(os.path.join(data_workdir, 'eval', 'plan_vs_reached.json')) as f:
    gaps = json.load(f)['mean_abs_state_error_per_plan_step']
  assert set(gaps) == {'0.0', str(test_config.planner.dynamics_weight)}
  assert all(g[0] == pytest.approx(0.0, abs=1e-6) and len(g) == test_config.diffusion.horizon
             for g in gaps.values())  # plan step 0 is the inpainted current state
  # A finished stage is not retrained: the loop returns the restored state at once.
  state = trainers.train_context(test_config, data_workdir)
  assert int(state.step) == test_config.context.num_steps


def test_context_regularizers_by_hand(test_config, data_workdir):
  """The optional z terms of the context loss: the within-task share of the window embeddings'
  variance and mean ||z||^2, against numpy; both vanish from the loss at weight 0."""
  from mdx import data as mdata  # pylint: disable=g-import-not-at-top
  from mdx.nets import ContextModel  # pylint: disable=g-import-not-at-top
  family = trainers.family_from_config(test_config)
  data, _ = trainers.context_training_data(test_config, data_workdir, family)
  norm = mdata.init_normalizer(data)
  state = trainers.init_context_state(test_config, family, norm, jax.random.PRNGKey(0))
  model = trainers.build_context_model(test_config, family)
  seg = mdata.sample_segments(jax.random.PRNGKey(1), data, 6, history=4, horizon=4,
                              num_context=3)
  loss0, m = trainers.context_loss(model, state.params, norm, seg)
  w = np.asarray(model.apply(state.params, norm, seg.context,
                             method=ContextModel.encode_windows))  # [6, 3, C]
  within = w.var(axis=1).mean()
  total = w.reshape(-1, w.shape[-1]).var(axis=0).mean()
  np.testing.assert_allclose(m['z_within_task_fraction'], within / (total + 1e-6), rtol=1e-4)
  np.testing.assert_allclose(m['z_sq_norm'], np.square(w.mean(1)).sum(-1).mean(), rtol=1e-4)
  np.testing.assert_allclose(loss0, m['reward_mse'] + m['dynamics_mse'], rtol=1e-6)
  loss1, _ = trainers.context_loss(model, state.params, norm, seg, z_consistency=2.0,
                                   z_penalty=0.5)
  np.testing.assert_allclose(loss1, loss0 + 2.0 * m['z_within_task_fraction']
                             + 0.5 * m['z_sq_norm'], rtol=1e-5)
