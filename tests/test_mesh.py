"""A device mesh (`config.mesh_devices`) changes no result: four forced host devices in a
subprocess (XLA reads the device count at start-up). Evaluation: a stateful policy that reads
warm-start data and draws noise at every step, with a batch that divides the mesh and one that
must be padded (3 devices, 20 environments). Training: a data-parallel context-model stage."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mdx import mesh as mmesh

SCRIPT = r'''
import json, sys
import jax, jax.numpy as jnp
jax.config.update('jax_numpy_rank_promotion', 'raise')
from configs import point_robot
from mdx import mesh as mmesh
from mdx.envs import family_from_config
from mdx.evaluation.evaluate import run_method
from mdx.evaluation.policy import Policy
from mdx.methods import get_method
from mdx.methods.base import Method

def make_policy(config, workdir, seed, family):
  def init(p, rng, tasks, warm):
    w = warm.valid[..., None]
    mean = (warm.actions * w).sum((1, 2)) / w.sum((1, 2))
    return {'mean': mean, 'noise': jax.random.normal(rng, mean.shape),
            't': jnp.zeros(tasks.task_id.shape, jnp.int32)}
  def act(p, s, obs, rng):
    a = s['mean'] + 0.02 * s['noise'] - 0.05 * obs + 0.01 * jax.random.normal(rng, obs.shape)
    return a * (1.0 + 0.01 * s['t'][:, None]), {**s, 't': s['t'] + 1}, {}
  return Policy(params=None, init_fn=init, act_fn=act)

toy = Method(name='Toy', make_policy=make_policy, uses_warm_start=True)
config = point_robot.get_config('test')
family = family_from_config(config)
out = {'devices': len(jax.devices())}
for n in (1, 3, 0):
  config.mesh_devices = n
  mesh = mmesh.make_mesh(config)
  out[f'mesh_{n}'] = 1 if mesh is None else int(mesh.devices.size)
  for method in (toy, get_method('Random')):
    per_tier, _ = run_method(config, sys.argv[1], method, family, 'validation')
    out[f'{method.name}/{n}'] = {str(k): v.tolist() for k, v in per_tier.items()}
# Training, data-parallel: the context model's stage on one device and on four.
import os, shutil
import numpy as np
from mdx.methods.metadiffuser import context as ctx_stage
config.log_every = config.checkpoint_every = 10
for n in (1, 0):
  config.mesh_devices = n
  work = os.path.join(sys.argv[2], f'mesh_{n}')
  shutil.copytree(os.path.join(sys.argv[1], 'data'), os.path.join(work, 'data'))
  params = ctx_stage.train_context(config, work, 0).params
  out[f'train/{n}'] = [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(params)]
  out[f'train_sharding/{n}'] = str(jax.tree.leaves(params)[0].sharding)
print('RESULT' + json.dumps(out))
'''


def test_padded_index():
  assert mmesh.padded_index(5, None).tolist() == [0, 1, 2, 3, 4]


def test_sharded_evaluation_and_training_equal_one_device(data_workdir, tmp_path):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4',
             PYTHONPATH=root + os.pathsep + os.environ.get('PYTHONPATH', ''))
  proc = subprocess.run([sys.executable, '-c', SCRIPT, data_workdir, str(tmp_path)], env=env,
                        cwd=root,
                        capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = [l for l in proc.stdout.splitlines() if l.startswith('RESULT')][-1]
  out = json.loads(line[len('RESULT'):])
  assert out['devices'] == 4 and (out['mesh_1'], out['mesh_3'], out['mesh_0']) == (1, 3, 4)
  for name in ('Toy', 'Random'):
    one = out[f'{name}/1']
    for n in (3, 0):
      other = out[f'{name}/{n}']
      assert set(other) == set(one)
      for key in one:
        np.testing.assert_allclose(other[key], one[key], rtol=1e-5, atol=1e-5,
                                   err_msg=f'{name}, mesh_devices={n}, {key}')
  # Data-parallel training: the state lives on all four devices, and after the test preset's 40
  # steps of the context model the parameters are the one-device ones up to the rounding of the
  # cross-device gradient sums (its compiled step holds the all-reduces).
  assert 'batch' in out['train_sharding/0'] and 'batch' not in out['train_sharding/1']
  for a, b in zip(out['train/1'], out['train/0']):
    np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4)


def test_mesh_devices_is_checked():
  class Config:  # pylint: disable=too-few-public-methods
    mesh_devices = -1
  with pytest.raises(ValueError, match=r'mesh_devices = -1: must be an integer in \[0, '):
    mmesh.make_mesh(Config())
