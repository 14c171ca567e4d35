"""MTDiff-S's data augmentation (He et al. 2023, Section 5.3, on mdx's families): an offline
learner per held-out task trained on the task's few real episodes, with and without MTDiff-S
transitions synthesized from those episodes as prompts.

  python experiments/mtdiff_augment.py --config=configs/point_robot.py:cpu \
      --workdir=runs/point_robot --split=validation --real_episodes=1 --windows=64

For every task of `--split`: its first `--real_episodes` warm-start episodes of `--tier` are the
real data; MTDiff-S (stage `mtdiff_s`, trained here if needed) generates `--windows` H-step windows
from prompts drawn from them. Two learners per task, offline SAC with CQL (`mdx.rl`; the paper's
TD3-BC is not in mdx), one on the real transitions, one on real and synthetic ones pooled
(uniform over the union), each trained as one vmapped program over the tasks. Both are then
evaluated in-graph on their own tasks with the Oracle and Random references, every number with
its 95% bootstrap interval. Writes `WORKDIR/eval/<split>-mtdiff-augment/results.json` (the rows,
the synthetic data's check against the simulator, the settings) and prints the table.
"""
import json
import os

import _common  # first: sets up logging before JAX loads
import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from mdx import data as mdata
from mdx import io
from mdx import provenance
from mdx import rl
from mdx import workdir as layout
from mdx.envs import SPLITS, family_from_config
from mdx.evaluation.evaluate import NO_TIER, format_table, make_records, run_method
from mdx.evaluation.policy import Policy
from mdx.methods import get_method
from mdx.methods.base import Method
from mdx.methods.mtdiff import synthesis
from mdx.sweep import sweep_key

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder with collected datasets.')
_SPLIT = flags.DEFINE_enum('split', 'validation', list(SPLITS), 'The held-out tasks.')
_TIER = flags.DEFINE_string('tier', 'expert', 'The real episodes\' warm-start tier.')
_REAL = flags.DEFINE_integer('real_episodes', 1, 'Real episodes per task.')
_WINDOWS = flags.DEFINE_integer('windows', 64, 'Synthetic windows (H steps each) per task.')
_HIDDEN = flags.DEFINE_list('hidden', ['64', '64'], "The learner's Q and policy MLP widths.")
_CQL = flags.DEFINE_float('cql_weight', 5.0, "CQL(H)'s weight (0: plain SAC).")
_CALLS = flags.DEFINE_integer('num_calls', 20, 'Compiled calls of `updates_per_call` updates.')
_UPDATES = flags.DEFINE_integer('updates_per_call', 500, 'SAC updates per compiled call.')
_BATCH = flags.DEFINE_integer('batch', 256, 'Transitions per update and task.')
flags.mark_flags_as_required(['config', 'workdir'])


def episodes(data: mdata.Trajectories, k: int) -> mdata.Trajectories:
  """The first `k` episodes of every task."""
  if not 1 <= k <= data.episodes_per_task:
    raise app.UsageError(f'--real_episodes={k}: must be in [1, {data.episodes_per_task}] (the '
                         'warm-start episodes per task)')
  per_episode = ('observations', 'actions', 'rewards', 'next_observations', 'terminals',
                 'timeouts', 'valid')
  return data.replace(**{f: jnp.asarray(getattr(data, f))[:, :k] for f in per_episode})


def batch_of(t: mdata.Transitions, high: float) -> rl.Batch:
  return rl.Batch(obs=t.states, act=t.actions / high, rew=t.rewards, next_obs=t.next_states,
                  done=t.terminals)


