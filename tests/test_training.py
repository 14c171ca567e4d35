"""Training: an interrupted run resumes to exactly the parameters of an unbroken one; metrics and
checkpoints land where the loop says; the end-to-end pipeline on the tiny test preset."""
import copy
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mdx import data as mdata
from mdx.envs import family_from_config
from mdx.methods.metadiffuser import context as ctx_stage
from mdx import training


class Interrupted(Exception):
  pass


def _norm(workdir, config):
  family = family_from_config(config)
  return mdata.init_normalizer(mdata.load_dataset(workdir, family, 'train', 'expert'))


def _context_run(config, workdir, *, fail_at=None):
  """The context stage's own pieces, with an optional crash at step `fail_at`."""
  family = family_from_config(config)
  norm = _norm(workdir, config)
  loaded = ctx_stage.load_train_tiers(workdir, family, config.context.tiers)
  data, tier_episodes = ctx_stage.context_training_data(config, loaded)
  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(0))
  state = ctx_stage.init_context_state(config, family, norm, init_rng)
  step = ctx_stage.make_context_step(config, family, jax.device_put(data), norm, tier_episodes)

  def maybe_crash(state, rng):
    if fail_at is not None and int(state.step) == fail_at:
      raise Interrupted()
    return step(state, rng)

  return training.train(os.path.join(workdir, 'ctx'), state, maybe_crash, train_rng,
                    num_steps=config.context.num_train_steps, log_every=5, checkpoint_every=10,
                    name='ctx')


def test_interrupted_run_resumes_to_the_same_parameters(test_config, data_workdir, tmp_path):
  config = copy.deepcopy(test_config)
  config.context.num_train_steps = 30
  broken = str(tmp_path / 'broken')
  os.makedirs(broken)
  os.symlink(os.path.join(data_workdir, 'data'), os.path.join(broken, 'data'))
  with pytest.raises(Interrupted):
    _context_run(config, broken, fail_at=17)  # dies between the checkpoints of steps 10 and 20
  assert training.latest_step(os.path.join(broken, 'ctx', 'checkpoints')) == 10
  resumed = _context_run(config, broken)
  unbroken = _context_run(config, data_workdir)
  assert int(resumed.step) == int(unbroken.step) == 30
  jax.tree.map(np.testing.assert_array_equal, resumed.params, unbroken.params)
  jax.tree.map(np.testing.assert_array_equal, resumed.ema_params, unbroken.ema_params)
  jax.tree.map(np.testing.assert_array_equal, resumed.opt_state, unbroken.opt_state)
  # A finished 20-step run trained on to 30 is the unbroken 30-step run too: the loop reads the
  # count only to stop, so `--extend` holds for a stage with a constant learning rate (the
  # denoisers offer it; the test preset's context model has no decay either, and is cheaper).
  assert not config.context.lr_decay
  extended = str(tmp_path / 'extended')
  os.makedirs(extended)
  os.symlink(os.path.join(data_workdir, 'data'), os.path.join(extended, 'data'))
  short = copy.deepcopy(config)
  short.context.num_train_steps = 20
  assert int(_context_run(short, extended).step) == 20
  longer = _context_run(config, extended)
  jax.tree.map(np.testing.assert_array_equal, longer.params, unbroken.params)
  jax.tree.map(np.testing.assert_array_equal, longer.ema_params, unbroken.ema_params)
  jax.tree.map(np.testing.assert_array_equal, longer.opt_state, unbroken.opt_state)
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
  config.context.num_train_steps = 10
  workdir = str(tmp_path / 'run')
  os.makedirs(workdir)
  os.symlink(os.path.join(data_workdir, 'data'), os.path.join(workdir, 'data'))
  trained = _context_run(config, workdir)
  decayed = copy.deepcopy(config)
  decayed.context.lr_decay = True
  family = family_from_config(decayed)
  template = ctx_stage.init_context_state(decayed, family, _norm(workdir, decayed),
                                          jax.random.PRNGKey(5))
  assert jax.tree.structure(template.opt_state) != jax.tree.structure(trained.opt_state)
  params = training.load_params(os.path.join(workdir, 'ctx', 'checkpoints'), template)
  jax.tree.map(np.testing.assert_array_equal, params, trained.ema_params)
  decayed.context.num_train_steps = 20
  with pytest.raises(ValueError, match='does not match the training state of this config'):
    _context_run(decayed, workdir)


