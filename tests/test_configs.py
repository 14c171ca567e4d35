"""Every preset of every family config builds its family and fits its own shape constraints."""
import importlib
import pathlib

import pytest

from mdx.config_check import check_config
from mdx.envs import make_family

_CONFIGS = sorted(p.stem for p in (pathlib.Path(__file__).parents[1] / 'configs').glob('*.py')
                  if p.stem not in ('__init__', 'base', 'benchmark', 'experts'))


def test_every_family_with_a_preset_is_found():
  assert {'point_robot', 'cheetah_vel', 'cheetah_dir', 'ant_dir', 'hopper_param',
          'walker_param'} == set(_CONFIGS)


@pytest.mark.parametrize('name', _CONFIGS)
@pytest.mark.parametrize('preset', ['paper', 'cpu', 'test'])
def test_preset_is_consistent(name, preset):
  config = importlib.import_module(f'configs.{name}').get_config(preset)
  assert config.family == name
  family = make_family(config.family, **dict(config.env))
  d, c = config.diffusion, config.context
  # The U-Net halves the horizon at every level but the last.
  assert d.horizon % 2 ** (len(d.dim_mults) - 1) == 0, (d.horizon, d.dim_mults)
  assert max(d.horizon, c.history, c.target_window) <= family.episode_length
  tiers = set(config.data.train_episodes)
  assert set(c.tiers) <= tiers and set(d.tiers) <= tiers
  assert set(config.eval.warm_starts) <= {'expert', 'medium', 'random'}
  assert 0.0 <= d.context_dropout < 1.0 and config.planner.dynamics_weight >= 0.0
  # CFG needs a trained null context: omega != 1 only with context dropout.
  assert d.context_dropout > 0 or config.planner.cfg_weight == 1.0
  check_config(config, family)  # and every other rule of the binaries' validation


@pytest.mark.parametrize('name', _CONFIGS)
@pytest.mark.parametrize('preset', ['paper', 'cpu', 'test'])
def test_training_contexts_are_made_like_test_contexts(name, preset):
  """One field, `context.num_context`, sets the windows per z for the context model, the
  denoiser's labels and the test context alike; the windows of a training z always come from one
  data tier (`sample_segments(context_blocks=...)`), as a test z from one tier's warm-start data.
  (Locomotion presets used to train on 4 windows of mixed tiers and test on 8 of one.)"""
  config = importlib.import_module(f'configs.{name}').get_config(preset)
  assert 'num_context' not in config.diffusion and 'num_context' not in config.eval
  assert 'one_tier_contexts' not in config.context and 'one_tier_contexts' not in config.diffusion
  assert config.context.num_context >= 1


def test_point_robot_demo_preset_is_the_cpu_preset_made_smaller():
  """`make demo`'s preset: consistent, and the `cpu` preset except for the fields that make it
  fit its 15-minute budget."""
  from mdx import provenance  # pylint: disable=g-import-not-at-top
  from configs import point_robot  # pylint: disable=g-import-not-at-top
  test_preset_is_consistent('point_robot', 'demo')
  test_training_contexts_are_made_like_test_contexts('point_robot', 'demo')
  cpu, demo = (provenance.flatten(point_robot.get_config(p)) for p in ('cpu', 'demo'))
  assert {k for k in cpu if cpu[k] != demo[k]} == {
      'train_seeds', 'context.num_train_steps', 'diffusion.num_train_steps',
      'eval.num_eval_seeds', 'eval.methods'}
  assert demo['context.num_train_steps'] < cpu['context.num_train_steps']
