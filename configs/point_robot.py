"""Point-Robot. Presets: `paper` (the paper's hyperparameters), `cpu` (the committed results:
the whole pipeline of three training seeds in about an hour on 2 CPU cores), `demo` (`make demo`:
a smaller run of one training seed, under 15 minutes), `test` (seconds).
Use as `--config=configs/point_robot.py:cpu`.
"""
import ml_collections

from configs import base


def get_config(preset: str = 'cpu') -> ml_collections.ConfigDict:
  config = base.get_config()
  config.family = 'point_robot'
  c, d, p, e = config.context, config.diffusion, config.planner, config.eval
  c.history = 4  # h (paper: 4 for Point-Robot)
  # 32 history windows per z, in training as at test: all of a test task's warm-start data (4
  # episodes x 20 steps). With 4 windows from mixed tiers in training, R and the denoiser
  # learned a map from noisy z that shrinks at test; with 8 windows at test the random-warm-start
  # score was 0.60-0.76 against 0.82-0.84 (docs/point_robot.md).
  c.num_context = 32
  d.horizon = 4  # H (paper: 4 for Point-Robot)
  d.dim_mults = (1, 2, 4)  # H = 4 allows at most 3 levels
  d.context_dropout = 0.3  # beta (paper, Table 6: 0.3 for Point-Robot)
  # Expert and medium windows (the paper's offline data is of mixed quality and the guide picks
  # the good plans): unseen-task scores 0.89 / 0.80 against 0.86 / 0.73 from expert windows only
  # with expert / random warm starts (docs/point_robot.md).
  d.tiers = ('expert', 'medium')
  p.dynamics_weight = 0.5  # lambda (paper, Table 4: 0.5 for Point-Robot)
  # The dual guide on the predicted clean plan, one step of s dJ/dx in environment units: J is a
  # sum of distances (|dJ/da| ~ 1), so a planned action moves by up to 0.04 per denoising step.
  # The 'mean' form at s = 30 (normalized units) scored 0.92 / 0.87 against 0.96 / 0.90-0.92;
  # in normalized units the same action step pushed the planned states 4 units, to the clip
  # (docs/point_robot.md).
  p.guide_form = 'x0'
  p.guide_units = 'env'
  p.guide_scale = 0.04  # s
  p.t_stopgrad = 0  # the x0 form also acts at the last step

  if preset in ('cpu', 'demo'):
    # 20,000 steps with the learning rate decayed (cosine, to 1/20): reward MSE 0.004 -> 0.0003
    # and the reward model's best action lands 0.029 from unseen goals instead of 0.043.
    c.num_train_steps, c.lr_decay = 20_000, True
    config.train_seeds = (0, 1, 2)  # the whole pipeline fits three training seeds
    if preset == 'demo':
      # `make demo`'s budget, 15 minutes on a 2-core machine (the `cpu` preset's one seed took 21
      # minutes on one; a demo with UDiffuser and 8,000 denoiser steps took 19.5 on a slower
      # one; with 10,000 context-model and 6,000 denoiser steps 10-18 minutes, by the hour):
      # MetaDiffuser alone with the references (no UDiffuser), 6,000 context-model steps (its
      # cosine decay over 6,000) instead of 20,000, 4,000 denoiser steps instead of 8,000, one
      # evaluation seed instead of three. 11 minutes on a slow hour (2026-12-03); test scores
      # 0.86 / 0.83 / 0.71 against 0.92 / 0.89 / 0.75 with 10,000 and 6,000 steps (README).
      # Its scores are the demo's own; the committed results are the `cpu` preset's.
      config.train_seeds = (0,)
      c.num_train_steps = 6_000
      d.num_train_steps = 4_000
      e.num_eval_seeds = 1
      e.methods = ('MetaDiffuser', 'Oracle', 'Random')
  elif preset == 'paper':
    c.learning_rate, c.num_train_steps, c.ema_decay = 2e-4, 200_000, 0.995
    d.num_diffusion_steps, d.learning_rate, d.batch_size = 100, 2e-4, 32
    # (the guide's s = 0.04 was measured with K = 20; untested at K = 100: no GPU run yet)
    d.num_train_steps = 1_000_000
    d.predict_epsilon = True
    config.udiffuser.num_train_steps = 1_000_000
    d.ema_start = 2000
    config.data.train_episodes = {'expert': 50, 'medium': 50, 'random': 50}
    config.checkpoint_every = 20_000
    config.log_every = 1000
    p.num_candidates = 64
  elif preset == 'test':
    c.encoder_hidden = c.model_hidden = (32, 32)
    c.context_dim = 8
    c.num_train_steps = 40
    c.num_context = 2
    d.dim, d.dim_mults, d.embed_dim, d.embed_hidden = 8, (1, 2), 8, 16
    d.num_diffusion_steps = 4
    d.num_train_steps = 20
    d.ema_start = 0
    config.udiffuser.num_train_steps = 20
    config.log_every = 10
    config.checkpoint_every = 20
    config.data.train_episodes = {'expert': 2, 'medium': 1, 'random': 1}
    config.data.warm_start_episodes = 2
    p.num_candidates = 2
    e.episodes_per_task = 1
    e.num_eval_seeds = 2
    e.warm_starts = ('expert', 'random')
    e.methods = ('MetaDiffuser', 'MetaDiffuser-NoGuide', 'Ours+GT', 'UDiffuser', 'CVAE-Planner',
                 'PromptDT', 'PromptDT-FT', 'PromptDiffuser', 'MTDiff-P', 'FOCAL', 'CORRO', 'Ours+CORRO',
                 'Oracle', 'Random')
  else:
    raise ValueError(f"preset must be 'paper', 'cpu', 'demo' or 'test', got {preset!r}")
  base.prompt_dt_presets(config, 'cpu' if preset == 'demo' else preset)
  return config
