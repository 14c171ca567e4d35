"""Times the compiled planner, one denoiser update and an in-graph rollout; one JSON line per
measurement.

  python experiments/benchmark.py --config=configs/benchmark.py [--config.batches='(1,)']

Before and after a change, in one run: `--config.compare_with=PATH` (a checkout of the code before
it, e.g. `git worktree add /tmp/mdx_before HEAD~3`) runs every planner measurement and the
`train_step` one (when `train_batch` is set) in a fresh
process of each code base, alternating baseline / current for `compare_rounds` rounds (so both
see the same machine load), prints every line with its `variant`, then one summary line per
measurement: the median over rounds of each variant's medians and their ratio.

Keys: name, batch, num_steps, compile_s (lowering + XLA compilation, measured without the
persistent cache), median_s (median of at least `repeats` runs after one warm-up, more until
`min_time_s` is spent), runs, plans_per_s, compute_dtype (the U-Net's; planner rows of a
`compute_dtypes` other than float32 add max_abs_action_diff: the largest difference of their
actions from the float32 program's, same parameters, observations and keys),
flops_per_plan, gflops_per_s, ceiling_fraction (gflops_per_s over the `matmul_ceiling` line's
GFLOP/s: the best fp32 matmul XLA runs on this machine, square sizes `ceiling_sizes`, measured
first in the same run). `evaluation` lines time one whole evaluation program of a method as the
pipeline runs it (MetaDiffuser of `eval_config`: its planner with CFG, the dual guide and the
candidates at every environment step, context inference from warm-start data; randomly
initialized networks, which cost what trained ones cost) on the family's test tasks, one
episode each: environment steps with planning per second, and the program's compile time without
and with the persistent compilation cache (a fresh cache folder, filled by the first compile;
the second compile after `jax.clear_caches()` reads it). `rollout` lines time one evaluation episode of a random policy on
`rollout_family`'s test tasks for each `progress_every` (0: no progress callbacks), in one run.
`sample_transitions` lines time the TD-learning baselines' transition sampler at each of
`sampler_shapes` (random data; the draws of one update's batch).
XLA's cost analysis counts a while-loop body once, so FLOPs are
taken from the planner lowered with K = 1 and multiplied by K (the initial noise and the final
candidate scoring, well under 1% of the work, are then counted K times).
"""
import collections
import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import time

from absl import app, flags
from ml_collections import config_flags
import jax
import jax.numpy as jnp

from mdx.data import Normalizer
from mdx.diffusion import denoising_loss, loss_weights, make_schedule
from mdx.nets import ContextModel, TemporalUNet
from mdx.planning import PlanConfig, plan, trajectory_objective
from mdx.training import TrainState
import optax

_CONFIG = config_flags.DEFINE_config_file('config', None, 'configs/benchmark.py',
                                          lock_config=True)
flags.mark_flags_as_required(['config'])


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get('flops', 0.0))


def _time(fn, args, repeats, min_time_s):
  """Median wall time of `fn(*args)`: at least `repeats` runs after a warm-up, and more (up to
  1000) until `min_time_s` has been spent, so that fast programs get many samples."""
  jax.block_until_ready(fn(*args))  # warm-up
  times = []
  while len(times) < repeats or (sum(times) < min_time_s and len(times) < 1000):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return statistics.median(times), len(times)


def _compile(fn, args):
  t0 = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  return compiled, time.perf_counter() - t0


def _plan_config(**kw) -> PlanConfig:
  """A `PlanConfig` of this code base or of an older one (where K was named `num_steps`)."""
  if 'num_steps' in {f.name for f in dataclasses.fields(PlanConfig)}:
    kw['num_steps'] = kw.pop('num_diffusion_steps')
  return PlanConfig(**kw)


