"""Evaluation sweeps: several planner settings (and trained variants) as one more vmapped axis of
one program, equal to the separate runs setting by setting, written as one row per setting."""
import copy

import numpy as np
import pytest

from mdx import methods
from mdx.envs import family_from_config
from mdx import provenance
from mdx.config_check import ConfigError
from mdx import workdir as layout
from mdx.evaluation.evaluate import evaluate, sweep_policy
from mdx.sweep import parse_sweep, record_setting, sweep_key, with_fields
from mdx.training import member


def test_parse_sweep_takes_every_combination():
  assert parse_sweep('') == [{}]
  assert parse_sweep('dynamics_weight=0,2;guide_scale=0.1') == [
      {'dynamics_weight': 0.0, 'guide_scale': 0.1}, {'dynamics_weight': 2.0, 'guide_scale': 0.1}]
  with pytest.raises(ValueError, match='is not'):
    parse_sweep('dynamics_weight')


def test_a_swept_evaluation_equals_the_separate_runs(test_config, data_workdir):
  """Setting by setting, the policy reading its knobs from `params['knobs']` (traced) plans as
  the policy built with that setting in its config, up to the rounding of two differently
  compiled programs (measured: 2.4e-5 in a first action; XLA fuses the U-Net's products
  differently when a knob is a constant), 20x below the smallest difference between settings
  checked below. Vmapped over settings, XLA batches the U-Net and the guide's gradient differently (measured: up to 1e-2 in one first action of
  this undertrained test model, 7e-5 with a batch of one), and closed-loop episodes amplify it;
  the swept evaluation writes a row per setting (measured by hand: its returns within 5% of the
  separate runs')."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from mdx import data as mdata  # pylint: disable=g-import-not-at-top
  md = methods.get_method('MetaDiffuser')
  for stage in md.stages:  # trained once per session (a finished stage returns at once)
    provenance.run_stage(test_config, data_workdir, stage, 0)  # with its record
  family = family_from_config(test_config)
  settings = parse_sweep('dynamics_weight=0,2;noise_scale=0.25,1')
  fields = tuple(settings[0])
  tasks = family.split_tasks('validation')
  warm = mdata.load_dataset(data_workdir, family, 'validation', 'expert')
  obs = jnp.zeros((tasks.task_id.shape[0], family.obs_dim))
  rng = jax.random.PRNGKey(3)

  def first_action(policy):
    state = policy.init(rng, tasks, warm)
    return policy.act(state, obs, rng)[0]

  one = copy.deepcopy(test_config)
  one.planner.num_candidates = 1  # no argmax between near-tied candidates: rounding only
  base = md.make_policy(one, data_workdir, 0, family, traced=fields)
  act = jax.jit(first_action)
  firsts = []
  for setting in settings:
    config = copy.deepcopy(one)
    for field, value in setting.items():
      config.planner[field] = value
    knobs = {f: jnp.asarray(setting[f], jnp.float32) for f in fields}
    traced = act(base.replace(params={**base.params, 'knobs': knobs}))
    np.testing.assert_allclose(traced, act(md.make_policy(config, data_workdir, 0, family)),
                               rtol=0, atol=1e-4, err_msg=str(setting))
    firsts.append(np.asarray(traced))
  assert all(np.abs(f - firsts[0]).max() > 2e-3 for f in firsts[1:])  # the knobs matter
  # A trained field (Table 6's beta): each setting evaluates its training sweep variant's stages,
  # the config's own where the setting is the config's (0.3 here); their params fill the
  # setting's slot exactly, beside the knobs of a planner field swept with it.
  beta = 'diffusion.context_dropout'
  variant = with_fields(test_config, {beta: 0.9})
  vdir = layout.make_variant(data_workdir, {beta: 0.9}, {0: [md.stages[0].name]})
  provenance.run_stage(variant, vdir, md.stages[1], 0)
  mixed = parse_sweep(f'{beta}=0.3,0.9;dynamics_weight=0,2')
  stacked = sweep_policy(test_config, data_workdir, md, family, mixed, (0,))
  for h, setting in enumerate(mixed):
    own = (data_workdir, test_config) if setting[beta] == 0.3 else (vdir, variant)
    alone = md.make_policy(own[1], own[0], 0, family, traced=('dynamics_weight',)).params
    slot = member(member(stacked.params, h), 0)
    assert float(slot['knobs']['dynamics_weight']) == setting['dynamics_weight']
    jax.tree.map(np.testing.assert_array_equal, {**slot, 'knobs': None},
                 {**alone, 'knobs': None})
  assert not np.array_equal(*[jax.tree.leaves(member(member(stacked.params, h), 0)['denoiser'])[0]
                              for h in (0, 2)])  # the variant's denoiser is another one
  with pytest.raises(FileNotFoundError, match='no trained variant.*--sweep=.diffusion'):
    sweep_policy(test_config, data_workdir, md, family, parse_sweep(f'{beta}=0.5'), (0,))
  with pytest.raises(ConfigError, match='cfg_weight.*must be 1 when'):  # no null context
    sweep_policy(test_config, data_workdir, md, family, parse_sweep(f'{beta}=0;cfg_weight=1.2'),
                 (0,))
  # A whole evaluation: one program for all settings, a row each, named by their fields.
  config = copy.deepcopy(test_config)
  config.eval.sweep = f'{beta}=0.3,0.9;dynamics_weight=0,2'
  config.eval.plan_vs_reached_tasks = 0
  refs = [methods.get_method('Oracle'), methods.get_method('Random')]
  records = evaluate(config, data_workdir, [md] + refs, split='validation')
  rows = {(r['method'], r['warm_start'], sweep_key(r['sweep'])): r for r in records}
  assert len([r for r in records if r['method'] == 'MetaDiffuser']) == 4 * 2  # settings x tiers
  assert rows[('Oracle', 'n/a', '{}')]['sweep'] == {}
  named = [record_setting(st) for st in parse_sweep(config.eval.sweep)]
  assert named[3] == {'context_dropout': 0.9, 'dynamics_weight': 2.0}
  means = [rows[('MetaDiffuser', 'expert', sweep_key(st))]['mean_return'] for st in named]
  assert means[0] != means[1] and means[0] != means[2]  # lambda and beta both change the plans
