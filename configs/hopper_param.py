"""Hopper-Param: Hopper (Brax, MJX with elliptic friction cones) whose body mass, inertia and
friction are scaled by 1.5^u and joint damping by 1.3^u, u ~ U[-3, 3] per group; 200-step episodes.

Presets: `paper` (the paper's hyperparameters, for a GPU), `cpu` (fits a 2-core machine),
`test` (seconds: 40-step episodes, tiny networks). The expert and medium behaviour policies are the
committed Brax-PPO checkpoints in mdx/envs/experts (see docs/locomotion.md).

  python experiments/pipeline.py --config=configs/hopper_param.py:cpu --workdir=runs/hopper_param

`walker_param.py` reuses this file with the walker's beta and lambda.
"""
import ml_collections

from configs import base


def get_config(preset: str = 'cpu', family: str = 'hopper_param') -> ml_collections.ConfigDict:
  config = base.get_config()
  config.family = family
  c, d, p, e = config.context, config.diffusion, config.planner, config.eval
  config.data.train_episodes = {'expert': 4, 'medium': 2, 'random': 2}  # 200 steps each
  config.data.test_episodes = 2
  c.history = 20  # h (paper: 20 for the dynamics-change families)
  c.num_context = 4
  c.target_window = 10
  c.num_steps = 6000
  d.horizon = 32  # H (paper: 32 for Walker/Hopper-Param; Diffuser's hopper horizon)
  d.dim_mults = (1, 2, 4)
  # beta and lambda: the paper's best (Tables 6 and 4), Hopper 0.1 / 2, Walker 0.2 / 2.
  d.context_dropout = {'hopper_param': 0.1, 'walker_param': 0.2}[family]
  d.batch_size = 32
  d.num_train_steps = 12000
  config.udiffuser.num_train_steps = 12000
  p.dynamics_weight = 2.0
  p.num_candidates = 4
  e.episodes_per_task = 1
  e.warm_starts = ('expert', 'random')  # Table 1 (expert) and Table 2 (random) columns

  if preset == 'paper':
    c.learning_rate, c.num_steps, c.ema_decay = 2e-4, 200_000, 0.995
    d.num_steps, d.learning_rate, d.batch_size = 100, 2e-4, 32
    d.dim_mults = (1, 2, 4, 8)  # Diffuser's hopper/walker U-Net (horizon 32)
    d.num_train_steps = config.udiffuser.num_train_steps = 1_000_000
    d.predict_epsilon = True
    d.ema_start = 2000
    config.data.train_episodes = {'expert': 20, 'medium': 10, 'random': 10}
    config.checkpoint_every, config.log_every = 20_000, 1000
    p.num_candidates = 64
    e.episodes_per_task = 5
    e.warm_starts = ('expert', 'medium', 'random')
  elif preset == 'test':
    config.env.episode_length = 40
    config.data.train_episodes = {'expert': 1, 'medium': 1, 'random': 1}
    config.data.test_episodes = 1
    c.encoder_hidden = c.model_hidden = (32, 32)
    c.context_dim, c.history, c.target_window, c.num_context, c.num_steps = 8, 4, 4, 2, 20
    d.horizon, d.dim, d.dim_mults, d.embed_dim, d.embed_hidden = 8, 8, (1, 2), 8, 16
    d.num_context = 2
    d.num_steps, d.num_train_steps, d.ema_start = 4, 10, 0
    config.udiffuser.num_train_steps = 10
    config.log_every, config.checkpoint_every = 10, 10
    p.num_candidates = 2
    e.num_context = 2
  elif preset != 'cpu':
    raise ValueError(f"preset must be 'paper', 'cpu' or 'test', got {preset!r}")
  return config