def _compare(c) -> None:
  """Alternates fresh processes of the baseline checkout and of this one per measurement."""
  here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  off = ['--config.compare_with=', '--config.rollout_family=', '--config.eval_config=',
         '--config.ceiling_sizes=()', '--config.profile_batches=()']
  # (mode, K, B) -> the measurement's own flags; 'train_step' (one denoiser update at
  # `train_batch`, when it is set) is measured like the planner rows.
  runs = {(mode, k, b): [f"--config.modes=('{mode}',)", f'--config.num_diffusion_steps=({k},)',
                         f'--config.batches=({b},)', '--config.train_batch=0',
                         '--config.sampler_shapes=()']
          for mode in c.modes for k in c.num_diffusion_steps for b in c.batches}
  if c.train_batch:
    runs[('train_step', 1, c.train_batch)] = [
        '--config.modes=()', f'--config.train_batch={c.train_batch}',
        '--config.stack_members=()', '--config.train_scan=0', '--config.sampler_shapes=()']
  # (the script is this one in both variants, so the baseline's `mdx` sampler is what it times)
  for shape in c.sampler_shapes:
    runs[('sample_transitions', shape[0], shape[-1])] = [  # (mode, tasks, draws)
        '--config.modes=()', '--config.train_batch=0',
        f'--config.sampler_shapes=({tuple(shape)},)']
  results = {}
  for r in range(c.compare_rounds):
    for (mode, k, b), extra in runs.items():
      for variant, root in (('baseline', os.path.abspath(c.compare_with)), ('current', here)):
        env = dict(os.environ, PYTHONPATH=root)
        cmd = [sys.executable, os.path.abspath(__file__),
               f'--config={config_flags.get_config_filename(flags.FLAGS["config"])}',
               *off, *extra]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        line = json.loads(out.stdout.strip().splitlines()[-1])
        line.update(variant=variant, round=r)
        print(json.dumps(line), flush=True)
        results.setdefault((mode, k, b, variant), []).append(line['median_s'])
  for mode, k, b in runs:
    base = statistics.median(results[(mode, k, b, 'baseline')])
    cur = statistics.median(results[(mode, k, b, 'current')])
    shape = (dict(tasks=k, draws=b) if mode == 'sample_transitions' else
             dict(batch=b, num_steps=k))
    print(json.dumps(dict(name=f'{mode} before/after', **shape,
                          baseline_median_s=base, current_median_s=cur,
                          current_over_baseline=round(cur / base, 3),
                          rounds=c.compare_rounds)), flush=True)


