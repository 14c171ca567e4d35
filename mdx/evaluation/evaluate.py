"""The evaluation stage: every method on the test tasks, `results.json`, the table and plots.

Methods (rows of the paper's Tables 1, 2 and 5):
- MetaDiffuser: the context from the test task's warm-start data (one tier per column), CFG and the
  dual guide, the best of N candidates by `J - lambda zeta`.
- UDiffuser: the same pipeline with no context anywhere (Table 5): a denoiser trained with
  beta = 1, sampled unconditionally, no guide (the reward and dynamics models need z), one plan.
- Oracle: the expert behaviour policy on the test task (knows the task).
- Random: uniform actions.
`normalized_score = (R - R_random) / (R_oracle - R_random)` with mean returns over the test tasks.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from mdx import data as mdata
from mdx.envs import TaskFamily
from mdx.evaluation.rollout import infer_contexts, policy_returns, replay_mask, rollout
from mdx.nets import ContextModel
from mdx.planning import PlanConfig, plan, trajectory_objective
from mdx.training import trainers

RESULT_KEYS = ('family', 'method', 'warm_start', 'mean_return', 'std_return', 'oracle_return',
               'random_return', 'normalized_score', 'num_tasks', 'episodes_per_task')


def plan_config(config, *, unconditional: bool = False) -> PlanConfig:
  p, d = config.planner, config.diffusion
  common = dict(horizon=d.horizon, num_steps=d.num_steps, noise_scale=p.noise_scale,
                predict_epsilon=d.predict_epsilon, clip_denoised=p.clip_denoised)
  if unconditional:
    return PlanConfig(**common)
  return PlanConfig(num_candidates=p.num_candidates, cfg_weight=p.cfg_weight,
                    guide_scale=p.guide_scale, dynamics_weight=p.dynamics_weight,
                    t_stopgrad=p.t_stopgrad, guide_form=p.get('guide_form', 'mean'),
                    guide_units=p.get('guide_units', 'normalized'), **common)


def make_guide_fn(context_model: ContextModel, norm: mdata.Normalizer):
  """`guide_fn(params, states, actions, z) -> (J, zeta)` from the context model in `params['context']`."""
  def guide_fn(params, states, actions, z):
    apply = lambda method: (lambda s, a, zz: context_model.apply(params['context'], norm, s, a, zz,
                                                                  method=method))
    return trajectory_objective(apply(ContextModel.reward), apply(ContextModel.next_state))(
        states, actions, z)
  return guide_fn


def make_denoise_fn(net, *, unconditional: bool = False):
  if unconditional:
    return lambda params, x, k, c, m: net.apply(params['denoiser'], x, k, c, jnp.zeros_like(m))
  return lambda params, x, k, c, m: net.apply(params['denoiser'], x, k, c, m)


def make_plan_fn(params, denoise_fn, guide_fn, norm, config: PlanConfig):
  def plan_fn(rng, obs, context):
    return plan(params, rng, obs, context, denoise_fn, guide_fn, normalizer=norm, config=config)
  return plan_fn


def _tile(tree, reps):
  return jax.tree.map(lambda x: jnp.tile(x, (reps,) + (1,) * (x.ndim - 1)), tree)


def _repeat(tree, reps):
  return jax.tree.map(lambda x: jnp.repeat(x, reps, axis=0), tree)


def evaluate(config, workdir: str) -> list[dict]:
  """Runs every method of `config.eval.methods`; writes `workdir/eval/results.json`, `table.txt`
  and plots; returns the result records."""
  family = trainers.family_from_config(config)
  e = config.eval
  tasks = family.test_tasks()
  n_tasks, eps = int(tasks.task_id.shape[0]), int(e.episodes_per_task)
  rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 7)
  oracle_rng, random_rng, ctx_rng, md_rng, ud_rng = jax.random.split(rng, 5)
  per_task, episodes_out = {}, {}

  t0 = time.time()
  oracle = np.asarray(policy_returns(family, tasks, mdata.make_policy(family, 'expert'),
                                     oracle_rng, eps))
  randomr = np.asarray(policy_returns(family, tasks, mdata.make_policy(family, 'random'),
                                      random_rng, eps))
  per_task[('Oracle', 'n/a')] = oracle
  per_task[('Random', 'n/a')] = randomr
  print(f'[eval] Oracle {oracle.mean():.3f}, Random {randomr.mean():.3f} '
        f'({time.time() - t0:.1f}s)', flush=True)

  if 'MetaDiffuser' in e.methods:
    context_model, context_params, norm = trainers.load_context(config, workdir, family)
    net, den_params = trainers.load_denoiser(config, workdir, family)
    params = {'context': context_params, 'denoiser': den_params}
    encode = lambda w: context_model.apply(context_params, norm, w, method=ContextModel.encode)
    tiers = list(e.warm_starts)
    contexts = []
    for i, tier in enumerate(tiers):
      warm, _ = trainers.load_dataset(workdir, family, 'test', tier)
      contexts.append(infer_contexts(encode, warm, jax.random.fold_in(ctx_rng, i),
                                     history=config.context.history, num_context=e.num_context))
    # One batch of tiers x tasks x episodes: B = len(tiers) * n_tasks * eps.
    ctx = _repeat(jnp.concatenate(contexts), eps)
    batch_tasks = _tile(_repeat(tasks, eps), len(tiers))
    plan_fn = make_plan_fn(params, make_denoise_fn(net), make_guide_fn(context_model, norm), norm,
                           plan_config(config))
    t0 = time.time()
    run = jax.jit(lambda r: rollout(family, batch_tasks, ctx, plan_fn, r))
    result = jax.block_until_ready(run(md_rng))
    print(f'[eval] MetaDiffuser: {len(tiers)} warm-start tiers x {n_tasks} tasks x {eps} '
          f'episodes in one program, {time.time() - t0:.1f}s (with compile)', flush=True)
    returns = np.asarray(result.returns).reshape(len(tiers), n_tasks, eps)
    for i, tier in enumerate(tiers):
      per_task[('MetaDiffuser', tier)] = returns[i]
    episodes_out['MetaDiffuser'] = jax.device_get(result)
    if e.get('plan_vs_reached_tasks', 0):
      n_fig = min(int(e.plan_vs_reached_tasks), n_tasks)
      traces = plan_vs_reached(family, jax.tree.map(lambda x: x[:n_fig], tasks),
                               contexts[0][:n_fig], net=net, context_model=context_model,
                               params=params, norm=norm, config=plan_config(config),
                               rng=jax.random.fold_in(md_rng, 1))
      episodes_out['plan_vs_reached'] = traces

  if 'UDiffuser' in e.methods:
    norm = mdata.load_normalizer(os.path.join(workdir, 'context', 'normalizer.npz'))
    net, den_params = trainers.load_denoiser(config, workdir, family, unconditional=True)
    plan_fn = make_plan_fn({'denoiser': den_params}, make_denoise_fn(net, unconditional=True),
                           None, norm, plan_config(config, unconditional=True))
    ctx = jnp.zeros((n_tasks * eps, config.context.context_dim))
    t0 = time.time()
    run = jax.jit(lambda r: rollout(family, _repeat(tasks, eps), ctx, plan_fn, r))
    result = jax.block_until_ready(run(ud_rng))
    print(f'[eval] UDiffuser: {time.time() - t0:.1f}s (with compile)', flush=True)
    per_task[('UDiffuser', 'n/a')] = np.asarray(result.returns).reshape(n_tasks, eps)

  records = make_records(family, per_task, oracle, randomr, eps)
  out = os.path.join(workdir, 'eval')
  write_results(out, records, per_task)
  if 'plan_vs_reached' in episodes_out:
    gaps = {str(lam): plan_discrepancy(ep).tolist()
            for lam, ep in episodes_out['plan_vs_reached'].items()}
    _write_json(os.path.join(out, 'plan_vs_reached.json'),
                {'mean_abs_state_error_per_plan_step': gaps})
    print('[eval] mean |planned - reached| per plan step: ' + ', '.join(
        f'lambda={lam}: {np.round(g, 3).tolist()}' for lam, g in gaps.items()), flush=True)
  print(format_table(records), flush=True)
  try:
    from mdx.evaluation import plots  # pylint: disable=g-import-not-at-top
    plots.plot_all(out, family, tasks, per_task, episodes_out, tiers=list(e.warm_starts),
                   episodes_per_task=eps)
  except Exception as err:  # plotting must never lose the results
    print(f'[eval] plots skipped: {type(err).__name__}: {err}', flush=True)
  return records


def plan_vs_reached(family: TaskFamily, tasks, contexts, *, net, context_model, params, norm,
                    config: PlanConfig, rng) -> dict:
  """The paper's Figure 3 as data: MetaDiffuser episodes on `tasks` with and without the dynamics
  guide (lambda = 0 and `config.dynamics_weight`), each step's plan replayed open-loop.

  Both lambdas run as one program: lambda is vmapped (the planner only multiplies zeta by it).
  Returns `{lambda: Episodes}` on the host, with `reached` filled.
  """
  lams = sorted({0.0, float(config.dynamics_weight)})

  def run(lam):
    plan_fn = make_plan_fn(params, make_denoise_fn(net), make_guide_fn(context_model, norm), norm,
                           dataclasses.replace(config, dynamics_weight=lam))
    return rollout(family, tasks, contexts, plan_fn, rng, replay_plans=True)

  t0 = time.time()
  out = jax.device_get(jax.jit(jax.vmap(run))(jnp.asarray(lams)))
  print(f'[eval] plans replayed open-loop (Figure 3), lambda in {lams}: '
        f'{time.time() - t0:.1f}s (with compile)', flush=True)
  return {lam: jax.tree.map(lambda x, i=i: x[i], out) for i, lam in enumerate(lams)}


def plan_discrepancy(episodes) -> np.ndarray:
  """Mean |planned - reached| per plan step `[H]`, over episodes, replayed steps, state entries."""
  err = np.abs(np.asarray(episodes.plans) - np.asarray(episodes.reached)).mean(-1)  # [B, T, H]
  mask = replay_mask(np.asarray(episodes.alive), err.shape[-1])
  return (err * mask).sum((0, 1)) / np.maximum(mask.sum((0, 1)), 1)


def make_records(family: TaskFamily, per_task, oracle, randomr, eps) -> list[dict]:
  r_or, r_ra = float(oracle.mean()), float(randomr.mean())
  records = []
  for (method, tier), returns in per_task.items():
    mean = float(np.mean(returns))
    records.append(dict(
        family=family.name, method=method, warm_start=tier, mean_return=mean,
        std_return=float(np.std(returns.mean(-1))),  # across test tasks, as the paper's ±
        oracle_return=r_or, random_return=r_ra,
        normalized_score=(mean - r_ra) / (r_or - r_ra), num_tasks=int(returns.shape[0]),
        episodes_per_task=int(eps)))
  return records


def write_results(out: str, records: list[dict], per_task) -> None:
  """`results.json` (records) and `per_task_returns.json`, each via a temp file and a rename."""
  os.makedirs(out, exist_ok=True)
  detail = {f'{m}/{t}': np.asarray(r).tolist() for (m, t), r in per_task.items()}
  for name, obj in (('results.json', records), ('per_task_returns.json', detail)):
    _write_json(os.path.join(out, name), obj)
  with open(os.path.join(out, 'table.txt'), 'w') as f:
    f.write(format_table(records) + '\n')


def _write_json(path: str, obj) -> None:
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, path)


def format_table(records: list[dict]) -> str:
  """The paper's layout: one row per method, one column per warm-start tier, `mean ± std (score)`."""
  tiers = [t for t in ('expert', 'medium', 'random') if any(r['warm_start'] == t for r in records)]
  methods = []
  for r in records:
    if r['method'] not in methods:
      methods.append(r['method'])
  family = records[0]['family'] if records else ''
  cell = lambda r: f"{r['mean_return']:.2f} ± {r['std_return']:.2f} ({r['normalized_score']:.2f})"
  width = 26
  lines = [f'{family}: average test return ± std over test tasks (normalized score)',
           f"{'method':<14}" + ''.join(f'{"warm start: " + t:<{width}}' for t in tiers)]
  for m in methods:
    rows = {r['warm_start']: r for r in records if r['method'] == m}
    if 'n/a' in rows:
      lines.append(f'{m:<14}{cell(rows["n/a"]):<{width}}(no warm-start data used)')
    else:
      lines.append(f'{m:<14}' + ''.join(f'{cell(rows[t]) if t in rows else "-":<{width}}'
                                        for t in tiers))
  return '\n'.join(lines)