def train_learners(real, synthetic, sac: rl.SACConfig, family, rng):
  """One SAC learner per task (vmapped), on `real` or, with `synthetic`, on the pooled data."""
  n, high = real.num_tasks, float(family.action_high)
  tasks = jnp.arange(n)
  count = lambda d: float(np.asarray(d.valid).sum()) / n
  n_real = _BATCH.value if synthetic is None else max(1, round(
      _BATCH.value * count(real) / (count(real) + count(synthetic))))

  def sample(key):
    r_key, s_key = jax.random.split(key)
    t = mdata.sample_transitions(r_key, real, tasks, n_real)
    if synthetic is not None:
      s = mdata.sample_transitions(s_key, synthetic, tasks, _BATCH.value - n_real)
      t = jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=1), t, s)
    return batch_of(t, high)

  def update(state, batch, key):
    return jax.vmap(lambda s, b, k: rl.sac_update(s, b, k, sac))(state, batch,
                                                                  jax.random.split(key, n))
  init_rng, train_rng = jax.random.split(rng)
  state = jax.vmap(lambda k: rl.init_sac(k, family.obs_dim, family.act_dim, sac))(
      jax.random.split(init_rng, n))
  step = rl.make_train_step(update, sample, _UPDATES.value)
  for i in range(_CALLS.value):
    state, metrics = step(state, jax.random.fold_in(train_rng, i))
    if (i + 1) % max(1, _CALLS.value // 5) == 0 or i + 1 == _CALLS.value:
      shown = ' '.join(f'{k}={float(v):.4g}' for k, v in metrics.items())
      print(f'[augment] {"real+synthetic" if synthetic is not None else "real"}: call '
            f'{i + 1}/{_CALLS.value} {shown}', flush=True)
  return state.actor.params, n_real


def learner_method(name, actors, split_ids, sac, family) -> Method:
  """The per-task learners as a `Method` for `run_method`: each environment acts with the
  deterministic policy of its own task's learner."""
  def make_policy(config, workdir, seed, fam):
    del config, workdir, seed, fam
    def init(p, rng, tasks, warm):
      del rng, warm
      return jnp.argmax(p['ids'][None] == tasks.task_id[:, None], axis=1)
    def act(p, index, obs, rng):
      del rng
      params = jax.tree.map(lambda x: x[index], p['actors'])
      a = jax.vmap(lambda q, o: rl.policy_mode(q, o[None], family.act_dim, sac.hidden)[0])(
          params, obs)
      return a * family.action_high, index, {}
    return Policy(params={'actors': actors, 'ids': split_ids}, init_fn=init, act_fn=act)
  return Method(name=name, make_policy=make_policy)


def main(argv):
  del argv
  _common.setup()
  config, workdir = _CONFIG.value, _WORKDIR.value
  family = family_from_config(config)
  if family.action_low != -family.action_high:
    raise app.UsageError(f'{family.name}: the learner maps a symmetric action box to [-1, 1]')
  seed = config.train_seeds[0]
  sac = rl.SACConfig(hidden=tuple(int(h) for h in _HIDDEN.value), cql_weight=_CQL.value)
  with layout.lock(workdir, 'experiments/mtdiff_augment.py'):
    _common.prepare(config, workdir, 'mtdiff_augment')
    provenance.check_stages(config, workdir, [synthesis.MTDIFF_S_STAGE], [seed])
    provenance.run_stage(config, workdir, synthesis.MTDIFF_S_STAGE, seed)
    real = episodes(mdata.load_dataset(workdir, family, _SPLIT.value, _TIER.value), _REAL.value)
    params = synthesis.load_mtdiff_s(config, workdir, seed, family)
    rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 10)
    rows = jax.jit(lambda p, key: synthesis.synthesize(config, family, p, key, real,
                                                       _WINDOWS.value))(params, rng)
    synthetic = synthesis.to_trajectories(family, params['norm'], rows, real)
    try:
      check = synthesis.check(family, synthetic)
    except NotImplementedError as err:
      check = {'unavailable': str(err)}
    print(f'[augment] synthetic data: {json.dumps(check)}', flush=True)
    split_ids = jnp.asarray(real.task_ids)
    learn_rng = jax.random.fold_in(rng, 1)  # the same learner initializations in both runs
    per_method, counts = {}, {}
    for name, syn in (('SAC+CQL (real)', None), ('SAC+CQL (real+synthetic)', synthetic)):
      actors, counts[name] = train_learners(real, syn, sac, family, learn_rng)
      method = learner_method(name, actors, split_ids, sac, family)
      returns, _ = run_method(config, workdir, method, family, _SPLIT.value)
      per_method[(name, NO_TIER, sweep_key({}))] = returns[(NO_TIER, sweep_key({}))]
    for name in (config.eval.oracle, config.eval.random):
      returns, _ = run_method(config, workdir, get_method(name), family, _SPLIT.value)
      per_method[(name, NO_TIER, sweep_key({}))] = returns[(NO_TIER, sweep_key({}))]
    records = make_records(family, _SPLIT.value, per_method, oracle=config.eval.oracle,
                           random=config.eval.random,
                           trained={n: n.startswith('SAC') for n, _, _ in per_method})
    settings = {'real_episodes': _REAL.value, 'windows_per_task': _WINDOWS.value,
                'horizon': int(config.mtdiff_s.horizon), 'tier': _TIER.value,
                'sac': {'hidden': list(sac.hidden), 'cql_weight': sac.cql_weight,
                        'num_updates': _CALLS.value * _UPDATES.value, 'batch': _BATCH.value},
                'real_per_batch': counts}
    out = layout.eval_dir(workdir, _SPLIT.value, 'mtdiff-augment')
    os.makedirs(out, exist_ok=True)
    io.write_atomic(os.path.join(out, 'results.json'),
                    json.dumps({'records': records, 'synthetic_check': check,
                                'settings': settings}, indent=1))
    print(format_table(records), flush=True)
    print(f'[augment] wrote {out}/results.json', flush=True)


if __name__ == '__main__':
  app.run(_common.clear_errors(main))
