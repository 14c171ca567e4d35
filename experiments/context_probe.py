"""How well the trained context encoder identifies a task from each tier's warm-start data.

For every task of the split and every tier, z is inferred as the evaluation infers it (several
draws of `context.num_context` windows); the probe reports the mean distance of z to the same
task's expert-data context, and how often the nearest expert-data context is the task's own
(chance: 1 / tasks). `--random_episodes=N` adds random-tier warm-start data of N episodes per
task, collected afresh (not saved), to see whether more data helps; `--random_from=uniform,checkpoint`
collects it from both sources (uniform actions, the family's early PPO checkpoint).

  python experiments/context_probe.py --config=configs/hopper_param.py:cpu \
      --workdir=runs/hopper_param --split=validation --random_episodes=2,10,20
"""
import _common  # first: sets up logging before JAX loads
import jax
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from mdx import data as mdata
from mdx.config_check import check_config
from mdx.data import policies
from mdx.data.collect import collect
from mdx.envs import SPLITS, family_from_config
from mdx.methods.metadiffuser import context as ctx_stage
from mdx.methods.metadiffuser.policy import infer_contexts
from mdx.nets import ContextModel

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder with a trained context stage.')
_SPLIT = flags.DEFINE_enum('split', 'validation', list(SPLITS), 'Which tasks.')
_SEED = flags.DEFINE_integer('seed', 0, 'Training seed of the context stage.')
_DRAWS = flags.DEFINE_integer('draws', 8, 'Context draws per task and tier.')
_RANDOM = flags.DEFINE_list('random_episodes', [], 'Also fresh random data of these sizes.')
_RANDOM_FROM = flags.DEFINE_list('random_from', [], "Sources of the fresh random data ('uniform', "
                                 "'checkpoint'); default: the config's data.random_from.")
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  _common.setup()
  config, workdir = _CONFIG.value, _WORKDIR.value
  check_config(config)  # read-only: the workdir is neither locked nor written
  family = family_from_config(config)
  model, params, norm = ctx_stage.load_context(config, workdir, _SEED.value, family)
  encode = jax.jit(lambda w: model.apply(params, norm, w, method=ContextModel.encode))
  c = config.context

  def contexts(warm):  # [draws, tasks, C]
    return np.stack([np.asarray(infer_contexts(encode, warm, jax.random.PRNGKey(i),
                                               history=c.history, num_context=c.num_context))
                     for i in range(_DRAWS.value)])

  sets = [(t, mdata.load_dataset(workdir, family, _SPLIT.value, t)) for t in policies.TIERS]
  tasks = family.split_tasks(_SPLIT.value)
  fresh = [(source, int(n)) for source in (_RANDOM_FROM.value or [config.data.random_from])
           for n in _RANDOM.value]
  for i, (source, n) in enumerate(fresh):
    policy = policies.behaviour_policy(family, 'random', source)
    run = jax.jit(lambda r, n=n, p=policy: collect(family, tasks, p, r, n))
    sets.append((f'random ({source}) x{n}', jax.device_get(run(jax.random.PRNGKey(100 + i)))))
  expert = contexts(sets[0][1]).mean(0)
  k = len(expert)
  between = np.mean([np.linalg.norm(expert[i] - expert[j]) for i in range(k) for j in range(k)
                     if i != j])
  print(f'{family.name}, {_SPLIT.value} split, {k} tasks: mean distance between two tasks\' '
        f'expert contexts {between:.3f}; chance of identification {1 / k:.0%}')
  for name, warm in sets:
    z = contexts(warm)
    d = np.linalg.norm(z[:, :, None] - expert[None, None], axis=-1)
    hit = (d.argmin(-1) == np.arange(k)[None]).mean()
    steps = np.asarray(warm.valid).sum((1, 2)).mean()
    print(f'{name:<26} {steps:6.0f} transitions/task  |z - z_expert(same task)| '
          f'{np.linalg.norm(z - expert[None], axis=-1).mean():.3f}  identified {hit:.0%}')


if __name__ == '__main__':
  app.run(_common.clear_errors(main))
