"""One validation of a whole config, run first by every binary (`check_config`).

Each rule names its field, the allowed range and what `0` means where `0` is special, so a bad
setting fails before any work with `ConfigError: diffusion.horizon = 0: must be an integer in
[1, 20] (at most the episode length)` instead of a JAX traceback, a silent no-op or a run that
trains on nonsense.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

from mdx.data.policies import RANDOM_FROM, TIERS
from mdx.sweep import parse_sweep

GUIDE_FORMS = ('mean', 'eps', 'x0')
GUIDE_UNITS = ('normalized', 'env')
SAMPLERS = ('ddpm', 'ddim')
COMPUTE_DTYPES = ('float32', 'bfloat16')  # planner.compute_dtype
SCHEDULES = ('cosine', 'vp')  # mdx.diffusion.schedule.SCHEDULES


class ConfigError(ValueError):
  """A config field holds a value outside its allowed range."""


def _get(config, field: str) -> Any:
  node = config
  for part in field.split('.'):
    if part not in node:
      raise ConfigError(f'{field}: missing (every preset sets it; see configs/base.py)')
    node = node[part]
  return node


class _Checker:
  def __init__(self, config):
    self.config = config
    self.errors: list[str] = []

  def fail(self, field, value, why):
    self.errors.append(f'{field} = {value!r}: {why}')

  def int(self, field, low, high=None, note=''):
    v = _get(self.config, field)
    ok = isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low and (
        high is None or v <= high)
    if not ok:
      rng = f'in [{low}, {high}]' if high is not None else f'>= {low}'
      self.fail(field, v, f'must be an integer {rng}{note}')
    return v

  def real(self, field, low, high=None, *, low_open=False, high_open=False, note=''):
    v = _get(self.config, field)
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
    ok = ok and (v > low if low_open else v >= low)
    ok = ok and (high is None or (v < high if high_open else v <= high))
    if not ok:
      lo, hi = ('(' if low_open else '['), (')' if high_open else ']')
      rng = f'in {lo}{low}, {high}{hi}' if high is not None else (f'> {low}' if low_open
                                                                    else f'>= {low}')
      self.fail(field, v, f'must be a finite number {rng}{note}')
    return v

  def bool(self, field):
    v = _get(self.config, field)
    if not isinstance(v, bool):
      self.fail(field, v, 'must be True or False')
    return v

  def divisible(self, field, by_field):
    """Both positive integers, `field` a multiple of `by_field` (a width and its heads)."""
    v, by = self.int(field, 1), self.int(by_field, 1)
    if isinstance(v, numbers.Integral) and isinstance(by, numbers.Integral) and by >= 1 and v % by:
      self.fail(field, v, f'must be divisible by {by_field} = {by}')

  def choice(self, field, options):
    v = _get(self.config, field)
    if v not in options:
      self.fail(field, v, f'must be one of {list(options)}')
    return v

  def sizes(self, field, *, allow_empty=False):
    v = _get(self.config, field)
    ok = isinstance(v, (tuple, list)) and (allow_empty or len(v) > 0) and all(
        isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= 1 for x in v)
    if not ok:
      self.fail(field, v, 'must be a non-empty tuple of integers >= 1')
    return tuple(v) if ok else None

  def tiers(self, field, *, within=TIERS):
    v = _get(self.config, field)
    ok = isinstance(v, (tuple, list)) and len(v) > 0 and all(t in within for t in v)
    if not ok:
      self.fail(field, v, f'must be a non-empty tuple of tiers from {list(within)}')
    return tuple(v) if ok else ()


def check_config(config, family=None) -> None:
  """Checks every field the library reads; raises `ConfigError` listing all bad fields.

  Args:
    config: a family config (`configs/<family>.py`).
    family: the config's `TaskFamily` (built from `config.family` / `config.env` when omitted).
  """
  from mdx.envs import family_from_config  # pylint: disable=g-import-not-at-top
  if family is None:
    try:
      family = family_from_config(config)
    except (TypeError, ValueError) as err:
      raise ConfigError(f'family = {config.get("family")!r} / env = {dict(config.get("env", {}))}'
                        f': {err}') from err
  c = _Checker(config)
  length = int(family.episode_length)
  c.int('seed', 0)
  seeds = _get(config, 'train_seeds')
  if not (isinstance(seeds, (tuple, list)) and seeds and all(
      isinstance(s, numbers.Integral) and s >= 0 for s in seeds) and len(set(seeds)) == len(seeds)):
    c.fail('train_seeds', seeds, 'must be a non-empty tuple of distinct integers >= 0')
  c.int('log_every', 1)
  c.int('checkpoint_every', 1)
  c.int('progress_every', 0)
  c.int('mesh_devices', 0, note=' (0: all local devices, 1: one device)')
  c.choice('wandb.mode', ('offline', 'online', 'disabled'))

  episodes = dict(_get(config, 'data.train_episodes'))
  for tier, n in episodes.items():
    if tier not in TIERS:
      c.fail('data.train_episodes', episodes, f'tier {tier!r} is not one of {list(TIERS)}')
    elif not (isinstance(n, numbers.Integral) and n >= 1):
      c.fail(f'data.train_episodes[{tier!r}]', n, 'must be an integer >= 1 (omit the tier '
             'instead of 0)')
  if 'expert' not in episodes:
    c.fail('data.train_episodes', episodes, "must include 'expert' (the normalizer's data)")
  c.int('data.warm_start_episodes', 1)
  if c.choice('data.random_from', RANDOM_FROM) == 'checkpoint':
    from mdx import experts  # pylint: disable=g-import-not-at-top
    params_path, _ = experts.paths(family.name, 'random')
    if hasattr(family, 'optimal_action') or not params_path.exists():
      c.fail('data.random_from', 'checkpoint', f'needs {params_path} (an early PPO checkpoint, '
             "experiments/select_tier.py); use 'uniform'")

  c.int('context.history', 1, length, ' (at most the episode length)')
  c.int('context.num_context', 1)
  c.int('context.target_window', 1, length, ' (at most the episode length)')
  c.int('context.context_dim', 1)
  c.sizes('context.encoder_hidden')
  c.sizes('context.model_hidden')
  for field in ('context.tiers', 'diffusion.tiers'):
    c.tiers(field, within=tuple(t for t in TIERS if t in episodes))
  c.real('context.learning_rate', 0, low_open=True)
  c.bool('context.lr_decay')
  c.int('context.batch_size', 1)
  c.int('context.num_train_steps', 1)
  c.real('context.ema_decay', 0, 1)

  d = 'diffusion.'
  mults = c.sizes(d + 'dim_mults')
  horizon = c.int(d + 'horizon', 1, length, ' (at most the episode length)')
  if mults and isinstance(horizon, numbers.Integral) and horizon >= 1:
    factor = 2 ** (len(mults) - 1)
    if horizon % factor:
      c.fail(d + 'horizon', horizon, f'must be divisible by {factor}: the U-Net halves it '
             f'{len(mults) - 1} times (diffusion.dim_mults = {mults})')
  k = c.int(d + 'num_diffusion_steps', 1)
  c.int(d + 'dim', 1)
  c.int(d + 'embed_dim', 1)
  c.int(d + 'embed_hidden', 1)
  c.bool(d + 'predict_epsilon')
  c.real(d + 'context_dropout', 0, 1, high_open=True,
         note=' (the probability of dropping z; 1 never shows the denoiser a context: that is '
         'UDiffuser, a method of its own)')
  c.real(d + 'action_weight', 0)
  c.real(d + 'learning_rate', 0, low_open=True)
  c.int(d + 'batch_size', 1)
  c.int(d + 'num_train_steps', 1)
  c.real(d + 'ema_decay', 0, 1)
  c.int(d + 'ema_start', 0)
  c.int('udiffuser.num_train_steps', 1)

  p = 'planner.'
  c.int(p + 'num_candidates', 1)
  omega = c.real(p + 'cfg_weight', 0, note=' (omega; 1 = no guidance)')
  beta = _get(config, d + 'context_dropout')
  if isinstance(omega, numbers.Real) and omega != 1 and beta == 0:
    c.fail(p + 'cfg_weight', omega, 'must be 1 when diffusion.context_dropout is 0: the '
           'denoiser never learned the unconditional branch that guidance extrapolates from')
  c.choice(p + 'guide_form', GUIDE_FORMS)
  c.real(p + 'guide_scale', 0, note=' (s; 0 = no dual guide)')
  c.choice(p + 'guide_units', GUIDE_UNITS)
  c.real(p + 'dynamics_weight', 0, note=' (lambda)')
  if isinstance(k, numbers.Integral):
    c.int(p + 't_stopgrad', 0, k, ' (0 = guide at every step; at most num_diffusion_steps)')
  c.real(p + 'noise_scale', 0, 1, note=' (alpha, the variance multiplier of the reverse '
         "chain's noise; 0 = no noise, 1 = DDPM's)")
  clip = c.real(p + 'clip_denoised', 0)
  if isinstance(clip, numbers.Real) and 0 < clip < 1:
    c.fail(p + 'clip_denoised', clip, 'must be 0 (no clip) or >= 1: the normalized data lie in '
           '[-1, 1], a smaller clip cuts every plan')
  sampler = c.choice(p + 'sampler', SAMPLERS)
  if isinstance(k, numbers.Integral):
    steps = c.int(p + 'num_sample_steps', 0, k, ' (DDIM only; 0 = all num_diffusion_steps)')
    if sampler == 'ddpm' and steps not in (0, k):
      c.fail(p + 'num_sample_steps', steps, "must be 0 with planner.sampler = 'ddpm' (DDPM runs "
             "every step; use 'ddim' for fewer)")
  eta = c.real(p + 'eta', 0, 1, note=" (DDIM's: 0 deterministic, 1 DDPM's variance)")
  if sampler == 'ddpm' and eta != 0:
    c.fail(p + 'eta', eta, "must be 0 with planner.sampler = 'ddpm' (eta is DDIM's)")
  c.choice(p + 'compute_dtype', COMPUTE_DTYPES)

  v = 'cvae.'
  c.int(v + 'latent_dim', 1)
  c.sizes(v + 'hidden')
  c.real(v + 'kl_weight', 0)
  c.real(v + 'learning_rate', 0, low_open=True)
  c.int(v + 'batch_size', 1)
  c.int(v + 'num_train_steps', 1)
  c.real(v + 'ema_decay', 0, 1)

  t = 'prompt_dt.'
  c.int(t + 'context_len', 1)
  c.int(t + 'prompt_len', 1)
  c.divisible(t + 'embed_dim', t + 'num_heads')
  c.int(t + 'num_layers', 1)
  c.int(t + 'hidden', 1)
  c.real(t + 'dropout', 0, 1, high_open=True)
  c.int(t + 'max_episode_length', length, note=' (at least the episode length: the timestep '
        'embedding table)')
  c.real(t + 'learning_rate', 0, low_open=True)
  c.real(t + 'weight_decay', 0)
  c.int(t + 'warmup_steps', 1)
  c.real(t + 'grad_clip', 0, low_open=True)
  c.int(t + 'batch_per_task', 1)
  c.int(t + 'num_train_steps', 1)
  c.tiers(t + 'tiers', within=tuple(x for x in TIERS if x in episodes))
  c.real(t + 'target_return', -math.inf, low_open=True)
  c.real(t + 'return_scale', 0, low_open=True)
  c.int(t + 'finetune_steps', 0, note=' (PromptDT-FT; 0: Prompt-DT unchanged)')
  c.int(t + 'finetune_batch', 1)
  c.real(t + 'finetune_learning_rate', 0, low_open=True)
  c.choice(t + 'prompt_tier', ('',) + tuple(x for x in TIERS if x in episodes))

  m = 'mtdiff.'
  for name in ('prompt_len', 'history', 'num_layers', 'hidden', 'mlp_layers',
               'num_diffusion_steps', 'batch_per_task', 'num_train_steps'):
    c.int(m + name, 1)
  c.int(m + 'ema_start', 0)
  c.bool(m + 'input_layernorm')
  horizon = c.int(m + 'horizon', 1, length, note=' (at most the episode length)')
  if isinstance(horizon, numbers.Integral):
    c.int(m + 'plan_horizon', 1, horizon, note=' (at most mtdiff.horizon: the position table)')
  c.divisible(m + 'width', m + 'num_heads')
  c.choice(m + 'schedule', SCHEDULES)
  c.real(m + 'dropout', 0, 1, high_open=True)
  c.real(m + 'return_dropout', 0, 1)
  c.real(m + 'discount', 0, 1)
  c.real(m + 'target_quantile', 0, 1)
  c.real(m + 'cfg_weight', -math.inf, low_open=True)
  c.real(m + 'noise_scale', 0)
  c.real(m + 'clip_denoised', 0)
  c.real(m + 'action_weight', 0)
  c.real(m + 'learning_rate', 0, low_open=True)
  c.real(m + 'ema_decay', 0, 1)
  c.tiers(m + 'tiers', within=tuple(x for x in TIERS if x in episodes))

  s = 'mtdiff_s.'
  for name in ('prompt_len', 'num_layers', 'hidden', 'mlp_layers', 'num_diffusion_steps',
               'batch_per_task', 'num_train_steps'):
    c.int(s + name, 1)
  c.int(s + 'ema_start', 0)
  c.bool(s + 'input_layernorm')
  c.int(s + 'horizon', 1, length, note=' (at most the episode length)')
  c.divisible(s + 'width', s + 'num_heads')
  c.choice(s + 'schedule', SCHEDULES)
  c.real(s + 'dropout', 0, 1, high_open=True)
  c.real(s + 'clip_denoised', 0)
  c.real(s + 'learning_rate', 0, low_open=True)
  c.real(s + 'ema_decay', 0, 1)
  c.tiers(s + 'tiers', within=tuple(x for x in TIERS if x in episodes))

  g = 'prompt_diffuser.'
  for name in ('hidden', 'step_dim', 'batch_size', 'num_train_steps'):
    c.int(g + name, 1)
  k_steps = c.int(g + 'num_diffusion_steps', 1)
  if isinstance(k_steps, numbers.Integral):
    c.int(g + 'chain_steps', 1, k_steps, note=' (at most prompt_diffuser.num_diffusion_steps)')
  c.int(g + 'finetune_steps', 0, note=' (0: the pre-trained generator, zero-shot)')
  c.real(g + 'noise_scale', 0)
  c.real(g + 'learning_rate', 0, low_open=True)
  c.real(g + 'weight_decay', 0)
  c.real(g + 'grad_clip', 0, low_open=True)

  f = 'focal.'
  for name in ('latent_dim', 'meta_batch', 'batch_size', 'embedding_batch', 'c_iter',
               'num_iterations', 'updates_per_iteration', 'log_every', 'checkpoint_every'):
    c.int(f + name, 1)
  c.sizes(f + 'encoder_hidden')
  c.sizes(f + 'hidden')
  c.bool(f + 'use_next_obs')
  for name in ('learning_rate', 'context_learning_rate', 'c_learning_rate', 'reward_scale',
               'alpha_max'):
    c.real(f + name, 0, low_open=True)
  c.real(f + 'discount', 0, 1)
  c.real(f + 'tau', 0, 1, low_open=True)
  c.real(f + 'alpha_init', 0)
  c.real(f + 'alpha_lr', 0)
  c.real(f + 'z_loss_weight', 0)
  c.real(f + 'target_divergence', -math.inf, low_open=True)
  c.tiers(f + 'tiers', within=tuple(x for x in TIERS if x in episodes))
  c.choice(f + 'context', ('encoder', 'task'))
  c.bool(f + 'value_penalty')

  o = 'corro.'
  for name in ('cvae_hidden', 'cvae_latent_dim', 'latent_dim', 'num_negatives', 'cvae_batch',
               'encoder_batch', 'meta_batch', 'batch_size', 'cvae_num_calls',
               'encoder_num_calls', 'sac_num_calls', 'updates_per_call', 'log_every',
               'checkpoint_every'):
    c.int(o + name, 1)
  c.sizes(o + 'encoder_hidden')
  c.sizes(o + 'hidden')
  for name in ('temperature', 'cvae_learning_rate', 'encoder_learning_rate', 'learning_rate',
               'reward_scale'):
    c.real(o + name, 0, low_open=True)
  c.real(o + 'cvae_beta', 0)
  c.choice(o + 'negatives', ('generative', 'reward_randomize'))
  c.real(o + 'reward_std', 0, low_open=True)
  c.choice(o + 'context', ('encoder', 'task'))
  c.real(o + 'cql_weight', 0)
  c.int(o + 'cql_samples', 1)
  c.real(o + 'alpha', 0)
  c.real(o + 'discount', 0, 1)
  c.real(o + 'tau', 0, 1, low_open=True)
  c.tiers(o + 'tiers', within=tuple(x for x in TIERS if x in episodes))

  e = 'eval.'
  c.int(e + 'episodes_per_task', 1)
  c.int(e + 'num_eval_seeds', 1)
  c.tiers(e + 'warm_starts')
  names = _get(config, e + 'methods')
  from mdx import methods as registry  # pylint: disable=g-import-not-at-top
  for field, value in ((e + 'methods', names), (e + 'oracle', [_get(config, e + 'oracle')]),
                       (e + 'random', [_get(config, e + 'random')])):
    unknown = [n for n in value if n not in registry.REGISTRY]
    if unknown or not value:
      c.fail(field, value if field == e + 'methods' else value[0],
             f'must name registered methods: {sorted(registry.REGISTRY)}')
  text = _get(config, e + 'sweep')
  try:
    settings = parse_sweep(text) if isinstance(text, str) else None
  except ValueError as err:
    settings, why = None, str(err)
  else:
    why = 'must be a string'
  if settings is None:
    c.fail(e + 'sweep', text, why + " ('field=v1,v2;field2=...')")
  else:
    sweepable = sorted({f for m in registry.REGISTRY.values() for f in m.sweep_fields})
    for field in settings[0]:
      if field not in sweepable:
        c.fail(e + 'sweep', text, f'{field!r} cannot be swept in one program; sweepable: '
               f'{sweepable}')
    bad = [v for st in settings for v in st.values() if not math.isfinite(v)]
    if bad:
      c.fail(e + 'sweep', text, f'non-finite values {bad}')
  c.int(e + 'plan_vs_reached_tasks', 0, note=' (0 = skip the Figure-3 record; more than the '
        "split's tasks means all of them)")
  videos = _get(config, e + 'videos')
  if not isinstance(videos, (tuple, list)) or any(v not in names for v in videos):
    c.fail(e + 'videos', videos, f'must be a tuple of methods of eval.methods ({list(names)})')
  c.int(e + 'video_task', 0, min(int(family.num_test_tasks), int(family.num_validation_tasks)) - 1,
        note=' (a task index of the evaluated split)')
  if c.errors:
    raise ConfigError('invalid config:\n  ' + '\n  '.join(c.errors))
