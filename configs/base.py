"""Fields shared by every family's config; family files import `get_config` and override.

Each family file defines `get_config(preset)` with presets `paper` (the paper's hyperparameters,
for a GPU), `cpu` (fits a 2-core machine) and `test` (seconds).
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.family = ''  # a name known to mdx.envs.make_family
  config.env = ml_collections.ConfigDict()  # overrides of the family's static fields
  config.seed = 0
  config.log_every = 500  # steps between metric lines
  config.checkpoint_every = 2000  # steps between checkpoints

  config.data = ml_collections.ConfigDict()
  config.data.train_episodes = {'expert': 4, 'medium': 4, 'random': 4}  # per training task
  config.data.test_episodes = 4  # warm-start episodes per test task and tier
  config.data.expert_noise = 0.0  # std of Gaussian exploration noise on an analytic expert

  c = config.context = ml_collections.ConfigDict()
  c.history = 4  # h: transitions per context window
  c.num_context = 4  # windows whose embeddings are averaged into one z
  c.target_window = 4  # transitions predicted per sample in Eq. 1
  c.context_dim = 64  # size of z (paper: 64)
  c.pooling = 'segment'  # E_phi reads a flat window ('segment') or one transition ('transition')
  c.encoder_hidden = (256, 256, 256)  # E_phi: 3 hidden layers (paper)
  c.model_hidden = (256, 256, 256)  # R_psi and P_omega
  c.tiers = ('expert', 'medium', 'random')  # training data tiers the context model sees
  c.one_tier_contexts = False  # True: a sample's windows all come from one data tier, as at test
  c.learning_rate = 1e-3
  c.lr_decay = False  # True: cosine decay of the learning rate to 1/20 of it over num_steps
  c.batch_size = 64  # paper: 64
  c.num_steps = 6000
  c.ema_decay = 0.99
  c.z_noise = 0.0  # std of Gaussian noise on z where R and P read it (0 in the paper)
  c.z_penalty = 0.0  # weight of mean ||z||^2 in the loss (0 in the paper); with z_noise: bottleneck
  c.z_consistency = 0.0  # weight of the within-task share of z's variance (0 in the paper)

  d = config.diffusion = ml_collections.ConfigDict()
  d.horizon = 4  # H
  d.num_steps = 20  # K denoising steps (paper: 100)
  d.dim = 32  # U-Net channels at the first level (Diffuser: 32)
  d.dim_mults = (1, 2, 4)  # channel multipliers per level; H divisible by 2**(levels-1)
  d.embed_dim = 64  # time and context embeddings (paper: 64 each)
  d.embed_hidden = 256  # their MLPs' hidden units (paper: 256)
  d.predict_epsilon = False  # x0 prediction (Diffuser's locomotion default); True = the paper's eps
  d.context_dropout = 0.3  # beta
  d.tiers = ('expert',)  # training data tiers whose windows the denoiser learns to generate
  d.num_context = 4  # history windows averaged into each training window's z label
  d.one_tier_contexts = False  # True: a label's windows all come from one data tier, as at test
  d.context_noise = 0.0  # std of Gaussian noise on z in training (0 in the paper)
  d.action_weight = 10.0  # loss weight of the first action (Diffuser: 10)
  d.learning_rate = 1e-3
  d.batch_size = 64
  d.num_train_steps = 8000
  d.ema_decay = 0.995  # Diffuser: 0.995
  d.ema_start = 1000  # Diffuser's step_start_ema

  config.udiffuser = ml_collections.ConfigDict()
  config.udiffuser.num_train_steps = 8000  # UDiffuser (beta = 1) training steps

  p = config.planner = ml_collections.ConfigDict()
  p.num_candidates = 8  # plans per state, the best by J - lambda * zeta is kept
  p.cfg_weight = 1.2  # omega (paper: 1.2 ... 2.0)
  p.guide_form = 'mean'  # 'mean' (mu + s Sigma g), 'eps' (paper's Algorithm 1), 'x0' (on x0_hat)
  p.guide_scale = 0.1  # s, dual-guide step
  p.guide_units = 'normalized'  # the step's space: 'normalized' (Diffuser) or 'env' units
  p.dynamics_weight = 1.0  # lambda
  p.t_stopgrad = 2  # no guide at the last denoising steps k < t_stopgrad
  p.noise_scale = 0.5  # alpha, sampling temperature (Decision Diffuser: 0.5)
  p.clip_denoised = 1.0  # clip predicted x0 to the normalized data range

  e = config.eval = ml_collections.ConfigDict()
  e.episodes_per_task = 2  # evaluation episodes per test task
  e.warm_starts = ('expert', 'medium', 'random')  # tiers of warm-start data to evaluate
  e.num_context = 8  # history windows of warm-start data averaged into the test context
  e.methods = ('MetaDiffuser', 'UDiffuser', 'Oracle', 'Random')
  e.plan_vs_reached_tasks = 1  # test tasks replayed open-loop for the Figure-3 plot (0: skip)
  return config
