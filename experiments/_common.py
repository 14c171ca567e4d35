"""Shared set-up of the binaries: JAX's persistent compilation cache and quiet C++ logs.

jaxlib 0.9's CPU AOT loader logs a ~2 KB "machine feature mismatch" error for every program it
loads from the persistent cache (it lists tuning pseudo-features such as +prefer-no-gather that
host detection never reports; the programs run correctly). TF_CPP_MIN_LOG_LEVEL=3 keeps those
lines out of the terminal unless the user has set the variable. Python exceptions are unaffected.
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# Config files import `configs.base`: make the repo root importable for `python experiments/x.py`.
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

# Multi-host runs (`mdx.distributed`): the flags of `jax.distributed.initialize`, the same command
# on every process with its own --process_id.
_COORDINATOR = flags.DEFINE_string('coordinator_address', None, 'Multi-process runs: host:port '
                                   'of process 0 (jax.distributed.initialize).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Multi-process runs: the number of '
                                      'processes.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'Multi-process runs: this process\'s '
                                   'index, 0 .. num_processes - 1 (process 0 writes the files).')


def setup() -> None:
  """Joins a multi-process run when its flags are given (`mdx.distributed`, before any JAX
  computation); persistent compilation cache under the repo; absl logs at WARNING (Orbax logs
  every save at INFO; the training loop prints its own progress lines with rate and ETA)."""
  from absl import logging  # pylint: disable=g-import-not-at-top
  from mdx import distributed  # pylint: disable=g-import-not-at-top
  distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  logging.set_verbosity(logging.WARNING)
  cache = os.environ.get('JAX_COMPILATION_CACHE_DIR',
                         os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                      '.jax_cache'))
  jax.config.update('jax_compilation_cache_dir', cache)
  # Programs compiled faster than this are not cached (the test suite sets 0 for its subprocesses).
  jax.config.update('jax_persistent_cache_min_compile_time_secs',
                    float(os.environ.get('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '1.0')))
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


def methods_to_run(config, names=None) -> list:
  """The registered methods `names` (default `config.eval.methods`), with the reference methods
  of the normalized score (`config.eval.oracle`, `config.eval.random`) added when missing."""
  from mdx import methods  # pylint: disable=g-import-not-at-top
  names = list(names or config.eval.methods)
  names += [n for n in (config.eval.oracle, config.eval.random) if n not in names]
  return [methods.get_method(n) for n in names]


def prepare(config, workdir: str, binary: str):
  """What every binary that writes a workdir does first, before any work: validates the whole
  config (`mdx.config_check`) and keeps a copy of it in `WORKDIR/config_history/`. Returns the
  config's family. Call inside `mdx.workdir.lock(workdir)`."""
  import time  # pylint: disable=g-import-not-at-top
  from mdx import io  # pylint: disable=g-import-not-at-top
  from mdx.config_check import check_config  # pylint: disable=g-import-not-at-top
  from mdx.envs import family_from_config  # pylint: disable=g-import-not-at-top
  check_config(config)
  stamp = time.strftime('%Y%m%d-%H%M%S')
  io.write_atomic(os.path.join(workdir, 'config_history', f'{stamp}-{os.getpid()}-{binary}.json'),
                  config.to_json_best_effort(indent=1))
  return family_from_config(config)


def record_config(config, workdir: str) -> None:
  """`WORKDIR/config.json`: the config of the latest run whose checks against the workdir passed."""
  from mdx import io  # pylint: disable=g-import-not-at-top
  io.write_atomic(os.path.join(workdir, 'config.json'), config.to_json_best_effort(indent=1))


class Timings:
  """Wall times of one invocation of a binary, in seconds by name (`collect`,
  `diffusion/seed_0`, `diffusion/seeds_1_2`, `evaluate/test`, ...), appended as one JSON line to
  `WORKDIR/timings.json` when the `with` block ends, also when it ends on an error (the steps that
  finished keep their times; one cut short is not recorded, so a stage that was interrupted and
  resumed has only its last part's time). Process 0 writes (`mdx.distributed`)."""

  def __init__(self, workdir: str, binary: str):
    self.workdir, self.binary, self.times = workdir, binary, {}

  def add(self, name: str, seconds: float) -> None:
    self.times[name] = round(seconds, 1)
    print(f'[{self.binary}] {name}: {self.times[name]}s', flush=True)

  def timed(self, name: str, fn):
    """`fn()`, its wall time recorded under `name`; returns its result."""
    import time  # pylint: disable=g-import-not-at-top
    t0 = time.time()
    out = fn()
    self.add(name, time.time() - t0)
    return out

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    import json  # pylint: disable=g-import-not-at-top
    from mdx import distributed  # pylint: disable=g-import-not-at-top
    if self.times and distributed.is_writer():
      with open(os.path.join(self.workdir, 'timings.json'), 'a') as f:
        f.write(json.dumps(self.times) + '\n')
    return False


def clear_errors(main):
  """`main` with mdx's own errors (bad settings, stale or damaged outputs, a locked workdir,
  non-finite values) printed as one message and exit status 1, without a traceback; any other
  exception keeps its traceback."""
  import functools  # pylint: disable=g-import-not-at-top

  @functools.wraps(main)
  def wrapped(argv):
    from mdx import errors  # pylint: disable=g-import-not-at-top
    try:
      return main(argv)
    except errors.KNOWN as err:
      print(f'error: {type(err).__name__}: {err}', file=sys.stderr, flush=True)
      sys.exit(1)
  return wrapped
