"""experiments/few_step.py on the test preset: its records, and an interrupted or extended run
keeping the settings it has already evaluated with the same config and models."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _few_step(workdir, steps):
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.setdefault('JAX_COMPILATION_CACHE_DIR', os.path.join(ROOT, '.jax_cache'))
  out = subprocess.run([sys.executable, os.path.join(ROOT, 'experiments', 'few_step.py'),
                        '--config=configs/point_robot.py:test', f'--workdir={workdir}',
                        '--split=validation', f'--steps={steps}', '--repeats=2',
                        '--min_time_s=0'], env=env, capture_output=True, text=True, timeout=900,
                       check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  with open(os.path.join(workdir, 'few_step', 'validation.json')) as f:
    return out.stdout, json.load(f)


def test_few_step_records_and_resume(test_config, data_workdir):
  from mdx import methods  # pylint: disable=g-import-not-at-top
  for stage in methods.get_method('MetaDiffuser').stages:  # done stages return at once
    stage.train(test_config, data_workdir, 0)
  k = test_config.diffusion.num_diffusion_steps
  _, first = _few_step(data_workdir, '1')
  assert first['complete'] and [r['label'] for r in first['rows']] == [
      f'preset ({test_config.planner.sampler} K={k})', "DDIM K'=1"]
  for row in first['rows']:
    assert row['plans_per_s_batch1'] > 0 and row['plans_per_s_batch_tasks'] > 0
    assert {r['warm_start'] for r in row['records']} == set(test_config.eval.warm_starts)
    for r in row['records']:
      assert r['method'] == 'MetaDiffuser' and r['ci_low'] <= r['normalized_score'] <= r['ci_high']
  assert first['rows'][1]['sample_steps'] == 1 and first['rows'][1]['sampler'] == 'ddim'
  assert os.path.exists(os.path.join(data_workdir, 'few_step', 'few_step_validation.png'))
  # A second run with one more setting keeps the two evaluated ones and evaluates only K'=2.
  stdout, second = _few_step(data_workdir, '1,2')
  assert stdout.count('already (same config and models), kept') == 2
  assert second['rows'][:2] == first['rows']
  assert second['rows'][2]['label'] == "DDIM K'=2" and second['complete']


if __name__ == '__main__':
  sys.exit(pytest.main([__file__]))