def test_pipeline_end_to_end(test_config, data_workdir):
  """Every stage of every method of the test preset, then the evaluation of the validation split:
  the records' keys, the references' scores, the intervals and seed counts, the plots, the
  Figure-3 record, and the README's one-call policy acting like the evaluation's."""
  from mdx import methods  # pylint: disable=g-import-not-at-top
  from mdx.evaluation import RESULT_KEYS, evaluate  # pylint: disable=g-import-not-at-top
  from mdx import workdir as layout  # pylint: disable=g-import-not-at-top
  wanted = [methods.get_method(m) for m in test_config.eval.methods]
  for stage in dict.fromkeys(s for m in wanted for s in m.stages):
    stage.train(test_config, data_workdir, 0)
  records = evaluate(test_config, data_workdir, wanted, split='validation')
  out = layout.eval_dir(data_workdir, 'validation')
  with open(os.path.join(out, 'results.json')) as f:
    assert json.load(f) == records
  assert all(set(r) == set(RESULT_KEYS) and r['split'] == 'validation' for r in records)
  by = {(r['method'], r['warm_start']): r for r in records}
  assert set(by) == {('Oracle', 'n/a'), ('Random', 'n/a'), ('UDiffuser', 'n/a'),
                     ('MetaDiffuser', 'expert'), ('MetaDiffuser', 'random'),
                     ('PromptDT', 'expert'), ('PromptDT', 'random'), ('Ours+GT', 'n/a'),
                     ('PromptDT-FT', 'expert'), ('PromptDT-FT', 'random'),
                     ('MTDiff-P', 'expert'), ('MTDiff-P', 'random'),
                     ('PromptDiffuser', 'expert'), ('PromptDiffuser', 'random'),
                     ('MetaDiffuser-NoGuide', 'expert'), ('MetaDiffuser-NoGuide', 'random'),
                     ('CVAE-Planner', 'expert'), ('CVAE-Planner', 'random'),
                     ('FOCAL', 'expert'), ('FOCAL', 'random'), ('CORRO', 'expert'),
                     ('CORRO', 'random'), ('Ours+CORRO', 'expert'), ('Ours+CORRO', 'random')}
  assert by[('Oracle', 'n/a')]['normalized_score'] == pytest.approx(1.0)
  assert by[('Random', 'n/a')]['normalized_score'] == pytest.approx(0.0)
  r = by[('MetaDiffuser', 'expert')]
  assert r['num_tasks'] == 10 and r['episodes_per_task'] == 1
  assert (r['num_train_seeds'], r['num_eval_seeds']) == (1, test_config.eval.num_eval_seeds)
  assert by[('Oracle', 'n/a')]['num_train_seeds'] == 0
  assert r['ci_low'] <= r['normalized_score'] <= r['ci_high']
  assert r['return_ci_low'] <= r['mean_return'] <= r['return_ci_high']
  assert -20 * 3 < r['mean_return'] <= 0  # Point-Robot returns: 20 steps of -distance
  for name in ('returns_per_task.png', 'paths_MetaDiffuser.png', 'plan_vs_reached.png'):
    assert os.path.exists(os.path.join(out, name)), name
  with open(os.path.join(out, 'plan_vs_reached.json')) as f:
    fig3 = json.load(f)
  assert set(fig3['lambdas']) == {'0', f'{test_config.planner.dynamics_weight:g}'}
  for g in fig3['lambdas'].values():
    steps = g['mean_abs_gap_per_plan_step']
    assert len(steps) == test_config.diffusion.horizon and steps[0] == pytest.approx(0, abs=1e-6)
    assert g['ci_low'] <= g['mean_abs_gap'] <= g['ci_high']
  # The README's library example runs as written (test preset, this workdir) and acts like the
  # evaluation's policy.
  readme = open(os.path.join(os.path.dirname(os.path.dirname(__file__)), 'README.md')).read()
  section = readme[readme.index('## Using a trained method from your own code'):]
  start = section.index('```python\n') + len('```python\n')
  code = section[start:section.index('\n```', start)]
  code = code.replace("get_config('cpu')", "get_config('test')").replace(
      "'runs/point_robot'", repr(data_workdir))
  scope = {}
  exec(compile(code, 'README.md', 'exec'), scope)  # pylint: disable=exec-used
  family = scope['family']
  evaluated = methods.get_method('MetaDiffuser').make_policy(test_config, data_workdir, 0, family)
  np.testing.assert_array_equal(scope['action'], scope['first_action'](
      evaluated, jax.random.PRNGKey(0), jnp.zeros((10, family.obs_dim))))
  assert scope['action'].shape == (10, family.act_dim)
  assert float(np.abs(scope['action']).max()) <= family.action_high + 1e-6
  assert scope['episodes'].returns.shape == (10,)
  # A finished stage is not retrained: the loop returns the restored state at once.
  state = ctx_stage.train_context(test_config, data_workdir, 0)
  assert int(state.step) == test_config.context.num_train_steps
  # CORRO's diagnostics read the trained stages: a probe per tier, the critic along expert data.
  from mdx.methods.corro import diagnose  # pylint: disable=g-import-not-at-top
  probe = diagnose.task_probe(test_config, data_workdir, 0, family, 'validation', ('expert',))
  assert 0.0 <= probe['expert']['nearest_task'] <= 1.0 and probe['expert']['chance'] == 0.1
  checks = diagnose.critic_check(test_config, data_workdir, 0, family, steps=(0, 1))
  assert [c['step'] for c in checks] == [0, 1]
  assert all(np.isfinite(v) for c in checks for v in c.values())


