"""Nothing silently wrong: corrupt checkpoints, NaN, stale stages, concurrent runs, nonsense
settings and damaged datasets each give a named error (or the previous intact checkpoint)."""
import copy
import dataclasses
import glob
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mdx import data as mdata
from mdx import io, provenance, training
from mdx import workdir as layout
from mdx.config_check import ConfigError, check_config
from mdx.data import collect_datasets
from mdx.data.trajectories import DatasetError
from mdx.envs import family_from_config
from mdx.evaluation.evaluate import run_method
from mdx.evaluation.policy import stateless
from mdx.methods.base import Method, Stage
from mdx.training import checkpoints


# --- checkpoints --------------------------------------------------------------------------------

def _state(value: float, n: int = 4096):
  params = {'w': jnp.full((n,), value, jnp.float32), 'b': jnp.arange(8, dtype=jnp.float32)}
  return training.TrainState.create(params, optax.adam(1e-3))


def _flip_all_data_files(step_dir):
  files = [f for f in glob.glob(os.path.join(step_dir, 'default', '**', '*'), recursive=True)
           if os.path.isfile(f) and '/d/' in f]
  assert files
  for f in files:
    b = bytearray(open(f, 'rb').read())
    for i in range(len(b) // 4, len(b)):
      b[i] ^= 0xFF
    open(f, 'wb').write(bytes(b))


def test_corrupt_checkpoint_is_named_and_the_previous_one_used(tmp_path, capsys):
  ckpt = str(tmp_path / 'checkpoints')
  with checkpoints.checkpoint_manager(ckpt) as m:
    checkpoints.save(m, 1, _state(1.0))
    checkpoints.save(m, 2, _state(2.0))
  _flip_all_data_files(os.path.join(ckpt, '2'))
  template = _state(0.0)
  with checkpoints.checkpoint_manager(ckpt) as m:
    restored, step = checkpoints.restore(m, template)
  out = capsys.readouterr().out
  assert step == 1 and 'step 2) is CORRUPT' in out and 'using step 1 instead' in out
  np.testing.assert_array_equal(restored.params['w'], 1.0)
  # The evaluation's partial restore of the parameters falls back alike.
  params = training.load_params(ckpt, template)
  np.testing.assert_array_equal(params['w'], 1.0)
  _flip_all_data_files(os.path.join(ckpt, '1'))
  with pytest.raises(training.CorruptCheckpointError, match='every kept checkpoint is corrupt'):
    training.load_params(ckpt, template)


def test_digest_catches_changed_bytes_and_non_finite_parameters(tmp_path):
  ckpt = str(tmp_path / 'checkpoints')
  with checkpoints.checkpoint_manager(ckpt) as m:
    checkpoints.save(m, 1, _state(1.0))
  # Bytes that still decode (the digest is the only witness): edit the recorded hash instead of
  # the data, which is equivalent for the verifier.
  path = os.path.join(ckpt, '1', checkpoints.DIGEST_FILE)
  digest = json.load(open(path))
  digest['params/w']['sha256'] = '0' * 64
  json.dump(digest, open(path, 'w'))
  with pytest.raises(training.CorruptCheckpointError, match='params/w: its bytes differ'):
    training.load_params(ckpt, _state(0.0))
  nan_dir = str(tmp_path / 'nan')
  with checkpoints.checkpoint_manager(nan_dir) as m:
    m.save(1, args=checkpoints.ocp.args.StandardSave(_state(np.nan)))  # no digest: old mdx
  with pytest.raises(training.CorruptCheckpointError, match='non-finite values'):
    training.load_params(nan_dir, _state(0.0))


def test_checkpoint_of_another_model_is_a_mismatch_not_corruption(tmp_path):
  ckpt = str(tmp_path / 'checkpoints')
  with checkpoints.checkpoint_manager(ckpt) as m:
    checkpoints.save(m, 1, _state(1.0, n=64))
  with pytest.raises(training.CheckpointMismatchError,
                     match=r'params/w: checkpoint float32\[64\], this config float32\[32\]'):
    training.load_params(ckpt, _state(0.0, n=32))


def test_non_finite_loss_stops_the_stage_before_saving(tmp_path):
  def step_fn(state, rng):
    del rng
    loss = jnp.where(state.step >= 7, jnp.nan, 1.0)
    return state.replace(step=state.step + 1), {'loss': loss, 'grad_norm': jnp.ones(())}

  with pytest.raises(training.NonFiniteError, match=r'train/loss is not finite .* at step 8'):
    training.train(str(tmp_path), _state(1.0), step_fn, jax.random.PRNGKey(0), num_steps=20,
                   log_every=5, checkpoint_every=5, name='toy')
  assert training.latest_step(str(tmp_path / 'checkpoints')) == 5


# --- settings -----------------------------------------------------------------------------------

@pytest.mark.parametrize('field,value,expected', [
    ('diffusion.horizon', 0, 'diffusion.horizon = 0: must be an integer in [1, 20]'),
    ('diffusion.horizon', -4, 'diffusion.horizon = -4'),
    ('diffusion.horizon', 5, 'diffusion.horizon = 5: must be divisible by'),
    ('context.history', 0, 'context.history = 0'),
    ('context.batch_size', 0, 'context.batch_size = 0'),
    ('diffusion.context_dropout', 1.5, 'diffusion.context_dropout = 1.5: must be a finite number '
     'in [0, 1)'),
    ('context.num_train_steps', -5, 'context.num_train_steps = -5'),
    ('planner.guide_scale', float('nan'), 'planner.guide_scale = nan'),
    ('planner.noise_scale', 1e30, 'planner.noise_scale = 1e+30: must be a finite number in [0, 1]'),
    ('planner.clip_denoised', 0.5, 'must be 0 (no clip) or >= 1'),
    ('context.learning_rate', -1e-3, 'context.learning_rate = -0.001: must be a finite number > 0'),
    ('planner.sampler', 'euler', "must be one of ['ddpm', 'ddim']"),
    ('planner.num_sample_steps', 3, "must be 0 with planner.sampler = 'ddpm'"),
    ('planner.compute_dtype', 'float16', "must be one of ['float32', 'bfloat16']"),
    ('data.random_from', 'sideways', "must be one of ['uniform', 'checkpoint']"),
    ('focal.meta_batch', 0, 'focal.meta_batch = 0: must be an integer >= 1'),
    ('corro.temperature', 0.0, 'corro.temperature = 0.0: must be a finite number > 0'),
    ('prompt_dt.prompt_tier', 'best', "prompt_dt.prompt_tier = 'best': must be one of ['', "
     "'expert', 'medium', 'random']"),
    ('data.random_from', 'checkpoint', 'point_robot_random.msgpack (an early PPO checkpoint'),
])
def test_bad_settings_are_named_before_any_work(test_config, field, value, expected):
  config = copy.deepcopy(test_config)
  section, name = field.split('.')
  config[section][name] = value
  with pytest.raises(ConfigError) as err:
    check_config(config)
  assert expected in str(err.value)


def test_clip_zero_means_no_clip(test_config):
  config = copy.deepcopy(test_config)
  config.planner.clip_denoised = 0.0
  check_config(config)
  from mdx.methods.metadiffuser.policy import plan_config  # pylint: disable=g-import-not-at-top
  assert plan_config(config).clip_denoised is None


# --- stage records, downstream redo, markers ------------------------------------------------------

def _toy_stages(log):
  def trainer(name):
    def train(config, workdir, seed):
      log.append(name)
      os.makedirs(layout.stage_dir(workdir, name, seed), exist_ok=True)
      if config.context.get('crash', False) and name == 'b':
        raise RuntimeError('killed')
    return train
  a = Stage(name='a', train=trainer('a'), num_train_steps=lambda c: 1, reads=('context',))
  b = Stage(name='b', train=trainer('b'), num_train_steps=lambda c: 1,
            reads=('context.history', 'diffusion'), after=('a',))
  return a, b


def test_a_changed_config_never_reuses_a_stale_stage(test_config, tmp_path):
  workdir, log = str(tmp_path), []
  a, b = _toy_stages(log)
  config = copy.deepcopy(test_config)
  for s in (a, b):
    assert provenance.run_stage(config, workdir, s, 0)
  assert not provenance.run_stage(config, workdir, a, 0)  # done with this config: skipped
  quiet = copy.deepcopy(config)
  quiet.log_every = 7  # not read by any stage
  assert provenance.check_stage(quiet, workdir, b, 0) == 'done'
  changed = copy.deepcopy(config)
  changed.diffusion.horizon = 8
  assert provenance.check_stage(changed, workdir, a, 0) == 'done'  # a does not read it
  with pytest.raises(provenance.StaleStageError, match=r'diffusion.horizon: 4 -> 8[\s\S]*--redo=b'):
    provenance.check_stage(changed, workdir, b, 0)
  # Redoing a redoes b too (b loaded a's outputs); the old folders are moved aside.
  redone = provenance.redo_stages(workdir, [a, b], ['a'], [0])
  assert [s.name for s in redone] == ['a', 'b']
  assert len(glob.glob(os.path.join(workdir, 'seed_0', 'a.stale-*'))) == 1
  assert provenance.check_stage(config, workdir, a, 0) == 'absent'
  # Retraining a alone makes the kept b stale: it was trained on the old a.
  log.clear()
  provenance.run_stage(config, workdir, a, 0)
  shutil.copytree(glob.glob(os.path.join(workdir, 'seed_0', 'b.stale-*'))[0],
                  layout.stage_dir(workdir, 'b', 0))
  with pytest.raises(provenance.StaleStageError, match=r'a \(seed 0\): run'):
    provenance.check_stage(config, workdir, b, 0)


def test_an_excepted_field_does_not_make_a_stage_stale(test_config, tmp_path):
  """UDiffuser reads the denoiser's fields but its step count ('-diffusion.num_train_steps'),
  also against a record written while it still held that field."""
  from mdx.methods import REGISTRY  # pylint: disable=g-import-not-at-top
  u = REGISTRY['UDiffuser'].stages[0]
  workdir, config = str(tmp_path), copy.deepcopy(test_config)
  provenance.write_record(config, workdir, u, 0, status='done', run_id='r')
  assert 'diffusion.num_train_steps' not in provenance.read_record(workdir, u.name, 0)['config']
  assert 'diffusion.horizon' in provenance.read_record(workdir, u.name, 0)['config']
  longer = copy.deepcopy(config)
  longer.diffusion.num_train_steps += 100
  assert provenance.check_stage(longer, workdir, u, 0) == 'done'
  path = provenance.record_path(workdir, u.name, 0)
  rec = json.load(open(path))
  rec['config']['diffusion.num_train_steps'] = 1  # an older record
  io.write_json(path, rec)
  assert provenance.check_stage(longer, workdir, u, 0) == 'done'
  other = copy.deepcopy(config)
  other.diffusion.horizon *= 2
  with pytest.raises(provenance.StaleStageError, match=r'diffusion.horizon'):
    provenance.check_stage(other, workdir, u, 0)


def test_no_evaluation_knob_makes_a_trained_stage_stale(test_config, tmp_path):
  """The knobs an evaluation sweeps (Prompt-DT's target return, MTDiff's CFG weight, ...) are read
  by policies only: no stage records them, so evaluating at another value never asks for a
  retrain; a field the stage trains with still does."""
  from mdx.methods import REGISTRY  # pylint: disable=g-import-not-at-top
  knobs = {k for m in REGISTRY.values() for k in m.sweepable}
  for method in REGISTRY.values():
    for stage in method.stages:
      read = provenance.fields(test_config, stage.reads)
      assert not [k for k in read if k.rsplit('.', 1)[-1] in knobs], (method.name, stage.name)
  stage, workdir = REGISTRY['PromptDT'].stages[0], str(tmp_path)
  provenance.write_record(test_config, workdir, stage, 0, status='done', run_id='r')
  other_target = copy.deepcopy(test_config)
  other_target.prompt_dt.target_return -= 50
  assert provenance.check_stage(other_target, workdir, stage, 0) == 'done'
  wider = copy.deepcopy(test_config)
  wider.prompt_dt.embed_dim *= 2
  with pytest.raises(provenance.StaleStageError, match=r'prompt_dt.embed_dim'):
    provenance.check_stage(wider, workdir, stage, 0)


def test_a_field_added_later_compares_equal_at_the_value_that_reproduces_old_runs():
  """An evaluation recorded before `planner.compute_dtype` existed is current for a config at
  'float32' (what it computed with), and stale for 'bfloat16'."""
  old = {'planner.sampler': 'ddpm'}
  assert provenance.differences(old, dict(old, **{'planner.compute_dtype': 'float32'})) == []
  assert provenance.differences(old, dict(old, **{'planner.compute_dtype': 'bfloat16'})) == [
      'planner.compute_dtype: "float32" -> "bfloat16"']
  assert provenance.differences(old, dict(old, **{'planner.other': 1})) == [
      'planner.other: absent -> 1']


def test_extend_trains_a_finished_stage_on_to_a_raised_step_count(test_config, tmp_path,
                                                                  monkeypatch):
  workdir, log = str(tmp_path), []
  a, _ = _toy_stages(log)
  a = dataclasses.replace(a, num_train_steps=lambda c: c.context.num_train_steps,
                          steps_field='context.num_train_steps',
                          train_stack=lambda members: log.append(('stack', len(members))))
  fixed = dataclasses.replace(a, steps_field=None)
  config = copy.deepcopy(test_config)
  assert provenance.run_stage(config, workdir, a, 0)
  first = provenance.read_record(workdir, 'a', 0)
  longer = copy.deepcopy(config)
  longer.context.num_train_steps += 10
  with pytest.raises(provenance.StaleStageError, match='context.num_train_steps'):
    provenance.check_stage(longer, workdir, a, 0)  # only when asked
  with pytest.raises(provenance.StaleStageError, match='needs its checkpoints'):
    provenance.check_stage(longer, workdir, a, 0, extend=True)  # nothing to train on from
  monkeypatch.setattr(provenance, '_checkpoint_step', lambda *args: 1)  # the toy saves none
  with pytest.raises(provenance.StaleStageError):
    provenance.check_stage(longer, workdir, fixed, 0, extend=True)  # a stage that offers it
  fewer = copy.deepcopy(config)
  fewer.context.num_train_steps -= 1
  both = copy.deepcopy(longer)
  both.context.history += 1
  for other in (fewer, both):  # a lowered count, or another change beside it: stale
    with pytest.raises(provenance.StaleStageError):
      provenance.check_stage(other, workdir, a, 0, extend=True)
  assert provenance.check_stage(longer, workdir, a, 0, extend=True) == 'extend'
  # Seed 0 extends, seed 1 is new: not one stack (a stack resumes from the members' lowest step).
  trained = provenance.run_members(a, [(longer, workdir, 0), (longer, workdir, 1)], extend=True)
  assert [s for _, _, s in trained] == [0, 1] and log == ['a', 'a', 'a']
  rec = provenance.read_record(workdir, 'a', 0)
  assert rec['status'] == 'done' and rec['run_id'] != first['run_id']  # evaluations go stale
  assert rec['extended_from'] == {'run_id': first['run_id'],
                                  'context.num_train_steps': config.context.num_train_steps}
  assert rec['config']['context.num_train_steps'] == longer.context.num_train_steps
  assert 'extended_from' not in provenance.read_record(workdir, 'a', 1)
  assert not provenance.run_stage(longer, workdir, a, 0, extend=True)  # done: skipped
  # An extension killed before its end, then raised again, still names the finished run.
  path = provenance.record_path(workdir, 'a', 0)
  io.write_json(path, dict(json.load(open(path)), status='running'))
  longest = copy.deepcopy(longer)
  longest.context.num_train_steps += 10
  assert provenance.run_stage(longest, workdir, a, 0, extend=True)
  assert provenance.read_record(workdir, 'a', 0)['extended_from'] == rec['extended_from']
  from mdx.methods import REGISTRY  # pylint: disable=g-import-not-at-top
  flat = provenance.flatten(test_config)
  offered = {st.name: st for m in REGISTRY.values() for st in m.stages if st.steps_field}
  assert {'diffusion', 'udiffuser', 'gt_diffusion', 'corro_diffusion', 'corro_sac'} <= set(offered)
  for st in offered.values():  # the field is the count the stage completes at
    assert flat[st.steps_field] == st.num_train_steps(test_config), st.name


def test_the_completion_marker_is_written_last(test_config, tmp_path):
  workdir, log = str(tmp_path), []
  a, b = _toy_stages(log)
  config = copy.deepcopy(test_config)
  provenance.run_stage(config, workdir, a, 0)
  config.context.crash = True
  with pytest.raises(RuntimeError, match='killed'):
    provenance.run_stage(config, workdir, b, 0)
  assert provenance.read_record(workdir, 'b', 0)['status'] == 'running'
  assert provenance.check_stage(config, workdir, b, 0) == 'partial'  # resumes, not "done"


def test_a_second_process_cannot_take_the_workdir(tmp_path):
  with layout.lock(str(tmp_path), 'first'):
    with pytest.raises(layout.WorkdirLockedError, match=rf'pid {os.getpid()}: first'):
      with layout.lock(str(tmp_path), 'second'):
        pass
  with layout.lock(str(tmp_path), 'third'):  # released on exit
    pass


# --- datasets -----------------------------------------------------------------------------------

def _copy_dataset(data_workdir, tmp_path, split='train', tier='expert'):
  src = layout.dataset_dir(data_workdir, split, tier)
  dst = layout.dataset_dir(str(tmp_path), split, tier)
  shutil.copytree(src, dst)
  return dst


def _rewrite(path, **changes):
  arrays = dict(np.load(os.path.join(path, 'data.npz')))
  for k, fn in changes.items():
    arrays[k] = fn(arrays[k])
  np.savez(os.path.join(path, 'data.npz'), **arrays)


@pytest.mark.parametrize('field,change,expected', [
    ('observations', lambda x: np.where(np.arange(x.size).reshape(x.shape) == 0, 1e30, x),
     "'observations' reaches 1e+30 in absolute value, above the family's bound 2"),
    ('actions', lambda x: x * 2, "'actions' span"),
    ('valid', lambda x: np.zeros_like(x), "'valid' is all False"),
    ('valid', lambda x: np.where(np.arange(x.shape[-1]) == 1, False, x),
     "'valid' is not a prefix of the episode"),
])
def test_out_of_range_datasets_are_named(test_config, data_workdir, tmp_path, field, change,
                                         expected):
  path = _copy_dataset(data_workdir, tmp_path)
  _rewrite(path, **{field: change})
  family = family_from_config(test_config)
  with pytest.raises(DatasetError) as err:
    mdata.load_dataset(str(tmp_path), family, 'train', 'expert')
  assert expected in str(err.value) and 'delete that folder' in str(err.value)


def test_collect_checks_what_it_keeps(test_config, data_workdir, tmp_path, capsys):
  workdir = str(tmp_path)
  shutil.copytree(os.path.join(data_workdir, 'data'), os.path.join(workdir, 'data'))
  family = family_from_config(test_config)
  os.makedirs(os.path.join(workdir, 'data', '.tmp-killed'))
  collect_datasets(test_config, workdir, family)  # everything kept, after a full check
  assert 'removed' in capsys.readouterr().out
  assert not os.path.exists(os.path.join(workdir, 'data', '.tmp-killed'))
  other = copy.deepcopy(test_config)
  other.seed = 1
  with pytest.raises(DatasetError, match=r"seed: 0 in meta.json, 1 in this config"):
    collect_datasets(other, workdir, family)
  with open(os.path.join(layout.dataset_dir(workdir, 'test', 'random'), 'data.npz'), 'r+b') as f:
    f.truncate(100)
  with pytest.raises(DatasetError, match=r'test_random[\s\S]*delete that folder'):
    collect_datasets(test_config, workdir, family)


# --- evaluation ---------------------------------------------------------------------------------

def test_non_finite_actions_fail_the_evaluation_naming_the_task(test_config, data_workdir):
  family = family_from_config(test_config)
  nan = stateless(lambda p, tasks, obs, rng: jnp.where(
      tasks.task_id[:, None] == family.num_tasks + 3, jnp.nan, jnp.zeros_like(obs)))
  method = Method(name='NaN', make_policy=lambda c, w, s, f: nan)
  with pytest.raises(FloatingPointError,
                     match=rf"NaN on validation: .* warm start 'n/a', task {family.num_tasks + 3}"):
    run_method(test_config, data_workdir, method, family, 'validation')


def test_a_sweep_keeps_its_finite_settings_and_fails_only_when_none_is(test_config,
                                                                       data_workdir, capsys):
  """A guide scale that diverges (here a knob above 1 gives NaN actions) is left out of a swept
  evaluation and named; the other settings are scored; nothing left to score still raises."""
  from mdx.sweep import parse_sweep, sweep_key  # pylint: disable=g-import-not-at-top
  family = family_from_config(test_config)

  def make_policy(config, workdir, seed, family, traced=()):
    del config, workdir, seed, traced
    act = lambda p, tasks, obs, rng: jnp.where(  # noqa: E731
        p['knobs']['guide_scale'] > 1.0, jnp.nan, 0.0) * jnp.ones((obs.shape[0], family.act_dim))
    return stateless(act, params={'knobs': {'guide_scale': jnp.zeros(())}})

  method = Method(name='Knob', make_policy=make_policy, sweepable=('guide_scale',))
  per_tier, _ = run_method(test_config, data_workdir, method, family, 'validation',
                           settings=parse_sweep('guide_scale=0.5,2,1'))
  assert sorted(k for _, k in per_tier) == sorted(
      sweep_key({'guide_scale': v}) for v in (0.5, 1.0))
  assert "setting {'guide_scale': 2.0} dropped" in capsys.readouterr().out
  with pytest.raises(FloatingPointError, match=r"Knob on validation: .*setting \{'guide_scale'"):
    run_method(test_config, data_workdir, method, family, 'validation',
               settings=parse_sweep('guide_scale=2,3'))


def test_a_killed_evaluation_leaves_no_completion_marker(test_config, data_workdir, tmp_path):
  """`results.json` goes first (renamed `.previous`) and comes back last: an evaluation killed in
  its analyses (here one that raises) leaves no marker, so the rerun redoes it."""
  from mdx import methods  # pylint: disable=g-import-not-at-top
  from mdx.evaluation import evaluate  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path)
  os.symlink(os.path.join(data_workdir, 'data'), os.path.join(workdir, 'data'))
  refs = [methods.get_method('Oracle'), methods.get_method('Random')]
  evaluate(test_config, workdir, refs, split='validation')
  marker = os.path.join(layout.eval_dir(workdir, 'validation'), 'results.json')
  assert os.path.exists(marker)
  with open(os.path.join(layout.eval_dir(workdir, 'validation'), 'config.json')) as f:
    assert json.load(f) == json.loads(test_config.to_json_best_effort())  # its own config

  def killed(config, workdir, split, out_dir):
    raise KeyboardInterrupt()

  dying = Method(name='Dying', make_policy=refs[0].make_policy, analyses=(killed,))
  with pytest.raises(KeyboardInterrupt):
    evaluate(test_config, workdir, refs + [dying], split='validation')
  assert not os.path.exists(marker) and os.path.exists(marker + '.previous')


