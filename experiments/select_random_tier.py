"""Picks a family's random-tier behaviour policy: an early, low-return checkpoint of PPO training.

  python experiments/train_expert.py --config=configs/experts.py:hopper_param \\
      --config.ppo.num_timesteps=409600 --config.ppo.num_evals=11 \\
      --workdir=runs/experts/hopper_early --output_dir=runs/experts/hopper_early
  python experiments/select_random_tier.py --family=hopper_param --workdir=runs/experts/hopper_early

The paper's random warm-start data are low-return rollouts from early in its SAC experts'
training, split from the rest by return (its App. G); mdx's default random tier is uniform
actions, which topple Hopper and Walker near their initial pose and say little about their physics
(results/hopper_param/NOTES.md). This binary scores every checkpoint of a short re-run of the
expert's PPO configuration (`<workdir>/checkpoints/<steps>.msgpack`, written by
`train_expert.py`) on the family's *validation* tasks, `--episodes` episodes each with actions
sampled from the policy (as the collector samples them), and keeps the checkpoint whose mean
return is nearest `uniform + fraction * (expert - uniform)`: the committed expert's deterministic
return and uniform actions' return on the same tasks and keys. `--fraction` defaults to 1/6, the
middle of the bottom third of that range (the medium tier is picked half-way). The checkpoint goes
to `<output_dir>/<family>_random.msgpack`; the family's `<family>.json` gains a `random_tier`
record with every score. Use it with `--config.data.random_from=checkpoint`.
"""
import json
import pathlib
import sys

import _common  # first: sets up logging before JAX loads
import jax
import jax.numpy as jnp
from absl import app, flags

from mdx import experts, io
from mdx.envs import locomotion, make_family

_FAMILY = flags.DEFINE_enum('family', None, sorted(locomotion.FAMILIES), 'Family.', required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'The early run (with checkpoints/ and '
                               '<family>.json, train_expert\'s --workdir = --output_dir).',
                               required=True)
_FRACTION = flags.DEFINE_float('fraction', 1 / 6, 'Target return, as the fraction of the way '
                               'from uniform actions to the expert (0 < f < 1).')
_EPISODES = flags.DEFINE_integer('episodes', 4, 'Sampled episodes per validation task.')
_SEED = flags.DEFINE_integer('seed', 0, 'Key of the episodes.')
_OUTPUT = flags.DEFINE_string('output_dir', str(experts.EXPERT_DIR),
                              'Where the committed expert and its json are (and the tier goes).')


def main(argv):
  del argv
  _common.setup()
  if not 0 < _FRACTION.value < 1 or _EPISODES.value < 1:
    raise ValueError(f'--fraction must be in (0, 1) and --episodes >= 1, got {_FRACTION.value}, '
                     f'{_EPISODES.value}')
  name, workdir, out = _FAMILY.value, pathlib.Path(_WORKDIR.value), pathlib.Path(_OUTPUT.value)
  run_meta = json.loads((workdir / f'{name}.json').read_text())
  meta_path = out / f'{name}.json'
  meta = json.loads(meta_path.read_text())
  for key in ('backend', 'network', 'obs_size', 'act_size'):
    if run_meta[key] != meta[key]:
      raise ValueError(f'{workdir / (name + ".json")}: {key} = {run_meta[key]!r}, the expert in '
                       f'{out} has {meta[key]!r}: the early run must use the expert\'s PPO setup')
  network = meta['network']
  family = make_family(name, **{**meta['config']['env'], 'backend': meta['backend']})
  files = sorted((workdir / 'checkpoints').glob('*.msgpack'), key=lambda p: int(p.stem))
  if not files:
    raise FileNotFoundError(f'no checkpoints in {workdir / "checkpoints"}')
  template = experts.params_template(meta['obs_size'], meta['act_size'], network, with_value=True)

  tasks = jax.tree.map(lambda x: jnp.repeat(x, _EPISODES.value, axis=0),
                       family.split_tasks('validation'))
  rng = jax.random.PRNGKey(_SEED.value)
  sampled = jax.jit(lambda params: experts.rollout(
      family, experts.make_policy_fn(family, params, network, deterministic=False), tasks, rng))

  def mean_return(policy_fn) -> float:
    return float(jax.jit(lambda: experts.rollout(family, policy_fn, tasks, rng))()['ret'].mean())

  uniform = mean_return(lambda task, state, key: jax.random.uniform(
      key, (family.act_dim,), minval=family.action_low, maxval=family.action_high))
  expert = mean_return(experts.load_expert(family, directory=out))
  rows = []
  for path in files:
    params = experts.from_bytes(template, path.read_bytes())[:2]
    traj = jax.device_get(sampled(params))
    rows.append({'step': int(path.stem), 'return': float(traj['ret'].mean()),
                 'length': float(traj['alive'].sum(1).mean()), 'params': params})
    print(f'checkpoint {rows[-1]["step"]:>9d}: validation return {rows[-1]["return"]:8.2f}, '
          f'episode length {rows[-1]["length"]:6.1f}', flush=True)
  target = uniform + _FRACTION.value * (expert - uniform)
  chosen = experts.nearest_checkpoint([r['return'] for r in rows], target)
  best = rows[chosen]

  io.write_atomic(out / f'{name}_{experts.EARLY_TIER}.msgpack', experts.to_bytes(best['params']))
  meta['random_tier'] = {
      'command': ' '.join(sys.argv), 'run_command': run_meta['command'],
      'selected_env_steps': best['step'], 'split': 'validation',
      'episodes_per_task': _EPISODES.value, 'seed': _SEED.value, 'fraction': _FRACTION.value,
      'uniform_return': uniform, 'expert_return': expert, 'target_return': target,
      'policy': 'actions sampled from the PPO tanh-Gaussian',
      'scores': [[r['step'], r['return'], r['length']] for r in rows],
      'columns': ['env_steps', 'validation return (sampled)', 'episode length'],
  }
  io.write_atomic(meta_path, json.dumps(meta, indent=1).encode())
  print(f'{name}: random tier = the checkpoint at {best["step"]} PPO steps, validation return '
        f'{best["return"]:.1f} (target {target:.1f}: uniform {uniform:.1f}, expert {expert:.1f}); '
        f'written to {out}')


if __name__ == '__main__':
  app.run(_common.clear_errors(main))