def test_no_key_is_both_split_and_folded_in(test_config, data_workdir, monkeypatch):
  """Key hygiene of the training steps (STYLE 11, 17): a key is consumed once, by one `split` or
  one `fold_in`; never both, never twice (the denoiser's context-noise key used to be a `fold_in`
  of the segment sampler's key, which the sampler also split)."""
  from mdx.methods.metadiffuser import denoiser as den_stage  # pylint: disable=g-import-not-at-top
  family = family_from_config(test_config)
  norm = _norm(data_workdir, test_config)
  loaded = ctx_stage.load_train_tiers(data_workdir, family, ('expert', *test_config.context.tiers))
  data, tiers = ctx_stage.context_training_data(test_config, loaded)
  model = ctx_stage.build_context_model(test_config, family)
  cstate = ctx_stage.init_context_state(test_config, family, norm, jax.random.PRNGKey(0))
  encode = lambda seg: model.apply(cstate.params, norm, seg.context, method=model.encode)
  dstate = den_stage.init_denoiser_state(test_config, family, jax.random.PRNGKey(0))
  member = {'norm': norm, 'label': None, 'context_dropout': jnp.float32(0.3)}
  updates = [  # the steps' Python bodies (one run jits them, a stack vmaps them)
      (ctx_stage.make_context_update(test_config, family, data, norm, tiers), cstate, ()),
      (den_stage.make_diffusion_update(test_config, family, loaded['expert'],
                                       lambda member, seg: encode(seg), context_data=data,
                                       context_tier_episodes=tiers), dstate, (member,))]
  for update, state, extra in updates:
    consumed = []
    split, fold_in = jax.random.split, jax.random.fold_in
    monkeypatch.setattr(jax.random, 'split', lambda k, *a, **kw: (consumed.append(k), split(
        k, *a, **kw))[1])
    monkeypatch.setattr(jax.random, 'fold_in', lambda k, d: (consumed.append(k), fold_in(k, d))[1])
    jax.eval_shape(update, state, jax.random.PRNGKey(1), *extra)  # the Python body, traced
    monkeypatch.undo()
    assert len(consumed) >= 4  # the trace ran (jit caches would skip the Python body)
    ids = [id(k) for k in consumed]
    assert len(ids) == len(set(ids)), 'a key was consumed twice'


def test_ours_gt_contexts_reach_the_denoiser(test_config, data_workdir):
  """Ours+GT's z is the task's standardized parameter vector (train tasks: mean 0, std 1), it
  needs no warm-start data, and the plan changes with the task parameters."""
  from mdx import methods  # pylint: disable=g-import-not-at-top
  gt = methods.get_method('Ours+GT')
  for stage in gt.stages:  # trained by the end-to-end test (a finished stage returns at once)
    stage.train(test_config, data_workdir, 0)
  family = family_from_config(test_config)
  train_z = ctx_stage.gt_contexts(family, family.train_tasks().params)
  np.testing.assert_allclose(train_z.mean(0), 0.0, atol=1e-5)
  np.testing.assert_allclose(train_z.std(0), 1.0, atol=1e-4)
  policy = gt.make_policy(test_config, data_workdir, 0, family)
  tasks = family.split_tasks('validation')
  z = policy.init(jax.random.PRNGKey(0), tasks, None)
  np.testing.assert_allclose(z, ctx_stage.gt_contexts(family, tasks.params), atol=1e-6)
  obs = jnp.zeros((tasks.task_id.shape[0], family.obs_dim))
  act = jax.jit(lambda z: policy.act(z, obs, jax.random.PRNGKey(1))[0])
  moved = ctx_stage.gt_contexts(family, -tasks.params)  # the mirrored goals
  assert float(jnp.abs(act(z) - act(moved)).max()) > 1e-3