def test_a_stopped_evaluation_resumes_without_rerunning_finished_methods(
    test_config, data_workdir, tmp_path, monkeypatch, capsys):
  """An evaluation stopped in its third method keeps the first two's returns and episodes
  (`partial/`); the rerun reads them back (no program runs) and writes exactly the records of an
  uninterrupted run; a changed field the evaluation reads runs them again; the partials go once
  the results are written."""
  import sys  # pylint: disable=g-import-not-at-top
  from mdx import methods  # pylint: disable=g-import-not-at-top
  from mdx.evaluation import evaluate  # pylint: disable=g-import-not-at-top
  module = sys.modules['mdx.evaluation.evaluate']
  refs = [methods.get_method('Oracle'), methods.get_method('Random')]
  fresh = str(tmp_path / 'fresh')
  os.makedirs(fresh)
  os.symlink(os.path.join(data_workdir, 'data'), os.path.join(fresh, 'data'))
  expected = evaluate(test_config, fresh, refs, split='validation')

  workdir = str(tmp_path / 'stopped')
  os.makedirs(workdir)
  os.symlink(os.path.join(data_workdir, 'data'), os.path.join(workdir, 'data'))

  def stop(config, workdir, seed, family):
    raise KeyboardInterrupt()

  with pytest.raises(KeyboardInterrupt):
    evaluate(test_config, workdir, refs + [Method(name='Stopping', make_policy=stop)],
             split='validation')
  partial = os.path.join(layout.eval_dir(workdir, 'validation'), 'partial')
  assert sorted(os.listdir(partial)) == ['Oracle.json', 'Oracle.npz', 'Random.json',
                                         'Random.npz']
  ran = []
  real = module.run_method
  monkeypatch.setattr(module, 'run_method', lambda c, w, m, *a, **k: (ran.append(m.name),
                                                                      real(c, w, m, *a, **k))[1])
  capsys.readouterr()
  assert evaluate(test_config, workdir, refs, split='validation') == expected
  assert ran == [] and 'Oracle: its finished program' in capsys.readouterr().out
  assert not os.path.exists(partial)

  with pytest.raises(KeyboardInterrupt):
    evaluate(test_config, workdir, refs + [Method(name='Stopping', make_policy=stop)],
             split='validation')
  ran.clear()
  other = test_config.copy_and_resolve_references()
  other.seed = test_config.seed + 1
  evaluate(other, workdir, refs, split='validation')
  assert ran == ['Oracle', 'Random'] and 'seed' in capsys.readouterr().out


def test_collect_refuses_data_of_another_behaviour_policy(test_config, data_workdir, tmp_path,
                                                          monkeypatch):
  from mdx.data import policies  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path)
  shutil.copytree(os.path.join(data_workdir, 'data'), os.path.join(workdir, 'data'))
  monkeypatch.setattr(policies, 'MEDIUM_EPSILON', 0.3)  # the medium tier's noise changed
  with pytest.raises(DatasetError, match=r"behaviour: 'epsilon_greedy\(0.5, optimal\)' in "
                     r"meta.json, 'epsilon_greedy\(0.3, optimal\)' in this config"):
    collect_datasets(test_config, workdir, family_from_config(test_config))
