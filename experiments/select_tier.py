"""Picks a behaviour tier of a family from a PPO run's checkpoints, on validation tasks.

  # the random tier: an early, low-return checkpoint
  python experiments/train_expert.py --config=configs/experts.py:hopper_param \\
      --config.ppo.num_timesteps=409600 --config.ppo.num_evals=11 \\
      --workdir=runs/experts/hopper_early --output_dir=runs/experts/hopper_early
  python experiments/select_tier.py --family=hopper_param --workdir=runs/experts/hopper_early
  # the medium tier, re-picked from the early part of the expert's own run (its num_timesteps
  # and num_evals, so that the checkpoints are the run's; stopped after a few checkpoints)
  python experiments/train_expert.py --config=configs/experts.py:hopper_param \\
      --config.ppo.num_timesteps=24000000 --config.ppo.num_evals=61 \\
      --config.stop_after_env_steps=1300000 --workdir=runs/experts/hopper_medium
  python experiments/select_tier.py --family=hopper_param --tier=medium \\
      --workdir=runs/experts/hopper_medium

The paper's random warm-start data are low-return rollouts from early in its SAC experts'
training, split from the rest by return (its App. G); mdx's default random tier is uniform
actions, which topple Hopper and Walker near their initial pose and say little about their physics
(results/hopper_param/NOTES.md). This binary scores every checkpoint of a short re-run of the
expert's PPO configuration (`<workdir>/checkpoints/<steps>.msgpack`, written by
`train_expert.py`) on the family's *validation* tasks, `--episodes` episodes each with actions
sampled from the policy (as the collector samples them), and keeps the checkpoint whose mean
return is nearest `uniform + fraction * (expert - uniform)`: the committed expert's deterministic
return and uniform actions' return on the same tasks and keys. `--fraction` defaults to 1/6, the
middle of the bottom third of that range. The checkpoint goes to
`<output_dir>/<family>_random.msgpack`; the family's `<family>.json` gains a `random_tier` record
with every score. Use it with `--config.data.random_from=checkpoint`.

`--tier=medium` picks the medium tier the way `train_expert.py` does, on the validation tasks:
deterministic episodes, the score of the expert's `medium_by` (return, or the family's task
metric), `--fraction=0.5` by default, the committed expert as the high end. The checkpoint goes to
`<family>_medium.msgpack`, and the json gains a `medium_tier` record with every score and whether
the pick is the file that was there. A re-run that does not reproduce the file's own run bit for
bit (MJX runs do not, across machines) cannot rank that run's checkpoints: when it picks the same
point of training (PPO steps) as the file's, the file stays (`kept_previous`), scored beside.
"""
import json
import pathlib
import sys

import _common  # first: sets up logging before JAX loads
import jax
from absl import app, flags

from mdx import experts, io
from mdx.envs import locomotion, make_family

_FAMILY = flags.DEFINE_enum('family', None, sorted(locomotion.FAMILIES), 'Family.', required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'The early run (with checkpoints/ and '
                               '<family>.json, train_expert\'s --workdir = --output_dir).',
                               required=True)
_TIER = flags.DEFINE_enum('tier', 'random', ['random', 'medium'], 'The tier to pick.')
_FRACTION = flags.DEFINE_float('fraction', None, 'Target score, as the fraction of the way from '
                               'uniform actions to the expert (0 < f < 1; default: 1/6 for the '
                               'random tier, 1/2 for the medium tier).')
_EPISODES = flags.DEFINE_integer('episodes', 4, 'Episodes per validation task (sampled actions '
                                 'for the random tier, deterministic for the medium tier).')
_SEED = flags.DEFINE_integer('seed', 0, 'Key of the episodes.')
_OUTPUT = flags.DEFINE_string('output_dir', str(experts.EXPERT_DIR),
                              'Where the committed expert and its json are (and the tier goes).')