def test_ours_corro_contexts_are_corros_embedding_of_the_warm_start(test_config, data_workdir):
  """Ours+CORRO's z is the renormalized mean of CORRO's encoder over the transitions of the
  history windows that MetaDiffuser's encoder would read, and its reward and dynamics models
  and denoiser take that width."""
  from mdx import data as mdata  # pylint: disable=g-import-not-at-top
  from mdx import methods  # pylint: disable=g-import-not-at-top
  from mdx.methods.corro import model as corro_model  # pylint: disable=g-import-not-at-top
  from mdx.methods.corro import train as corro_train  # pylint: disable=g-import-not-at-top
  from mdx.methods.metadiffuser.policy import infer_contexts  # pylint: disable=g-import-not-at-top
  method = methods.get_method('Ours+CORRO')
  for stage in method.stages:  # trained by the end-to-end test (a finished stage returns at once)
    stage.train(test_config, data_workdir, 0)
  family = family_from_config(test_config)
  policy = method.make_policy(test_config, data_workdir, 0, family)
  tasks = family.split_tasks('validation')
  warm = jax.device_put(mdata.load_dataset(data_workdir, family, 'validation', 'expert'))
  z = policy.init(jax.random.PRNGKey(0), tasks, warm)
  assert z.shape == (tasks.task_id.shape[0], test_config.corro.latent_dim)
  np.testing.assert_allclose(jnp.linalg.norm(z, axis=-1), 1.0, rtol=1e-5)
  c = test_config.context
  windows = infer_contexts(lambda w: w, warm, jax.random.PRNGKey(0), history=c.history,
                           num_context=c.num_context)  # the same windows, unencoded
  params = corro_train.load_encoder(test_config, data_workdir, 0, family)
  o, a = family.obs_dim, family.act_dim
  rows = windows.at[..., o:o + a].divide(family.action_high)
  per = corro_model.build_encoder(test_config).apply(params, rows).reshape(z.shape[0], -1,
                                                                           z.shape[1]).mean(1)
  np.testing.assert_allclose(z, per / jnp.linalg.norm(per, axis=-1, keepdims=True), atol=1e-5)
  obs = jnp.zeros((tasks.task_id.shape[0], family.obs_dim))
  action, _, _ = jax.jit(lambda z: policy.act(z, obs, jax.random.PRNGKey(1)))(z)
  assert action.shape == (tasks.task_id.shape[0], family.act_dim)


def _true_task_run(test_config, data_workdir, tmp_path, section: str):
  """A copy of the test config with `<section>.context = 'task'`, a workdir holding only the
  datasets (linked), and the family."""
  config = copy.deepcopy(test_config)
  config[section].context = 'task'
  workdir = str(tmp_path / 'task')
  os.makedirs(workdir)
  os.symlink(os.path.join(data_workdir, 'data'), os.path.join(workdir, 'data'))
  return config, workdir, family_from_config(config)


def test_corro_sac_on_the_true_task_needs_no_encoder(test_config, data_workdir, tmp_path):
  """`corro.context = 'task'`: the SAC stage trains in a workdir with datasets only (no encoder
  stage), its critic reads `[s, standardized task parameters]`, its policy's z is those
  parameters without warm-start data, and the diagnostics' critic check runs on it."""
  from mdx.methods.corro import diagnose, policy as corro_policy  # pylint: disable=g-import-not-at-top
  from mdx.methods.corro import train as corro_train  # pylint: disable=g-import-not-at-top
  config, workdir, family = _true_task_run(test_config, data_workdir, tmp_path, 'corro')
  state = corro_train.train_sac(config, workdir, 0)
  assert int(state.step) == config.corro.sac_num_calls
  assert not os.path.exists(os.path.join(workdir, 'seed_0', corro_train.ENCODER_STAGE))
  params = state.sac.critic.params
  first = jax.tree.leaves(params)[[leaf.ndim for leaf in jax.tree.leaves(params)].index(3)]
  assert first.shape[-2] == family.obs_dim + family.task_dim + family.act_dim
  tasks = family.split_tasks('validation')
  loaded = corro_train.load_corro(config, workdir, 0, family)  # no encoder stage to load
  assert loaded['encoder'] is None
  pol = corro_policy.corro_policy(config, family, loaded)
  z = pol.init(jax.random.PRNGKey(0), tasks, None)
  np.testing.assert_allclose(z, family.standardize_params(tasks.params), atol=1e-6)
  action, _, _ = pol.act(z, jnp.zeros((tasks.task_id.shape[0], family.obs_dim)),
                         jax.random.PRNGKey(1))
  assert float(jnp.abs(action).max()) <= family.action_high + 1e-6
  assert diagnose.task_probe(config, workdir, 0, family, 'validation', ('expert',)) == {}
  checks = diagnose.critic_check(config, workdir, 0, family, steps=(0,))
  assert all(np.isfinite(v) for v in checks[0].values())


