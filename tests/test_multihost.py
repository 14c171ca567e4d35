"""A multi-process run (`mdx.distributed`) computes what one process computes: two processes on
localhost, Gloo collectives, two forced host devices each (a mesh of four over both), running the
binaries as a slice would, against one process with four forced devices (the same partitioned
programs; `tests/test_mesh.py` compares a mesh with one device). Collection: both processes
collect, process 0 writes, the datasets are the one-process ones. Training: the context model's
stage, data-parallel over the four devices (parameters to float tolerance, one metrics file).
Evaluation: MetaDiffuser's stages (trained in the test's process, once per session), evaluated by
both (the same returns; process 0 alone writes the results and the wall times)."""
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = '--config=configs/point_robot.py:test'


def _port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _env(devices: int) -> dict:
  flags = os.environ.get('XLA_FLAGS', '')  # `make test`'s, kept (the same in every process)
  env = dict(os.environ, PYTHONPATH=ROOT,
             XLA_FLAGS=f'{flags} --xla_force_host_platform_device_count={devices}'.strip())
  env.setdefault('JAX_COMPILATION_CACHE_DIR', os.path.join(ROOT, '.jax_cache'))
  return env


def _one(binary: str, *args: str) -> None:
  """`binary` as one process with four devices (the same mesh as the two processes')."""
  out = subprocess.run([sys.executable, os.path.join(ROOT, 'experiments', binary), CONFIG,
                        '--config.mesh_devices=0', *args], env=_env(4), capture_output=True,
                       text=True, timeout=600, check=False)
  assert out.returncode == 0, out.stderr[-3000:]


def _two(binary: str, *args: str) -> list[str]:
  """`binary` as two processes of one run; returns their outputs."""
  port = _port()
  procs = [subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'experiments', binary), CONFIG,
       '--config.mesh_devices=0', *args, f'--coordinator_address=localhost:{port}',
       '--num_processes=2', f'--process_id={i}'],
      env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in range(2)]
  outs = []
  for p in procs:
    try:
      outs.append(p.communicate(timeout=600)[0])
    finally:
      p.kill()
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  return outs


def _params(workdir: str):
  from configs import point_robot  # pylint: disable=g-import-not-at-top
  from mdx.methods.metadiffuser import context as ctx_stage  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  _, params, _ = ctx_stage.load_context(point_robot.get_config('test'), workdir, 0)
  return [np.asarray(x) for x in jax.tree.leaves(params)]


def _timings(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, 'timings.json')) as f:
    return [json.loads(line) for line in f]


def test_two_processes_train_and_evaluate_as_one(test_config, data_workdir, tmp_path):
  from mdx import methods  # pylint: disable=g-import-not-at-top
  one, two, one_eval, two_eval = (str(tmp_path / n) for n in ('one', 'two', 'one_eval',
                                                               'two_eval'))
  shutil.copytree(os.path.join(data_workdir, 'data'), os.path.join(one, 'data'))
  _two('collect.py', f'--workdir={two}')  # both collect, process 0 writes: the same datasets
  for name in sorted(os.listdir(os.path.join(one, 'data'))):
    with np.load(os.path.join(one, 'data', name, 'data.npz')) as a, np.load(
        os.path.join(two, 'data', name, 'data.npz')) as b:
      assert sorted(a.files) == sorted(b.files)
      for key in a.files:
        np.testing.assert_array_equal(b[key], a[key], err_msg=f'{name}/{key}')
  _one('train.py', f'--workdir={one}', '--method=MetaDiffuser', '--stage=context')
  outs = _two('train.py', f'--workdir={two}', '--method=MetaDiffuser', '--stage=context')
  assert all('[context/seed_0] step 40/40' in o for o in outs)
  for a, b in zip(_params(one), _params(two)):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
  logged = []
  for w in (one, two):  # process 0 alone wrote the metrics: each logged step once, as one process
    with open(os.path.join(w, 'seed_0', 'context', 'metrics.jsonl')) as f:
      logged.append([json.loads(line)['step'] for line in f if 'train/loss' in line])
  assert logged[1] == logged[0] == [10, 20, 30, 40]
  assert [list(t) for t in _timings(two)] == [['context/seed_0']]  # one line, from process 0

  for stage in methods.get_method('MetaDiffuser').stages:  # done stages return at once
    stage.train(test_config, data_workdir, 0)
  shutil.copytree(data_workdir, one_eval, ignore=shutil.ignore_patterns('eval', '.lock'))
  _one('evaluate.py', f'--workdir={one_eval}', '--split=validation', '--methods=MetaDiffuser',
       '--config.eval.plan_vs_reached_tasks=0')
  shutil.copytree(one_eval, two_eval, ignore=shutil.ignore_patterns('eval', '.lock'))
  _two('evaluate.py', f'--workdir={two_eval}', '--split=validation', '--methods=MetaDiffuser',
       '--config.eval.plan_vs_reached_tasks=0')
  with open(os.path.join(one_eval, 'eval', 'validation', 'results.json')) as f:
    want = json.load(f)
  with open(os.path.join(two_eval, 'eval', 'validation', 'results.json')) as f:
    got = json.load(f)
  assert [(r['method'], r['warm_start']) for r in got] == [
      (r['method'], r['warm_start']) for r in want]
  for a, b in zip(want, got):
    np.testing.assert_allclose(b['mean_return'], a['mean_return'], rtol=1e-6)
  evals = [len([n for n in os.listdir(os.path.join(w, 'config_history')) if 'evaluate' in n])
           for w in (one_eval, two_eval)]
  assert evals[1] == evals[0] + 1  # the copied ones and process 0's, not process 1's
  assert [list(t) for t in _timings(two_eval)] == [['evaluate/validation']] * 2  # copied, own


def test_distributed_flags_are_checked():
  from mdx import distributed  # pylint: disable=g-import-not-at-top
  distributed.initialize(None, None, None)  # one process: nothing to join
  distributed.initialize(None, 1, None)
  assert distributed.process_count() == 1 and distributed.is_writer()
  for args, named in (((None, 2, 0), 'all of --coordinator_address'),
                      (('localhost:1', 2, None), 'all of --coordinator_address'),
                      (('localhost:1', 2, 2), 'must be in \\[0, --num_processes\\)')):
    with pytest.raises(ValueError, match=named):
      distributed.initialize(*args)
  assert distributed.process_count() == 1  # nothing was joined
