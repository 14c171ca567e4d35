"""Shared test set-up: strict rank promotion, the persistent compilation cache, and one tiny
pipeline workdir (test preset) that several modules reuse."""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')  # see experiments/_common.py

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import pytest

jax.config.update('jax_numpy_rank_promotion', 'raise')
jax.config.update('jax_compilation_cache_dir',
                  os.environ.get('JAX_COMPILATION_CACHE_DIR',
                                 os.path.join(os.path.dirname(os.path.dirname(__file__)),
                                              '.jax_cache')))
# Every program is cached, however fast it compiles: the two workers, and the binaries the tests
# launch (which read the variable, experiments/_common.py), compile many of the same small ones.
os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)


@pytest.fixture(scope='session')
def test_config():
  from configs import point_robot  # pylint: disable=g-import-not-at-top
  return point_robot.get_config('test')


@pytest.fixture(scope='session')
def data_workdir(tmp_path_factory, test_config):
  """A workdir with every Point-Robot dataset of the test preset collected."""
  from mdx.data import collect_datasets  # pylint: disable=g-import-not-at-top
  from mdx.envs import family_from_config  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path_factory.mktemp('pipeline'))
  collect_datasets(test_config, workdir, family_from_config(test_config))
  return workdir
