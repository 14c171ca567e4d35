"""The paper's Figure 3 as data: are MetaDiffuser's plans reachable, with and without the
dynamics guide?

MetaDiffuser runs on the first `config.eval.plan_vs_reached_tasks` tasks of the split (expert
warm-start data) with lambda = 0 and with the preset's lambda, every training seed x evaluation
seed, and every step's kept plan is replayed open-loop from the true state
(`rollout(replay_plans=True)`). The gap |planned - reached| (mean over state entries, environment
units) is averaged per plan step over each episode's replayed steps; the episodes' gaps get a 95%
bootstrap interval (`mdx.evaluation.stats`, training seeds then episodes). Everything (lambdas,
seeds, tasks) is one compiled program: lambda is vmapped, the planner only multiplies zeta by it.

Writes `plan_vs_reached.json` and `plan_vs_reached.png` (the first task's first episode).
"""
from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from mdx import data as mdata
from mdx import io
from mdx.envs import family_from_config
from mdx.evaluation import stats
from mdx.evaluation.policy import stack_params
from mdx.evaluation.rollout import episode_gaps, rollout
from mdx.progress import from_config as progress_from_config
from mdx.methods.metadiffuser import context as ctx_stage
from mdx.methods.metadiffuser import denoiser as den_stage
from mdx.methods.metadiffuser.policy import plan_config, planner_policy


def plan_vs_reached(config, workdir: str, split: str, out_dir: str) -> dict | None:
  """Runs the replay and writes its outputs; returns the JSON record (None when disabled)."""
  e = config.eval
  if not e.plan_vs_reached_tasks:
    return None
  family = family_from_config(config)
  n = min(int(e.plan_vs_reached_tasks), int(family.split_tasks(split).task_id.shape[0]))
  tasks = jax.tree.map(lambda x: x[:n], family.split_tasks(split))
  warm = jax.tree.map(lambda x: x[:n], mdata.load_dataset(workdir, family, split, 'expert'))
  loaded = []
  for seed in config.train_seeds:
    model, context_params, norm = ctx_stage.load_context(config, workdir, seed, family)
    net, den_params = den_stage.load_denoiser(config, workdir, seed, family)
    loaded.append({'context': context_params, 'denoiser': den_params, 'norm': norm})
  params = stack_params([planner_policy(config, model, net, p, plan_config(config))
                         for p in loaded]).params
  lams = sorted({0.0, float(config.planner.dynamics_weight)})
  keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(config.seed), 8),
                          e.num_eval_seeds)

  report = progress_from_config(config, f'eval/{split} Figure 3')

  def one(lam, p, key):
    policy = planner_policy(config, model, net, p, plan_config(config, dynamics_weight=lam))
    ep = rollout(family, tasks, policy, key, warm_start=warm, replay_plans=True,
                 progress=report)
    first = jax.tree.map(lambda x: x[:1], (ep.observations, ep.plans, ep.reached, ep.alive))
    return episode_gaps(ep.plans, ep.reached, ep.alive), first

  run = jax.vmap(jax.vmap(jax.vmap(one, (None, None, 0)), (None, 0, None)), (0, None, None))
  t0 = time.time()
  gaps, first = jax.device_get(jax.jit(run)(jnp.asarray(lams), params, keys))
  print(f'[eval/{split}] Figure 3: lambda in {lams} x {len(loaded)} training seeds x '
        f'{e.num_eval_seeds} evaluation seeds x {n} tasks replayed open-loop, '
        f'{time.time() - t0:.1f}s (with compile)', flush=True)
  gaps = np.asarray(gaps)  # [lams, S_train, S_eval, n, H]
  record = {'split': split, 'num_tasks': n, 'num_train_seeds': len(loaded),
            'num_eval_seeds': int(e.num_eval_seeds), 'lambdas': {}}
  for i, lam in enumerate(lams):
    g = gaps[i].reshape(gaps.shape[1], -1, gaps.shape[-1])  # [S_train, episodes, H]
    steps = [stats.interval(g[:, :, h]) for h in range(1, g.shape[-1])]
    summary = g[:, :, 1:].mean(-1)
    lo, hi = stats.interval(summary)
    record['lambdas'][f'{lam:g}'] = {
        'mean_abs_gap_per_plan_step': g.mean((0, 1)).tolist(),
        'ci_low_per_plan_step': [0.0] + [s[0] for s in steps],
        'ci_high_per_plan_step': [0.0] + [s[1] for s in steps],
        'mean_abs_gap': float(summary.mean()), 'ci_low': lo, 'ci_high': hi}
    print(f'[eval/{split}] lambda={lam:g}: mean |planned - reached| over plan steps 1..H-1 '
          f'{summary.mean():.3f} [{lo:.3f}, {hi:.3f}]', flush=True)
  io.write_json(os.path.join(out_dir, 'plan_vs_reached.json'), record)
  try:
    from mdx.evaluation import plots  # pylint: disable=g-import-not-at-top
    from mdx.evaluation.rollout import Episodes  # pylint: disable=g-import-not-at-top
    traces = {}
    for i, lam in enumerate(lams):
      obs, plans, reached, alive = (np.asarray(x)[i, 0, 0] for x in first)
      traces[lam] = Episodes(returns=np.zeros(1), observations=obs, actions=None, rewards=None,
                             alive=alive, info={'plan_states': plans}, reached=reached)
    plots.plot_plan_vs_reached(os.path.join(out_dir, 'plan_vs_reached.png'), family, traces)
  except Exception as err:  # pylint: disable=broad-except
    print(f'[eval] Figure-3 plot skipped: {type(err).__name__}: {err}', flush=True)
  return record
