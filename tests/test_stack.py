"""Training stacks: several training seeds of a stage as one vmapped program, each member writing
what its own run writes, equal to that run, resuming like it."""
import copy
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mdx import methods, provenance
from mdx import workdir as layout
from mdx.methods.metadiffuser import context as ctx_stage
from mdx.methods.metadiffuser import denoiser as den_stage
from mdx.envs import family_from_config
from mdx.training import checkpoints, member, stack_trees


def _workdir(tmp_path, data_workdir, name):
  """A fresh workdir sharing the collected datasets (read only)."""
  workdir = os.path.join(str(tmp_path), name)
  os.makedirs(workdir)
  os.symlink(os.path.join(data_workdir, 'data'), os.path.join(workdir, 'data'))
  return workdir


def _one_step_both_ways(update, states, keys, members=None):
  """Each member's first update alone (jitted) and inside the stack (vmapped, jitted)."""
  extra = (members,) if members is not None else ()
  stacked, stacked_metrics = jax.jit(jax.vmap(update))(stack_trees(states), jnp.stack(keys),
                                                       *extra)
  for i, (state, key) in enumerate(zip(states, keys)):
    alone, alone_metrics = jax.jit(update)(state, key, *((member(members, i),) if extra else ()))
    yield alone, member(stacked, i), alone_metrics, member(stacked_metrics, i)


def test_a_stack_updates_each_member_as_its_own_run(test_config, data_workdir):
  """One update of a stack equals each member's own update (its parameters, key and context
  model): the same losses and gradient norms, the same parameters, to the rounding of batched
  arithmetic. Exception: the U-Net's convolution biases that feed a GroupNorm of one channel per
  group (this tiny config) have a gradient of exactly zero in exact arithmetic; Adam's
  normalized step turns its rounding into +-lr there, and the network's output, which they do not
  change, is compared instead."""
  family = family_from_config(test_config)
  for stage in methods.get_method('MetaDiffuser').stages:  # seed 0: trained once per session
    stage.train(test_config, data_workdir, 0)
  # Two members of seed 0 with different keys (seed 1 would write into the shared workdir).
  update, states, keys = ctx_stage._setup(test_config, [(data_workdir, 0)] * 2, source='learned')  # pylint: disable=protected-access
  keys = [keys[0], jax.random.fold_in(keys[0], 1)]
  for alone, in_stack, m_alone, m_stack in _one_step_both_ways(update, states, keys):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 (alone.params, m_alone), (in_stack.params, m_stack))
  data, loaded, context_data, tiers = den_stage._load_data(test_config, data_workdir, family)  # pylint: disable=protected-access
  runs = [den_stage._member(test_config, data_workdir, 0, family, loaded, unconditional=False,  # pylint: disable=protected-access
                            source='learned')] * 2  # two members of seed 0: the same run twice
  update = den_stage.make_diffusion_update(
      test_config, family, data,
      den_stage._label_fn(test_config, family, data, unconditional=False, source='learned'),  # pylint: disable=protected-access
      context_data=context_data, context_tier_episodes=tiers)
  net = den_stage.build_denoiser(test_config, family)
  d = test_config.diffusion
  x = jax.random.normal(jax.random.PRNGKey(0), (16, d.horizon, family.obs_dim + family.act_dim))
  k = jnp.arange(16) % d.num_diffusion_steps
  z = jax.random.normal(jax.random.PRNGKey(1), (16, test_config.context.context_dim))
  out = lambda p: net.apply(p, x, k, z, jnp.ones((16,), bool))
  keys = [runs[0][1], jax.random.fold_in(runs[0][1], 1)]
  # Members may differ in beta (a training sweep's variants): 0 keeps every context, 1 none.
  runs = [(r[0], r[1], {**r[2], 'context_dropout': jnp.float32(beta)})
          for r, beta in zip(runs, (0.0, 1.0))]
  members = stack_trees([r[2] for r in runs])
  before = out(runs[0][0].params)  # both members start from the same parameters
  outs = []
  for i, (alone, in_stack, m_alone, m_stack) in enumerate(_one_step_both_ways(
      update, [r[0] for r in runs], keys, members)):
    assert float(m_stack['context_kept']) == (1.0, 0.0)[i]
    np.testing.assert_allclose(m_alone['loss'], m_stack['loss'], rtol=1e-5)
    assert float(m_stack['context_kept']) == float(m_alone['context_kept'])
    np.testing.assert_allclose(m_alone['grad_norm'], m_stack['grad_norm'], rtol=1e-4)
    # The output, against the size of the update: the rounding of batched arithmetic moves it
    # by up to 1.2e-3 on some CPUs (measured 2026-12-01 and 2026-12-03: an entry whose gradient
    # is rounding-sized takes Adam's +-lr step either way), while this one update moves it by
    # 1.24, so the stack's member must sit within 1% of that from its own run.
    out_alone, out_stack = out(alone.params), out(in_stack.params)
    moved = float(np.abs(out_alone - before).max())
    gap = float(np.abs(out_alone - out_stack).max())
    assert gap <= 0.01 * moved, (i, gap, moved)
    outs.append(out_stack)
    # Parameter by parameter: Adam's first step is +-lr for any nonzero gradient, so an entry
    # whose gradient is rounding-sized may land up to 2 lr away (measured: 1 of 1280 kernel
    # entries, 8.3e-4). Every entry stays within that bound and nearly all match to 1e-4.
    lr = float(test_config.diffusion.learning_rate)
    for path, a in jax.tree_util.tree_flatten_with_path(alone.params)[0]:
      name = jax.tree_util.keystr(path)
      diff = np.abs(np.asarray(a) - np.asarray(_at(in_stack.params, path)))
      assert diff.max() <= 2 * lr * (1 + 1e-3), name
      if not ('Conv1dBlock' in name and name.endswith("['bias']")):
        off = diff > 1e-4 + 1e-4 * np.abs(np.asarray(a))
        assert off.mean() <= 0.005, (name, int(off.sum()), off.size)
  # The two members' updates land far apart (1.47 when measured), so a mixed-up member fails.
  assert float(np.abs(outs[0] - outs[1]).max()) > 0.1


