"""Where a Walker/Hopper-Param expert succeeds over the task distribution, not only the 10 test tasks.

  python experiments/expert_map.py --family=hopper_param [--num_tasks=200] [--tier=expert]

Draws `num_tasks` tasks from the family's training distribution (`family.distribution_tasks`,
a stream that no `--seed` turns into the test draw), runs one deterministic episode of the
committed policy in each (`experts.rollout`), and prints the fraction that finish the episode without a fall at >= 1 m/s (the issue's target),
overall and in four bins of each physics exponent (mass, inertia, friction, damping).
docs/locomotion.md quotes its output.
"""
import json

import _common  # first: sets up logging before JAX loads
import jax
import numpy as np
from absl import app, flags

from mdx import experts
from mdx.envs import make_family

_FAMILY = flags.DEFINE_enum('family', 'hopper_param', ['hopper_param', 'walker_param'], 'Family.')
_TIER = flags.DEFINE_enum('tier', 'expert', list(experts.TIERS), 'Which committed policy.')
_NUM_TASKS = flags.DEFINE_integer('num_tasks', 200, 'Tasks drawn from the training distribution.')
_SEED = flags.DEFINE_integer('seed', 123, 'Seed of the task draw (the episode seed is 1).')
_OUTPUT = flags.DEFINE_string('output', None, 'Optional JSON file for the numbers.')

GROUPS = ('mass', 'inertia', 'friction', 'damping')
BINS = (-3.0, -1.5, 0.0, 1.5, 3.0)


def main(argv):
  del argv
  _common.setup()
  if _NUM_TASKS.value < 1:
    raise ValueError(f'--num_tasks must be >= 1, got {_NUM_TASKS.value}')
  family = make_family(_FAMILY.value)
  policy = experts.load_expert(family, _TIER.value)
  n = _NUM_TASKS.value
  tasks = family.distribution_tasks(_SEED.value, n)
  traj = jax.jit(lambda rng: experts.rollout(family, policy, tasks, rng))(jax.random.PRNGKey(1))
  q = experts.quality(family, tasks, jax.device_get(traj))
  ok, speed = np.array(q['no_fall_and_1mps']), np.array(q['forward_velocity'])
  no_fall = np.array(q['episode_lengths']) == family.episode_length
  u = np.asarray(tasks.params)
  out = {'family': family.name, 'backend': family.backend, 'cone': family.cone,
         'tier': _TIER.value, 'num_tasks': n, 'seed': _SEED.value,
         'success': float(ok.mean()), 'no_fall': float(no_fall.mean()),
         'mean_speed': float(speed.mean()), 'mean_return': q['return_mean'], 'bins': {}}
  print(f'{family.name} {_TIER.value} ({family.backend}, {family.cone} cones), {n} tasks: '
        f'no fall and >= 1 m/s {ok.mean():.2f}, no fall {no_fall.mean():.2f}, '
        f'speed {speed.mean():.2f} m/s, return {q["return_mean"]:.1f}')
  for g, name in enumerate(GROUPS):
    cells = []
    for lo, hi in zip(BINS[:-1], BINS[1:]):
      inside = (u[:, g] >= lo) & ((u[:, g] < hi) | (hi == BINS[-1]))
      rate = float(ok[inside].mean()) if inside.any() else float('nan')
      out['bins'].setdefault(name, []).append({'range': [lo, hi], 'n': int(inside.sum()),
                                               'success': rate})
      cells.append(f'[{lo:+.1f}, {hi:+.1f}): {rate:.2f} (n={int(inside.sum())})')
    print(f'  u_{name:<9}' + '  '.join(cells))
  if _OUTPUT.value:
    with open(_OUTPUT.value, 'w') as f:
      json.dump(out, f, indent=1)


if __name__ == '__main__':
  app.run(main)