def test_focal_on_the_true_task_reads_the_standardized_parameters(test_config, data_workdir,
                                                                   tmp_path):
  """`focal.context = 'task'`: BRAC reads `[s, standardized task parameters]` in training and
  acting, and the policy needs no warm-start data."""
  from mdx.methods.focal import policy as focal_policy  # pylint: disable=g-import-not-at-top
  from mdx.methods.focal import train as focal_train  # pylint: disable=g-import-not-at-top
  config, workdir, family = _true_task_run(test_config, data_workdir, tmp_path, 'focal')
  state = focal_train.train_focal(config, workdir, 0)
  assert int(state.step) == config.focal.num_iterations
  kernel = state.brac.actor.params['params']
  first = [leaf for leaf in jax.tree.leaves(kernel) if leaf.ndim == 2][0]
  assert first.shape[0] == family.obs_dim + family.task_dim
  pol = focal_policy.focal_policy(config, family, focal_train.load_focal(config, workdir, 0,
                                                                         family))
  tasks = family.split_tasks('validation')
  z = pol.init(jax.random.PRNGKey(0), tasks, None)
  np.testing.assert_allclose(z, family.standardize_params(tasks.params), atol=1e-6)
  with pytest.raises(ValueError, match='task_params'):
    focal_train.make_update(config, family)


def _write_three_steps(writer):
  writer.write_hparams({'learning_rate': 1e-3})
  for step in (1, 2, 3):
    writer.write_scalars(step, {'train/loss': 1.0 / step})
  writer.close()


def test_tensorboard_reads_the_event_files_and_its_command_is_installed(tmp_path):
  import sys  # pylint: disable=g-import-not-at-top
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  _write_three_steps(training.create_writer(str(tmp_path), to_log=False))
  events = event_accumulator.EventAccumulator(str(tmp_path))
  events.Reload()
  loss = events.Scalars('train/loss')
  assert [e.step for e in loss] == [1, 2, 3]
  np.testing.assert_allclose([e.value for e in loss], [1.0, 0.5, 1 / 3], rtol=1e-6)
  # The README's `tensorboard --logdir runs/demo` runs from the environment mdx installed into.
  assert os.access(os.path.join(os.path.dirname(sys.executable), 'tensorboard'), os.X_OK)


def test_wandb_writer_offline(tmp_path, monkeypatch):
  import glob  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv('WANDB_SILENT', 'true')
  options = {'project': 'mdx-test', 'entity': '', 'mode': 'offline'}
  writer = training.create_writer(str(tmp_path), to_log=False, wandb=options,
                                  name='denoiser/seed_0')
  _write_three_steps(writer)
  runs = glob.glob(str(tmp_path / 'wandb' / 'offline-run-*' / 'run-mdx-*.wandb'))
  assert len(runs) == 1, runs
  # wandb's service process writes the run's records (protobuf, keys and values as JSON text);
  # on a loaded machine the file can lag `finish()` by a moment (seen in a full suite run).
  for _ in range(100):
    record = open(runs[0], 'rb').read()
    if repr(1 / 3).encode() in record and b'learning_rate' in record:
      break
    time.sleep(0.2)
  logs = sorted(glob.glob(str(tmp_path / 'wandb' / 'offline-run-*' / 'logs' / '*.log')))
  why = f'{len(record)} bytes in {runs[0]}; logs: {logs}'
  assert record.count(b'train/loss') >= 3 and repr(1 / 3).encode() in record, why
  assert b'learning_rate' in record, why
  # The same run folder resumes the same wandb run (its id comes from the folder).
  again = training.writers.WandbWriter(str(tmp_path), project='mdx-test', mode='offline')
  assert again.run.id == os.path.basename(runs[0])[len('run-'):-len('.wandb')]
  again.close()
  with pytest.raises(ValueError, match='config.wandb.mode'):
    training.writers.WandbWriter(str(tmp_path), project='mdx-test', mode='cloud')