def _at(tree, path):
  for entry in path:
    tree = tree[entry.key]
  return tree


def test_a_stack_writes_each_members_run_and_resumes(test_config, data_workdir, tmp_path):
  """UDiffuser's stage (no upstream stage) for two seeds as one stack: a record, checkpoints and
  metrics per seed, each loadable alone; a kill between the members' last saves resumes both
  from the step they share, to exactly the unbroken stack's parameters."""
  config = copy.deepcopy(test_config)
  config.checkpoint_every = 10  # two kept steps of the 20-step stage
  workdir = _workdir(tmp_path, data_workdir, 'stacked')
  seeds, stage = [0, 1], methods.get_method('UDiffuser').stages[0]
  assert provenance.run_stage_stack(config, workdir, stage, seeds) == seeds
  assert provenance.run_stage_stack(config, workdir, stage, seeds) == []  # done: skipped
  load = lambda s: den_stage.load_denoiser(config, workdir, s, unconditional=True)[1]
  before = {s: load(s) for s in seeds}
  # The planner's compute dtype reaches the loaded network; its parameters stay float32.
  bf16 = copy.deepcopy(config)
  bf16.planner.compute_dtype = 'bfloat16'
  net16, params16 = den_stage.load_denoiser(bf16, workdir, 0, unconditional=True)
  assert net16.dtype == jnp.bfloat16 and den_stage.load_denoiser(
      config, workdir, 0, unconditional=True)[0].dtype == jnp.float32
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params16))
  assert not np.allclose(jax.tree.leaves(before[0])[0], jax.tree.leaves(before[1])[0])
  for s in seeds:
    assert provenance.read_record(workdir, stage.name, s)['stacked_seeds'] == seeds
    assert os.path.getsize(os.path.join(layout.stage_dir(workdir, stage.name, s),
                                        'metrics.jsonl')) > 0

  final = config.udiffuser.num_train_steps
  with checkpoints.checkpoint_manager(layout.checkpoint_dir(workdir, stage.name, 1)) as m:
    assert sorted(m.all_steps()) == [final - 10, final]
    shutil.rmtree(checkpoints.step_dir(m, final))
  den_stage.train_denoiser_stack([(config, workdir, s) for s in seeds], unconditional=True)
  superseded = os.path.join(layout.stage_dir(workdir, stage.name, 0), 'superseded_checkpoints')
  assert len(os.listdir(superseded)) == 1  # member 0's old last step: moved aside, not lost
  for s in seeds:
    jax.tree.map(np.testing.assert_array_equal, load(s), before[s])


def test_train_stack_checks_its_members(tmp_path):
  from mdx.training import train_stack  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match='2 workdirs need as many'):
    train_stack([str(tmp_path / 'a'), str(tmp_path / 'b')], [None], None, [None], num_steps=1,
                log_every=1, checkpoint_every=1, names=['a'])


def test_stack_members_may_differ_only_where_the_stage_allows(test_config, data_workdir):
  other = copy.deepcopy(test_config)
  other.diffusion.learning_rate = 0.5
  with pytest.raises(ValueError, match="also differs in \\['diffusion.learning_rate'\\]"):
    den_stage.train_denoiser_stack([(test_config, data_workdir, 0), (other, data_workdir, 1)])
  from mdx.sweep import with_fields  # pylint: disable=g-import-not-at-top
  assert with_fields(test_config, {'diffusion.context_dropout': 0.2}).diffusion.context_dropout == 0.2
  with pytest.raises(ValueError, match='no field'):
    with_fields(test_config, {'diffusion.beta': 0.2})