def main(argv):
  del argv
  c = _CONFIG.value
  if c.compare_with:
    return _compare(c)
  d = c.obs_dim + c.act_dim
  rng = jax.random.PRNGKey(c.seed)
  net = TemporalUNet(transition_dim=d, dim=c.dim, dim_mults=tuple(c.dim_mults),
                     embed_dim=c.embed_dim, embed_hidden=c.embed_hidden)
  cm = ContextModel(obs_dim=c.obs_dim, act_dim=c.act_dim, context_dim=c.context_dim,
                    model_hidden=tuple(c.model_hidden))
  norm = Normalizer(obs_lo=-jnp.ones(c.obs_dim), obs_hi=jnp.ones(c.obs_dim),
                    act_lo=-jnp.ones(c.act_dim), act_hi=jnp.ones(c.act_dim),
                    rew_lo=jnp.array(-1.0), rew_hi=jnp.array(1.0))
  x1 = jnp.zeros((1, c.horizon, d))
  params = {
      'denoiser': net.init(rng, x1, jnp.zeros(1, jnp.int32), jnp.zeros((1, c.context_dim)),
                           jnp.ones(1, bool)),
      'context': cm.init(rng, norm, jnp.zeros((1, 1, 4, 2 * c.obs_dim + c.act_dim + 1)),
                         jnp.zeros((1, 1, c.obs_dim)), jnp.zeros((1, 1, c.act_dim))),
  }
  nets = {dt: net.clone(dtype=jnp.dtype(dt)) for dt in set(c.compute_dtypes) | {'float32'}}
  apply = lambda method: (lambda s_, a_, z_: cm.apply(params['context'], norm, s_, a_, z_,
                                                      method=method))
  guide_fn = lambda p, s_, a_, z_: trajectory_objective(apply(ContextModel.reward),
                                                        apply(ContextModel.next_state))(s_, a_, z_)
  print(json.dumps({'devices': str(jax.devices()), 'cpu_count': os.cpu_count(),
                    'loadavg_1m': os.getloadavg()[0]}), flush=True)
  ceiling = _matmul_ceiling(c)

  for mode in c.modes:
    full = mode == 'plan/full'
    for k in c.num_diffusion_steps:
      for b in c.batches:
        def make(steps, dtype, full=full):
          denoise_fn = lambda p, x, k, ctx, m: nets[dtype].apply(p['denoiser'], x, k, ctx, m)
          cfg = _plan_config(horizon=c.horizon, num_diffusion_steps=steps,
                             predict_epsilon=c.predict_epsilon,
                             cfg_weight=c.cfg_weight if full else 1.0,
                             guide_scale=c.guide_scale if full else 0.0,
                             dynamics_weight=c.dynamics_weight,
                             t_stopgrad=min(c.t_stopgrad, steps) if full else 0)
          return lambda p, r, o, z: plan(p, r, o, z, denoise_fn, guide_fn if full else None,
                                         normalizer=norm, config=cfg).action
        args = (params, jax.random.PRNGKey(1), jnp.zeros((b, c.obs_dim)),
                jnp.ones((b, c.context_dim)))
        # One count for every dtype, the float32 program's (XLA also counts bf16's casts).
        one_step, _ = _compile(make(1, 'float32'), args)
        flops = _flops(one_step) * k
        actions = {}  # per dtype, for the difference from float32 (measured first when asked)
        for dtype in sorted(c.compute_dtypes, key=lambda d: d != 'float32'):
          compiled, compile_s = _compile(make(k, dtype), args)
          median, runs = _time(compiled, args, c.repeats, c.min_time_s)
          line = dict(name=mode, batch=b, num_steps=k, compile_s=round(compile_s, 3),
                      median_s=round(median, 5), runs=runs, plans_per_s=round(b / median, 2),
                      flops_per_plan=flops / b, gflops_per_s=round(flops / median / 1e9, 2),
                      ceiling_fraction=_fraction(flops / median, ceiling), compute_dtype=dtype,
                      loadavg_1m=os.getloadavg()[0])
          actions[dtype] = compiled(*args)
          if dtype != 'float32':
            if 'float32' not in actions:
              actions['float32'] = jax.jit(make(k, 'float32'))(*args)
            line['max_abs_action_diff'] = float(jnp.abs(actions[dtype] - actions['float32']).max())
          print(json.dumps(line), flush=True)

  _unet_profile(c, net, params, ceiling)
  _sampler(c)
  _rollouts(c)
  _evaluation(c)
  if not c.train_batch:
    return None
  # One denoiser update (loss, gradient, Adam, EMA) at the training batch.
  sched = make_schedule(max(c.num_diffusion_steps))
  weights = loss_weights(c.horizon, c.obs_dim, c.act_dim, 10.0)
  state = TrainState.create(params['denoiser'], optax.adam(2e-4))

  def gradient(params, rng, x0, z):
    loss_fn = lambda p: denoising_loss(net.apply, p, sched, rng, x0, z, obs_dim=c.obs_dim,
                                       context_dropout=0.25, predict_epsilon=c.predict_epsilon,
                                       weights=weights)[0]
    return jax.grad(loss_fn)(params)

  def train_step(state, rng, x0, z):
    return state.apply_gradients(gradient(state.params, rng, x0, z), ema_decay=0.995)

  b = c.train_batch
  args = (state, jax.random.PRNGKey(2), jax.random.normal(rng, (b, c.horizon, d)),
          jnp.ones((b, c.context_dim)))
  compiled, compile_s = _compile(train_step, args)
  median, runs = _time(compiled, args, c.repeats, c.min_time_s)
  flops = _flops(compiled)
  print(json.dumps(dict(name='train_step', batch=b, num_steps=1, compile_s=round(compile_s, 3),
                        median_s=round(median, 5), runs=runs, plans_per_s=round(b / median, 2),
                        flops_per_plan=flops / b, gflops_per_s=round(flops / median / 1e9, 2),
                        ceiling_fraction=_fraction(flops / median, ceiling),
                        loadavg_1m=os.getloadavg()[0])), flush=True)
  # The same update for a stack of N members (`mdx.training.train_stack`: one vmapped program,
  # each member its own parameters, optimizer state and key) against N separate updates.
  for n in c.stack_members:
    stacked = jax.tree.map(lambda x: jnp.stack([x] * n), state)
    keys = jax.random.split(jax.random.PRNGKey(3), n)
    args_n = (stacked, keys, jnp.stack([args[2]] * n), jnp.stack([args[3]] * n))
    compiled_n, compile_n = _compile(jax.vmap(train_step), args_n)
    median_n, runs_n = _time(compiled_n, args_n, c.repeats, c.min_time_s)
    print(json.dumps(dict(name='train_stack', members=n, batch=b, compile_s=round(compile_n, 3),
                          median_s=round(median_n, 5), runs=runs_n,
                          per_member_s=round(median_n / n, 5),
                          separate_runs_s=round(median * n, 5),
                          stack_over_separate=round(median_n / (median * n), 3),
                          loadavg_1m=os.getloadavg()[0])), flush=True)
  _train_parts(c, gradient, train_step, args, compiled, median)