def main(argv):
  del argv
  _common.setup()
  medium = _TIER.value == 'medium'
  fraction = _FRACTION.value if _FRACTION.value is not None else 0.5 if medium else 1 / 6
  if not 0 < fraction < 1 or _EPISODES.value < 1:
    raise ValueError(f'--fraction must be in (0, 1) and --episodes >= 1, got {fraction}, '
                     f'{_EPISODES.value}')
  name, workdir, out = _FAMILY.value, pathlib.Path(_WORKDIR.value), pathlib.Path(_OUTPUT.value)
  meta_path = out / f'{name}.json'
  meta = json.loads(meta_path.read_text())
  run_meta = _run_meta(workdir, name)
  for key in ('backend', 'network', 'obs_size', 'act_size'):
    if key in run_meta and run_meta[key] != meta[key]:
      raise ValueError(f'{workdir}: {key} = {run_meta[key]!r}, the expert in '
                       f'{out} has {meta[key]!r}: the early run must use the expert\'s PPO setup')
  network = meta['network']
  family = make_family(name, **{**meta['config'].get('env', {}), 'backend': meta['backend']})
  files = sorted((workdir / 'checkpoints').glob('*.msgpack'), key=lambda p: int(p.stem))
  if not files:
    raise FileNotFoundError(f'no checkpoints in {workdir / "checkpoints"}')
  template = experts.params_template(meta['obs_size'], meta['act_size'], network, with_value=True)

  tasks = experts.split_episodes(family, 'validation', _EPISODES.value)
  rng = jax.random.PRNGKey(_SEED.value)
  by = meta['config'].get('medium_by', 'return') if medium else 'return'

  def score(traj) -> tuple[float, float]:
    traj = jax.device_get(traj)
    return experts.tier_score(family, tasks, traj, by), float(traj['alive'].sum(1).mean())

  def once(policy_fn):
    return score(jax.jit(lambda: experts.rollout(family, policy_fn, tasks, rng))())

  uniform, _ = once(lambda task, state, key: jax.random.uniform(
      key, (family.act_dim,), minval=family.action_low, maxval=family.action_high))
  expert, _ = once(experts.load_expert(family, directory=out))
  checkpoint = jax.jit(lambda params: experts.rollout(  # one program for every checkpoint
      family, experts.make_policy_fn(family, params, network, deterministic=medium), tasks, rng))
  rows = []
  for path in files:
    params = experts.from_bytes(template, path.read_bytes())[:2]
    value, length = score(checkpoint(params))
    rows.append({'step': int(path.stem), 'score': value, 'length': length, 'params': params})
    print(f'checkpoint {rows[-1]["step"]:>9d}: validation {by} {value:8.3f}, '
          f'episode length {length:6.1f}', flush=True)
  chosen, target = experts.pick_tier([r['score'] for r in rows], uniform, expert, fraction)
  best = rows[chosen]

  stem = f'{name}_{"medium" if medium else experts.EARLY_TIER}'
  data = experts.to_bytes(best['params'])
  before = out / f'{stem}.msgpack'
  unchanged = before.exists() and before.read_bytes() == data
  keep = unchanged
  extra = {}
  if medium and before.exists() and not unchanged:
    # Does this run reproduce the one the file there came from (its checkpoint at that file's
    # PPO steps, bit for bit)? If not (MJX runs are not bit-reproducible across machines), this
    # run cannot rank the original's checkpoints; when it picks the same point of training, the
    # original's checkpoint stays.
    old_step = meta.get('medium_env_steps')
    same = [r for r in rows if r['step'] == old_step]
    reproduces = bool(same) and experts.to_bytes(same[0]['params']) == before.read_bytes()
    previous = experts.from_bytes(experts.params_template(meta['obs_size'], meta['act_size'],
                                                          network), before.read_bytes())
    extra = {'previous_env_steps': old_step, 'run_reproduces_previous': reproduces,
             f'previous_{by}': score(checkpoint(previous))[0]}
    keep = not reproduces and best['step'] == old_step
  if not keep:
    io.write_atomic(before, data)
    if medium:  # the json's medium fields follow the file; its test quality is reported anew
      test, test_rng = experts.recorded_test(family, meta['config']['eval_episodes_per_task'],
                                             meta['config']['seed'])
      traj = jax.jit(lambda p: experts.rollout(family, experts.make_policy_fn(family, p, network),
                                               test, test_rng))(best['params'])
      meta['medium_env_steps'] = best['step']
      meta['quality']['medium'] = experts.quality(family, test, jax.device_get(traj))
  record = {
      'command': ' '.join(sys.argv), 'run_command': run_meta.get('command'),
      'selected_env_steps': best['step'], 'split': 'validation',
      'episodes_per_task': _EPISODES.value, 'seed': _SEED.value, 'fraction': fraction,
      'score': by, f'uniform_{by}': uniform, f'expert_{by}': expert, f'target_{by}': target,
      'policy': ('deterministic tanh(mean) of the PPO tanh-Gaussian' if medium
                 else 'actions sampled from the PPO tanh-Gaussian'),
      'scores': [[r['step'], r['score'], r['length']] for r in rows],
      'columns': ['env_steps', f'validation {by}', 'episode length'],
  }
  if medium:
    record.update(same_as_before=unchanged, kept_previous=keep, **extra)
  meta[f'{"medium" if medium else "random"}_tier'] = record
  io.write_atomic(meta_path, json.dumps(meta, indent=1).encode())
  print(f'{name}: {_TIER.value} tier = the checkpoint at {best["step"]} PPO steps, validation '
        f'{by} {best["score"]:.3f} (target {target:.3f}: uniform {uniform:.3f}, expert '
        f'{expert:.3f}); ' + ('the file there already held it' if unchanged
                              else f'{before} kept: {extra}' if keep
                              else f'written to {before}'))


def _run_meta(workdir: pathlib.Path, name: str) -> dict:
  """What the run recorded of itself: its `<family>.json` (a finished run) or, for a run stopped
  early, the config in `resume.json`, with the network and command left unchecked."""
  finished = workdir / f'{name}.json'
  if finished.exists():
    return json.loads(finished.read_text())
  resume = workdir / 'resume.json'
  if not resume.exists():
    raise FileNotFoundError(f'{workdir} holds neither {name}.json nor resume.json: not a '
                            'train_expert.py run folder')
  config = json.loads(resume.read_text())['config']
  return {'network': config['network'], 'command': None}


if __name__ == '__main__':
  app.run(_common.clear_errors(main))
