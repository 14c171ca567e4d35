"""Point-Robot. Presets: `paper` (the paper's hyperparameters), `cpu` (the demo: the whole
pipeline in minutes on 2 CPU cores), `test` (seconds). Use as `--config=configs/point_robot.py:cpu`.
"""
import ml_collections


def get_config(preset: str = 'cpu') -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.family = 'point_robot'
  config.env = ml_collections.ConfigDict()  # overrides of the family's static fields (none here)
  config.seed = 0
  config.log_every = 500  # steps between metric lines
  config.checkpoint_every = 2000  # steps between checkpoints

  config.data = ml_collections.ConfigDict()
  config.data.train_episodes = {'expert': 4, 'medium': 4, 'random': 4}  # per training task
  config.data.test_episodes = 4  # warm-start episodes per test task and tier
  config.data.expert_noise = 0.02  # std of the expert's Gaussian exploration noise (max action 0.1)

  c = config.context = ml_collections.ConfigDict()
  c.history = 4  # h: transitions per context window (paper: 4 for Point-Robot)
  c.num_context = 4  # windows whose embeddings are averaged into one z
  c.target_window = 4  # transitions predicted per sample in Eq. 1
  c.context_dim = 64  # size of z (paper: 64)
  c.pooling = 'segment'  # E_phi reads one transition ('transition') or a flat window ('segment')
  c.encoder_hidden = (256, 256, 256)  # E_phi: 3 hidden layers (paper)
  c.model_hidden = (256, 256, 256)  # R_psi and P_omega
  c.tiers = ('expert', 'medium', 'random')  # training data tiers the context model sees
  c.learning_rate = 1e-3
  c.batch_size = 64  # paper: 64
  c.num_steps = 6000
  c.ema_decay = 0.99

  d = config.diffusion = ml_collections.ConfigDict()
  d.horizon = 4  # H (paper: 4 for Point-Robot)
  d.num_steps = 20  # K denoising steps (paper: 100)
  d.dim = 32  # U-Net channels at the first level (Diffuser: 32)
  d.dim_mults = (1, 2, 4)  # H = 4 allows at most 3 levels
  d.embed_dim = 64  # time and context embeddings (paper: 64 each)
  d.embed_hidden = 256  # their MLPs' hidden units (paper: 256)
  d.predict_epsilon = False  # x0 prediction (Diffuser's locomotion default); True = the paper's eps
  d.context_dropout = 0.3  # beta (paper, Table 6: 0.3 for Point-Robot)
  d.action_weight = 10.0  # loss weight of the first action (Diffuser: 10)
  d.learning_rate = 1e-3
  d.batch_size = 64
  d.num_train_steps = 8000
  d.ema_decay = 0.995  # Diffuser: 0.995
  d.ema_start = 1000  # Diffuser's step_start_ema

  config.udiffuser = ml_collections.ConfigDict()
  config.udiffuser.num_train_steps = 8000  # UDiffuser (beta = 1) trained as long as MetaDiffuser

  p = config.planner = ml_collections.ConfigDict()
  p.num_candidates = 8  # plans per state, the best by J - lambda * zeta is kept
  p.cfg_weight = 1.2  # omega (paper: 1.2 ... 2.0)
  p.guide_scale = 0.1  # s, dual-guide step
  p.dynamics_weight = 0.5  # lambda (paper, Table 4: 0.5 for Point-Robot)
  p.t_stopgrad = 2  # no guide at the last denoising steps k < t_stopgrad
  p.noise_scale = 0.5  # alpha, sampling temperature (Decision Diffuser: 0.5)
  p.clip_denoised = 1.0  # clip predicted x0 to the normalized data range

  e = config.eval = ml_collections.ConfigDict()
  e.episodes_per_task = 2  # evaluation episodes per test task
  e.warm_starts = ('expert', 'medium', 'random')  # tiers of warm-start data to evaluate
  e.num_context = 8  # history windows of warm-start data averaged into the test context
  e.methods = ('MetaDiffuser', 'UDiffuser', 'Oracle', 'Random')

  if preset == 'paper':
    c.learning_rate, c.num_steps, c.ema_decay = 2e-4, 200_000, 0.995
    d.num_steps, d.learning_rate, d.batch_size = 100, 2e-4, 32
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
    c.num_steps = 40
    d.dim, d.dim_mults, d.embed_dim, d.embed_hidden = 8, (1, 2), 8, 16
    d.num_steps = 4
    d.num_train_steps = 20
    d.ema_start = 0
    config.udiffuser.num_train_steps = 20
    config.log_every = 10
    config.checkpoint_every = 20
    config.data.train_episodes = {'expert': 2, 'medium': 1, 'random': 1}
    config.data.test_episodes = 2
    p.num_candidates = 2
    e.episodes_per_task = 1
    e.num_context = 2
    e.warm_starts = ('expert', 'random')
  elif preset != 'cpu':
    raise ValueError(f"preset must be 'paper', 'cpu' or 'test', got {preset!r}")
  return config