def _train_parts(c, gradient, train_step, args, compiled, update_s) -> None:
  """Where one update's time goes: the gradient alone (the rest of `update_s` is Adam and the
  EMA), and `c.train_scan` updates in one call (a `lax.scan`, the state carried) against as many
  calls of the one-update program issued back to back, as the training loop issues them."""
  if not c.train_scan:
    return
  grad_args = (args[0].params,) + args[1:]
  compiled_g, _ = _compile(gradient, grad_args)
  grad_s, runs = _time(compiled_g, grad_args, c.repeats, c.min_time_s)
  print(json.dumps(dict(name='train_parts', batch=c.train_batch, update_s=round(update_s, 5),
                        gradient_s=round(grad_s, 5), runs=runs,
                        optimizer_and_ema_share=round(max(update_s - grad_s, 0.0) / update_s, 3),
                        loadavg_1m=os.getloadavg()[0])), flush=True)
  n = c.train_scan
  keys = jax.random.split(args[1], n)
  scanned = lambda state, keys, x0, z: jax.lax.scan(
      lambda s, k: (train_step(s, k, x0, z), None), state, keys)[0]
  compiled_n, compile_n = _compile(scanned, (args[0], keys) + args[2:])

  def one_per_call(state, keys, x0, z):
    for i in range(n):
      state = compiled(state, keys[i], x0, z)
    return state
  per_call_s, _ = _time(one_per_call, (args[0], keys) + args[2:], c.repeats, c.min_time_s)
  scan_s, runs = _time(compiled_n, (args[0], keys) + args[2:], c.repeats, c.min_time_s)
  print(json.dumps(dict(name='train_scan', batch=c.train_batch, updates_per_call=n,
                        compile_s=round(compile_n, 3), one_per_call_s=round(per_call_s / n, 5),
                        scanned_s=round(scan_s / n, 5), runs=runs,
                        scanned_over_one_per_call=round(scan_s / per_call_s, 3),
                        loadavg_1m=os.getloadavg()[0])), flush=True)


def _fraction(flops_per_s: float, ceiling: float | None):
  return round(flops_per_s / ceiling, 3) if ceiling else None


def _matmul_ceiling(c) -> float | None:
  """The best fp32 matmul rate (FLOP/s) of XLA here over square sizes `c.ceiling_sizes`, one
  `matmul` line per size and a `matmul_ceiling` line; None when the sizes are empty."""
  best = None
  for n in c.ceiling_sizes:
    a = jax.random.normal(jax.random.PRNGKey(5), (n, n), jnp.float32)
    compiled, _ = _compile(lambda x, y: x @ y, (a, a))
    median, runs = _time(compiled, (a, a), c.repeats, c.min_time_s)
    rate = 2.0 * n ** 3 / median
    best = rate if best is None else max(best, rate)
    print(json.dumps(dict(name='matmul', size=n, median_s=round(median, 6), runs=runs,
                          gflops_per_s=round(rate / 1e9, 2), loadavg_1m=os.getloadavg()[0])),
          flush=True)
  if best is not None:
    print(json.dumps(dict(name='matmul_ceiling', gflops_per_s=round(best / 1e9, 2),
                          sizes=list(c.ceiling_sizes))), flush=True)
  return best


def _dot_shapes(hlo_text: str) -> list[tuple[int, int, int]]:
  """`(M, K, N)` of every rank-2 `dot` in an optimized HLO module's text (the U-Net's im2col
  convolutions and dense layers are all of this form)."""
  shapes, dots = {}, []
  for line in hlo_text.splitlines():
    m = re.match(r'\s*(?:ROOT )?%(\S+) = \w+\[([\d,]*)\]', line)
    if m:
      shapes[m.group(1)] = [int(v) for v in m.group(2).split(',') if v]
    m = re.match(r'\s*(?:ROOT )?%\S+ = f32\[(\d+),(\d+)\]\S* dot\(%([^,\s]+),', line)
    if m and len(shapes.get(m.group(3), ())) == 2:
      dots.append((int(m.group(1)), shapes[m.group(3)][1], int(m.group(2))))
  return dots


def _unet_profile(c, net, params, ceiling) -> None:
  """Where one U-Net step's time goes, per batch of `c.profile_batches`: the compiled forward
  (one denoising step) against its matrix products alone, each dot of its optimized HLO timed as
  an isolated `[M, K] x [K, N]` program at the same shape, less the launch time of a trivial
  program. One `unet_dot` line per distinct shape and a `unet_profile` line: the step's time, the dots' summed time and rate, and the rest
  (im2col copies, GroupNorm, Mish, the embeddings' broadcasts, layouts) as a share of the step."""
  d = c.obs_dim + c.act_dim
  tiny = (jnp.ones((1,)),)
  launch_s, _ = _time(_compile(lambda x: x + 1.0, tiny)[0], tiny, c.repeats, 0.5)
  for b in c.profile_batches:
    args = (params['denoiser'], jax.random.normal(jax.random.PRNGKey(4), (b, c.horizon, d)),
            jnp.zeros(b, jnp.int32), jnp.ones((b, c.context_dim)), jnp.ones(b, bool))
    forward, _ = _compile(net.apply, args)
    step_s, runs = _time(forward, args, c.repeats, c.min_time_s)
    dots = collections.Counter(_dot_shapes(forward.as_text()))
    dot_s = dot_flops = 0.0
    for (m, k, n), count in sorted(dots.items(), key=lambda d: -d[0][0] * d[0][1] * d[0][2]):
      a, w = jnp.ones((m, k)), jnp.ones((k, n))
      compiled, _ = _compile(lambda x, y: x @ y, (a, w))
      median, _ = _time(compiled, (a, w), c.repeats, min(c.min_time_s, 0.5))
      median = max(median - launch_s, 1e-9)  # the dot's own time, not its program's launch
      dot_s += count * median
      dot_flops += count * 2.0 * m * k * n
      print(json.dumps(dict(name='unet_dot', batch=b, m=m, k=k, n=n, count=count,
                            median_s=round(median, 7),
                            gflops_per_s=round(2.0 * m * k * n / median / 1e9, 2),
                            ceiling_fraction=_fraction(2.0 * m * k * n / median, ceiling))),
            flush=True)
    flops = _flops(forward)
    print(json.dumps(dict(name='unet_profile', batch=b, step_s=round(step_s, 6), runs=runs,
                          gflops_per_s=round(flops / step_s / 1e9, 2),
                          ceiling_fraction=_fraction(flops / step_s, ceiling),
                          dots=sum(dots.values()), dots_s=round(dot_s, 6),
                          launch_s_subtracted=round(launch_s, 7),
                          dots_gflops_per_s=round(dot_flops / dot_s / 1e9, 2),
                          dots_ceiling_fraction=_fraction(dot_flops / dot_s, ceiling),
                          rest_share=round(max(step_s - dot_s, 0.0) / step_s, 3),
                          loadavg_1m=os.getloadavg()[0])), flush=True)


def _evaluation(c) -> None:
  """One evaluation episode of MetaDiffuser (`c.eval_config`, 'path:preset') on every test task
  of its family, as `mdx.evaluation.run_method` compiles it: environment steps per second and
  the compile time without and with the persistent cache."""
  if not c.eval_config:
    return
  import tempfile  # pylint: disable=g-import-not-at-top
  import importlib.util  # pylint: disable=g-import-not-at-top
  from mdx.data.collect import collect  # pylint: disable=g-import-not-at-top
  from mdx.data import init_normalizer, policies  # pylint: disable=g-import-not-at-top
  from mdx.envs import family_from_config  # pylint: disable=g-import-not-at-top
  from mdx.evaluation.rollout import rollout  # pylint: disable=g-import-not-at-top
  from mdx.methods.metadiffuser import context as ctx_stage  # pylint: disable=g-import-not-at-top
  from mdx.methods.metadiffuser import denoiser as den_stage  # pylint: disable=g-import-not-at-top
  from mdx.methods.metadiffuser import policy as md_policy  # pylint: disable=g-import-not-at-top
  path, preset = c.eval_config.split(':')
  spec = importlib.util.spec_from_file_location('eval_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(preset)
  family = family_from_config(config)
  tasks = family.test_tasks()
  warm = collect(family, tasks, policies.random_policy(family), jax.random.PRNGKey(6),
                 config.data.warm_start_episodes)
  norm = init_normalizer(warm)
  context_model = ctx_stage.build_context_model(config, family)
  net = den_stage.build_denoiser(config, family, dtype=config.planner.compute_dtype)
  params = {'context': ctx_stage.init_context_state(config, family, norm,
                                                     jax.random.PRNGKey(7)).params,
            'denoiser': den_stage.init_denoiser_state(config, family,
                                                      jax.random.PRNGKey(8)).params,
            'norm': norm}
  policy = md_policy.planner_policy(config, context_model, net, params,
                                    md_policy.plan_config(config))
  fn = lambda p, r, w: rollout(family, tasks, p, r, warm_start=w, keep_info=False).returns
  args = (policy, jax.random.PRNGKey(9), warm)
  compiled, compile_s = _compile(fn, args)
  cache_s = None
  with tempfile.TemporaryDirectory() as cache:
    saved = {k: getattr(jax.config, k) for k in (
        'jax_compilation_cache_dir', 'jax_persistent_cache_min_compile_time_secs',
        'jax_persistent_cache_min_entry_size_bytes')}
    try:
      jax.config.update('jax_compilation_cache_dir', cache)
      jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
      jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
      jax.clear_caches()
      _compile(fn, args)  # fills the cache
      jax.clear_caches()
      _, cache_s = _compile(fn, args)
    finally:
      for k, v in saved.items():
        jax.config.update(k, v)
  median, runs = _time(compiled, args, c.eval_repeats, 0.0)
  steps = int(tasks.task_id.shape[0]) * family.episode_length
  print(json.dumps(dict(name='evaluation', config=c.eval_config, method='MetaDiffuser',
                        tasks=int(tasks.task_id.shape[0]), episode_length=family.episode_length,
                        num_diffusion_steps=config.diffusion.num_diffusion_steps,
                        num_candidates=config.planner.num_candidates,
                        compile_s=round(compile_s, 2), compile_cached_s=round(cache_s, 2),
                        median_s=round(median, 3), runs=runs,
                        env_steps_per_s=round(steps / median, 1),
                        loadavg_1m=os.getloadavg()[0])), flush=True)


def _sampler(c) -> None:
  """`mdx.data.sample_transitions` at each of `c.sampler_shapes`: (tasks, episodes, steps,
  obs_dim, act_dim, meta_batch, draws), random data whose every seventh episode ends at 3/4."""
  from mdx import data as mdata  # pylint: disable=g-import-not-at-top
  for n, e, t, obs_dim, act_dim, m, draws in c.sampler_shapes:
    keys = jax.random.split(jax.random.PRNGKey(5), 4)
    valid = jnp.ones((n, e, t), bool).at[:, ::7, 3 * t // 4:].set(False)
    data = mdata.Trajectories(
        observations=jax.random.normal(keys[0], (n, e, t, obs_dim)),
        actions=jax.random.normal(keys[1], (n, e, t, act_dim)),
        rewards=jax.random.normal(keys[2], (n, e, t)),
        next_observations=jax.random.normal(keys[3], (n, e, t, obs_dim)),
        terminals=jnp.zeros((n, e, t), bool), timeouts=jnp.zeros((n, e, t), bool), valid=valid,
        task_params=jnp.zeros((n, 1)), task_ids=jnp.arange(n, dtype=jnp.int32))
    tasks = jnp.arange(m) % n
    fn = lambda r, d: mdata.sample_transitions(r, d, tasks, draws)
    args = (jax.random.PRNGKey(6), data)
    compiled, compile_s = _compile(fn, args)
    median, runs = _time(compiled, args, c.repeats, c.min_time_s)
    print(json.dumps(dict(name='sample_transitions', tasks=n, episodes=e, steps=t, meta_batch=m,
                          draws=draws, compile_s=round(compile_s, 3),
                          median_s=round(median, 6), runs=runs,
                          loadavg_1m=os.getloadavg()[0])), flush=True)


def _rollouts(c) -> None:
  """One episode of uniform random actions on `c.rollout_family`'s test tasks (batch
  `c.rollout_batch`), once per `c.progress_every` (the progress lines go to stderr)."""
  if not c.rollout_family:
    return
  from mdx import progress  # pylint: disable=g-import-not-at-top
  from mdx.envs import make_family  # pylint: disable=g-import-not-at-top
  from mdx.evaluation import Policy  # pylint: disable=g-import-not-at-top
  from mdx.evaluation.rollout import rollout  # pylint: disable=g-import-not-at-top
  progress.set_printer(lambda s: print(s, file=sys.stderr, flush=True))
  family = make_family(c.rollout_family)
  tasks = family.test_tasks()
  index = jnp.arange(c.rollout_batch) % tasks.task_id.shape[0]
  tasks = jax.tree.map(lambda x: x[index], tasks)
  policy = Policy(params=None, init_fn=lambda p, r, t, w: jnp.zeros(()),
                  act_fn=lambda p, s, o, r: (jax.random.uniform(
                      r, (o.shape[0], family.act_dim), minval=family.action_low,
                      maxval=family.action_high), s, {}))
  for every in c.progress_every:
    fn = lambda r, every=every: rollout(family, tasks, policy, r, keep_info=False,
                                        progress=progress.Progress('benchmark', every)).returns
    args = (jax.random.PRNGKey(4),)
    compiled, compile_s = _compile(fn, args)
    median, runs = _time(compiled, args, c.repeats, c.min_time_s)
    print(json.dumps(dict(name='rollout', family=c.rollout_family, batch=c.rollout_batch,
                          episode_length=family.episode_length, progress_every=every,
                          compile_s=round(compile_s, 3), median_s=round(median, 5), runs=runs,
                          loadavg_1m=os.getloadavg()[0])), flush=True)


if __name__ == '__main__':
  app.run(main)
