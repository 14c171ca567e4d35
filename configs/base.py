"""Fields shared by every family's config; family files import `get_config` and override, or,
for the Brax families, call `locomotion_config` with the paper's per-family values.

Each family file defines `get_config(preset)` with presets `paper` (the paper's hyperparameters,
for a GPU), `cpu` (fits a 2-core machine) and `test` (seconds).
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.family = ''  # a name known to mdx.envs.make_family
  config.env = ml_collections.ConfigDict()  # overrides of the family's static fields
  config.seed = 0  # data collection and evaluation seed
  config.train_seeds = (0,)  # one model per training seed, each in WORKDIR/seed_{s}/
  config.log_every = 500  # steps between metric lines
  config.checkpoint_every = 2000  # steps between checkpoints
  # Environment steps between progress lines of in-graph programs (collection, evaluation, the
  # Figure-3 replays; `mdx.progress`); 0: none. Results are the same either way.
  config.progress_every = 20
  # Devices the evaluation's environment batch is sharded over (`mdx.mesh`): 1 one device, 0 all
  # local devices, n the first n. Results equal the one-device run's up to float tolerance.
  config.mesh_devices = 1
  # Weights & Biases, beside metrics.jsonl and TensorBoard (`pip install -e '.[wandb]'`):
  # training metrics go to `project` ('' = off); mode 'offline' (files under each stage's
  # folder, `wandb sync` later) or 'online' (needs `wandb login`).
  config.wandb = ml_collections.ConfigDict({'project': '', 'entity': '', 'mode': 'offline'})

  config.data = ml_collections.ConfigDict()
  config.data.train_episodes = {'expert': 4, 'medium': 4, 'random': 4}  # per training task
  config.data.warm_start_episodes = 4  # warm-start episodes per validation/test task and tier
  # The random tier's data (training and warm start): 'uniform' actions, or 'checkpoint': sampled
  # rollouts of the family's early PPO checkpoint (mdx/experts/<family>_random.msgpack).
  config.data.random_from = 'uniform'

  c = config.context = ml_collections.ConfigDict()
  c.history = 4  # h: transitions per context window
  # Windows of one data tier whose embeddings are averaged into one z: in the context model's
  # and the denoiser's training and at evaluation alike (a test z comes from one tier's data).
  c.num_context = 8
  c.target_window = 4  # transitions predicted per sample in Eq. 1
  c.context_dim = 64  # size of z (paper: 64)
  c.encoder_hidden = (256, 256, 256)  # E_phi: 3 hidden layers (paper)
  c.model_hidden = (256, 256, 256)  # R_psi and P_omega
  c.tiers = ('expert', 'medium', 'random')  # training data tiers the context model sees
  c.learning_rate = 1e-3
  c.lr_decay = False  # True: cosine decay of the learning rate to 1/20 of it over num_train_steps
  c.batch_size = 64  # paper: 64
  c.num_train_steps = 6000
  c.ema_decay = 0.99

  d = config.diffusion = ml_collections.ConfigDict()
  d.horizon = 4  # H
  d.num_diffusion_steps = 20  # K denoising steps (paper: 100)
  d.dim = 32  # U-Net channels at the first level (Diffuser: 32)
  d.dim_mults = (1, 2, 4)  # channel multipliers per level; H divisible by 2**(levels-1)
  d.embed_dim = 64  # time and context embeddings (paper: 64 each)
  d.embed_hidden = 256  # their MLPs' hidden units (paper: 256)
  d.predict_epsilon = False  # x0 prediction (Diffuser's locomotion default); True = the paper's eps
  d.context_dropout = 0.3  # beta
  d.tiers = ('expert',)  # training data tiers whose windows the denoiser learns to generate
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
  # alpha of Algorithm 1, the variance multiplier of x_K and of every step's noise: 0.25 is
  # Decision Diffuser's noise std of 0.5.
  p.noise_scale = 0.25
  p.clip_denoised = 1.0  # clip predicted x0 to the normalized data range (0: no clip)
  p.sampler = 'ddpm'  # 'ddpm' (all K steps) or 'ddim'
  p.num_sample_steps = 0  # DDIM only: steps of the K actually taken (0: all K)
  p.eta = 0.0  # DDIM only: 0 deterministic, 1 DDPM's variance (Song et al.'s eta)
  # The denoiser's computation dtype when planning: 'bfloat16' for hardware with fast bf16 matrix
  # units (parameters stay float32; the effect on plans and speed is measured in the README).
  p.compute_dtype = 'float32'

  v = config.cvae = ml_collections.ConfigDict()  # CVAE-Planner (mdx design; the paper has none)
  v.latent_dim = 32  # u
  v.hidden = (512, 512)  # encoder and decoder MLPs (Mish)
  v.kl_weight = 0.5  # beta_KL of the ELBO
  v.learning_rate = 2e-4  # Adam, as the denoiser's paper setting
  v.batch_size = 32
  v.num_train_steps = 200_000
  v.ema_decay = 0.995

  f = config.focal = ml_collections.ConfigDict()  # FOCAL (reference: LanqingLi1993/FOCAL-ICLR)
  f.latent_dim = 20  # z (reference: 20)
  f.encoder_hidden = (200, 200, 200)  # ReLU MLP per transition, tanh output (reference)
  f.use_next_obs = False  # context rows (s, a, r, s') instead of (s, a, r) (reference: hopper/walker)
  f.z_loss_weight = 10.0
  f.context_learning_rate = 3e-4
  f.hidden = (256, 256, 256)  # Q, V, policy and dual critic (reference: 3 x 256)
  f.meta_batch = 16  # tasks per update, drawn with replacement (reference: 16)
  f.batch_size = 256  # transitions per task for the actor-critic (reference: 256)
  f.embedding_batch = 64  # context transitions per task (reference: 64; 100 for CV, WP, HP)
  f.reward_scale = 5.0  # (reference: 5; Point-Robot 100)
  f.discount, f.tau, f.learning_rate = 0.99, 0.005, 3e-4
  f.c_learning_rate, f.c_iter = 1e-4, 3
  f.alpha_init, f.alpha_max, f.alpha_lr = 500.0, 2000.0, 1.0  # per family in the reference
  f.target_divergence = 0.05
  f.num_iterations = 500  # (reference: 500)
  f.updates_per_iteration = 2000  # one compiled call (reference: 2000; per family)
  f.log_every, f.checkpoint_every = 10, 50  # in iterations
  f.tiers = ('expert',)  # training data (the paper: the expert data all methods share)
  # What BRAC conditions on: 'encoder' (FOCAL's z) or 'task' (the true task parameters,
  # standardized as Ours+GT's: the learner's own upper reference; a diagnostic, not FOCAL).
  f.context = 'encoder'
  # BRAC's value penalty (`- alpha D` in the Q target; the reference's `use_value_penalty`, per
  # family in `FOCAL_VALUE_PENALTY`)
  f.value_penalty = False

  o = config.corro = ml_collections.ConfigDict()  # CORRO (reference: PKU-AI-Edge/CORRO)
  o.cvae_hidden, o.cvae_latent_dim = 128, 64  # one hidden layer (reference: 64 / 5 for PR, CV)
  o.cvae_beta, o.cvae_learning_rate, o.cvae_batch = 0.2, 3e-4, 128
  o.cvae_num_calls = 100  # x updates_per_call updates (reference: 100 epochs of the data)
  o.encoder_hidden, o.latent_dim = (128, 128), 40  # per family in the reference
  o.num_negatives, o.temperature = 16, 0.1
  # The encoder's negatives (the reference's `--relabel-type`): 'generative' decodes (s', r) from
  # the CVAE; 'reward_randomize' keeps the query's s' and adds N(0, reward_std^2) to its r (the
  # reference's option for families whose dynamics are shared).
  o.negatives, o.reward_std = 'generative', 0.5
  # What the SAC stage conditions on: 'encoder' (CORRO: the aggregated embedding of one episode
  # of the task) or 'task' (the true task parameters, standardized as Ours+GT's: the offline
  # learner's own upper reference, with the encoder out of the loop; a diagnostic, not CORRO).
  o.context = 'encoder'
  o.encoder_learning_rate, o.encoder_batch = 3e-4, 64
  o.encoder_num_calls = 1000  # x updates_per_call (reference: 1000 x 200)
  o.hidden = (256, 256)  # SAC's Q and policy (reference; Point-Robot 64, 64)
  o.alpha, o.discount, o.tau, o.learning_rate, o.reward_scale = 0.2, 0.99, 0.005, 3e-4, 1.0
  # CQL(H) on the critic (the reference's `use_cql`, False in all its configs; 0 = off)
  o.cql_weight, o.cql_samples = 0.0, 10
  o.meta_batch, o.batch_size = 16, 256  # tasks (with replacement) x transitions per update
  o.sac_num_calls = 1000  # x updates_per_call (reference: 1000 x 200)
  o.updates_per_call = 200
  o.log_every, o.checkpoint_every = 10, 100  # in calls
  o.tiers = ('expert',)  # training data (the paper: the expert data all methods share)

  t = config.prompt_dt = ml_collections.ConfigDict()  # Prompt-DT (reference: mxu34/prompt-dt)
  t.context_len = 20  # K: episode steps in the input (reference: 20)
  t.prompt_len = 5  # K*: prompt steps, the end of one episode of the task (reference: 5)
  t.embed_dim = 128  # d (reference: 128)
  t.num_layers = 3  # GPT-2 blocks (reference: 3)
  t.num_heads = 1  # (reference: 1)
  t.hidden = 512  # the blocks' MLP width, 4 d (reference: n_inner = 4 d)
  t.dropout = 0.1  # attention, residual and embedding dropout (reference: 0.1)
  t.max_episode_length = 1000  # size of the timestep embedding table (reference: 1000)
  t.learning_rate = 1e-4  # AdamW (reference: 1e-4)
  t.weight_decay = 1e-4  # (reference: 1e-4)
  t.warmup_steps = 10_000  # linear warm-up of the learning rate (reference: 10,000)
  t.grad_clip = 0.25  # global-norm clip (reference: 0.25)
  t.batch_per_task = 16  # segments of every training task in every step (reference: 16)
  t.num_train_steps = 50_000  # (reference: 5000 iterations x 10 steps)
  t.tiers = ('expert',)  # training data tiers (the paper: the expert data all methods share)
  t.target_return = 0.0  # the return-to-go the first step is conditioned on (per family)
  t.return_scale = 1.0  # returns-to-go are divided by it (per family)
  # PromptDT-FT (paper 004's Prompt-DT-FT): the trained network fine-tuned on each evaluated
  # task's warm-start data, in the policy's init (004: AdamW 1e-4, 20 epochs x 100 steps, batch
  # 32 as its Table 4's fine-tuning; the reference's `--finetune`: 10 steps of 256).
  t.finetune_steps, t.finetune_batch, t.finetune_learning_rate = 2000, 32, 1e-4
  # The warm-start tier the prompt is taken from (Prompt-DT, PromptDT-FT, and the y of Prompt
  # Diffuser's prompt): '' for the tier under evaluation, which is also the data PromptDT-FT and
  # Prompt Diffuser fine-tune on; a tier name for paper 004's Table 2 grid (rows: the data's
  # tier, columns: the prompt's). A policy field: training never reads it.
  t.prompt_tier = ''

  m = config.mtdiff = ml_collections.ConfigDict()  # MTDiff-P (reference: tinnerhrhe/MTDiff)
  m.prompt_len = 20  # J: demonstration steps (s, a) of the task (paper: 20)
  m.history = 2  # L: the last states the plan is conditioned on (paper: 2 for Meta-World)
  m.horizon = 32  # H of the training windows (reference: 32)
  m.plan_horizon = 16  # H at test (reference: 14; causal attention: the first action's chain
  #                      does not depend on it)
  m.width = 256  # d (reference: 256)
  m.num_layers, m.num_heads = 6, 4  # GPT-2 blocks (paper: 6 x 4; reference code: 4 x 2)
  m.hidden = 1024  # the blocks' MLP width (reference: 1024)
  m.dropout = 0.1  # (reference: 0.1)
  m.mlp_layers = 2  # the action embedding's and the head's layers (paper: 2; reference: 1)
  # LayerNorm on each prompt step's and state's features (paper and code: on). Off in mdx: the
  # inputs are already normalized, and the LayerNorm of a 2-D state keeps only the sign of x - y.
  # Point-Robot, validation, cpu preset: 0.22 [0.09, 0.34] with it, 0.87 [0.82, 0.91] without
  # (results/point_robot/mtdiff_validation/).
  m.input_layernorm = False
  m.num_diffusion_steps = 200  # K (paper: 200)
  m.schedule = 'vp'  # the VP schedule, beta 0.1 .. 10 (paper)
  m.return_dropout = 0.25  # CFG training: P(return dropped) (paper: 0.25; reference: 0.2)
  m.discount = 0.99  # of R, the reward-to-go per remaining step (reference: 0.99)
  m.target_quantile = 0.95  # the test return: this quantile of the training windows' R
  m.cfg_weight = 1.2  # omega (paper: 1.2)
  m.noise_scale = 0.5  # the variance of x_K and of each step's noise (paper: beta = 0.5)
  m.clip_denoised = 1.0  # the predicted x0 clipped to [-1, 1] (reference)
  m.action_weight = 10.0  # the loss weight of the first action (reference: 10)
  m.learning_rate = 2e-4  # Adam (paper: 2e-4)
  m.batch_per_task = 8  # windows of every training task per step (paper: 8)
  m.num_train_steps = 100_000  # (paper: 2e6 on Meta-World's 50 tasks; SYSTEMS.md: 50k at the
  #                               Cheetah-Vel/Ant-Dir overlap scale)
  m.ema_decay, m.ema_start = 0.995, 2000  # (reference: 0.995 from step 2000)
  m.tiers = ('expert',)  # training data (the paper: near-optimal data)

  # MTDiff-S (the same paper): transitions (s, a, r, s') of a task generated from its prompt
  # (`mdx.methods.mtdiff.synthesis`, `experiments/mtdiff_synthesize.py`); the network's fields as
  # MTDiff-P's, without return or state history.
  s = config.mtdiff_s = ml_collections.ConfigDict()
  s.prompt_len = 20  # J (paper: 20; reference code: 50)
  s.horizon = 16  # H transitions per window (the reference's position table allows at most 20)
  s.width, s.num_layers, s.num_heads, s.hidden = 256, 6, 4, 1024  # (paper: 6 x 4; code: 6 x 4)
  s.dropout, s.mlp_layers = 0.1, 2  # (code: per-type 2-layer heads)
  s.input_layernorm = False  # as MTDiff-P's (chosen there, on Point-Robot's validation tasks)
  s.num_diffusion_steps, s.schedule, s.clip_denoised = 200, 'vp', 1.0
  s.learning_rate, s.batch_per_task, s.num_train_steps = 2e-4, 8, 100_000
  s.ema_decay, s.ema_start = 0.995, 2000
  s.tiers = ('expert',)

  # Prompt Diffuser (paper 004, no public code): a prompt generator for the frozen Prompt-DT.
  g = config.prompt_diffuser = ml_collections.ConfigDict()
  g.hidden, g.step_dim = 256, 32  # the 3-layer Mish MLP (App. B); the step embedding ([G])
  g.num_diffusion_steps = 100  # K (Table 4)
  g.chain_steps = 10  # L_DT's differentiable DDIM chain over 10 of the K steps ([G]: 10-20)
  g.noise_scale = 0.5  # the sampling noise's variance (low temperature; beta not given, [G])
  g.learning_rate, g.weight_decay, g.grad_clip = 1e-4, 1e-4, 0.25  # (Table 4; Adam betas .9/.95)
  g.batch_size = 32  # prompts (and Prompt-DT segments) per update (Table 4)
  g.num_train_steps = 2000  # pre-training on the training tasks ([G]: as fine-tuning's)
  g.finetune_steps = 2000  # on each test task's warm-start data (Table 4: 20 epochs x 100)

  e = config.eval = ml_collections.ConfigDict()
  e.episodes_per_task = 2  # evaluation episodes per task and evaluation seed
  e.num_eval_seeds = 3  # independent evaluation seeds (contexts and episodes), one program
  e.warm_starts = ('expert', 'medium', 'random')  # tiers of warm-start data to evaluate
  e.methods = ('MetaDiffuser', 'UDiffuser', 'Oracle', 'Random')  # names in mdx.methods.REGISTRY
  e.oracle = 'Oracle'  # the method whose return is the normalized score's 1
  e.random = 'Random'  # ... and 0
  e.plan_vs_reached_tasks = 5  # tasks replayed open-loop for the Figure-3 record (0: skip)
  # Methods whose episode on task `video_task` (expert warm start) the evaluation renders as
  # `video_<method>.gif` with the kept plan as a ghost (locomotion only; `mdx.evaluation.video`).
  e.videos = ()
  e.video_task = 0
  # Settings evaluated in one program, a row each: 'field=v1,v2;field2=...' (every combination;
  # '' = none) over the planner's dynamics_weight, guide_scale, cfg_weight, noise_scale and
  # Prompt-DT's target_return; each method sweeps the fields it has (`Method.sweepable`).
  e.sweep = ''
  return config


# Prompt-DT's (target return, return scale): the reference's `prompt_utils.gen_env` values for
# cheetah_vel, cheetah_dir and ant_dir; ours (mdx decisions) for the others, near the expert data's
# best returns (the paper "selected the best target rewards ... from the set used in the original
# paper" and does not say which).
# Point-Robot's -3 was chosen on validation tasks (`cpu` preset, training seed 0, one swept
# program over 0, -2, -3, -4, -6: expert-prompt scores 0.91-0.93, all within noise; -3 the best
# point estimate; results/point_robot/NOTES.md). Cheetah-Vel's -50 likewise (0, the
# reference's, -25 and -50 in one program: 0.85 / 0.88 / 0.89; the rule, fixed before: 0 kept
# unless another scores higher by more than 0.02; results/cheetah_vel/NOTES.md). Walker-Param's
# 400 by the same rule (400 / 500 / 600: 0.875 / 0.846 / 0.861; results/walker_param/NOTES.md),
# Hopper-Param's 400 likewise (0.943 / 0.920 / 0.921; results/hopper_param/NOTES.md), and
# Cheetah-Dir's 1200 (900 / 1200 / 1500, the reference's: 0.66 / 0.71 / 0.60 at its `cpu` batch;
# results/cheetah_dir/NOTES.md).
PROMPT_DT_RETURNS = {'point_robot': (-3.0, 10.0), 'cheetah_vel': (-50.0, 500.0),
                     'cheetah_dir': (1200.0, 1000.0), 'ant_dir': (500.0, 500.0),
                     'walker_param': (400.0, 500.0), 'hopper_param': (400.0, 500.0)}


# FOCAL's per-family settings from the reference's configs: (updates per iteration, meta-batch,
# embedding batch, reward scale, alpha_init, alpha_max, use_next_obs).
FOCAL_FAMILIES = {'point_robot': (1000, 16, 64, 100.0, 500.0, 2000.0, False),
                  'cheetah_vel': (200, 16, 100, 5.0, 50.0, 2000.0, False),
                  'cheetah_dir': (2000, 4, 256, 5.0, 500.0, 2000.0, False),
                  'ant_dir': (4000, 4, 256, 5.0, 1e6, 5e6, False),
                  'walker_param': (4000, 16, 100, 5.0, 50.0, 1e4, True),
                  'hopper_param': (4000, 10, 100, 5.0, 500.0, 2000.0, True)}
# `use_value_penalty` of the reference's configs: 1 in cheetah-dir.json and ant-dir.json, 0 in
# walker_rand_params.json, the default False elsewhere.
FOCAL_VALUE_PENALTY = ('cheetah_dir', 'ant_dir')


def focal_presets(config, preset: str) -> None:
  """FOCAL's family settings (`paper`: the reference's) and the `cpu` / `test` sizes."""
  f = config.focal
  (f.updates_per_iteration, f.meta_batch, f.embedding_batch, f.reward_scale, f.alpha_init,
   f.alpha_max, f.use_next_obs) = FOCAL_FAMILIES[config.family]
  f.value_penalty = config.family in FOCAL_VALUE_PENALTY
  if preset == 'cpu':
    # 64-unit networks, 8 tasks x 64 transitions per update, 40 x 750 = 30,000 updates: about
    # 0.8% of the reference's transition-updates (500 x 1000 x 16 x 256 on Point-Robot). Chosen
    # on Point-Robot's validation tasks over 10,000 updates (expert warm start 0.33 [0.19, 0.46]
    # against 0.60 [0.55, 0.64]; results/point_robot/NOTES.md).
    f.encoder_hidden, f.hidden = (64, 64), (64, 64)
    f.meta_batch, f.batch_size, f.embedding_batch = 8, 64, 32
    f.num_iterations, f.updates_per_iteration = 40, 750
    f.log_every, f.checkpoint_every = 5, 10
  elif preset == 'test':
    f.latent_dim, f.encoder_hidden, f.hidden = 4, (8,), (8,)
    f.meta_batch, f.batch_size, f.embedding_batch, f.c_iter = 4, 4, 4, 2
    f.num_iterations, f.updates_per_iteration, f.log_every, f.checkpoint_every = 2, 3, 1, 1


# CORRO's per-family sizes from the reference's configs: (CVAE hidden, CVAE latent, encoder
# hidden, encoder latent, SAC hidden).
CORRO_FAMILIES = {'point_robot': (64, 5, 64, 5, (64, 64)), 'cheetah_vel': (64, 5, 64, 5, (256, 256)),
                  'cheetah_dir': (64, 5, 64, 5, (256, 256)), 'ant_dir': (128, 64, 64, 5, (256, 256)),
                  'hopper_param': (128, 64, 128, 40, (256, 256)),
                  'walker_param': (128, 64, 128, 32, (256, 256))}


def corro_presets(config, preset: str) -> None:
  """CORRO's family sizes (`paper`: the reference's; Cheetah-Dir has no reference config and
  takes Cheetah-Vel's) and the `cpu` / `test` budgets."""
  o = config.corro
  (o.cvae_hidden, o.cvae_latent_dim, h, o.latent_dim, o.hidden) = CORRO_FAMILIES[config.family]
  o.encoder_hidden = (h, h)
  if preset == 'cpu':
    # 4 x 10,000 CVAE updates x 128, 20 x 250 encoder updates x 64 (2.5% of the reference's),
    # 40 x 250 SAC updates of 8 tasks x 64 transitions (0.8% of the reference's 200k x 16 x 256).
    o.updates_per_call = 250
    o.cvae_num_calls, o.encoder_num_calls, o.sac_num_calls = 40, 20, 40
    o.meta_batch, o.batch_size = 8, 64
    o.log_every, o.checkpoint_every = 5, 10
  elif preset == 'test':
    o.cvae_hidden, o.cvae_latent_dim, o.encoder_hidden, o.latent_dim, o.hidden = 8, 2, (8,), 3, (8,)
    o.num_negatives, o.cvae_batch, o.encoder_batch, o.meta_batch, o.batch_size = 3, 4, 4, 2, 4
    o.updates_per_call, o.cvae_num_calls, o.encoder_num_calls, o.sac_num_calls = 3, 2, 2, 2
    o.log_every, o.checkpoint_every = 1, 1


def mtdiff_presets(config, preset: str) -> None:
  """MTDiff-P's `cpu` and `test` sizes (`paper` keeps the paper's), windows fit to the episode."""
  g = config.prompt_diffuser
  if preset == 'cpu':  # a tenth of fine-tuning per task (each environment fine-tunes its own copy)
    g.num_train_steps, g.finetune_steps = 2000, 200
  elif preset == 'test':
    g.hidden, g.step_dim, g.num_diffusion_steps, g.chain_steps = 16, 8, 4, 2
    g.batch_size, g.num_train_steps, g.finetune_steps = 4, 10, 2
  m, s = config.mtdiff, config.mtdiff_s
  if config.family == 'point_robot':  # 20-step episodes: half an episode of prompt
    m.prompt_len, m.horizon, m.plan_horizon = 10, 8, 4
    s.prompt_len, s.horizon = 10, 8
  if preset == 'cpu':
    # A quarter of the width (d = 64, MLP 256), 2 blocks x 2 heads, K = 20, 2 windows per task,
    # 5000 steps: about 0.1% of the paper's sample-updates at 1/40 of its per-sample FLOPs.
    m.width, m.hidden, m.num_layers, m.num_heads = 64, 256, 2, 2
    m.num_diffusion_steps, m.batch_per_task, m.num_train_steps, m.ema_start = 20, 2, 5000, 500
    s.width, s.hidden, s.num_layers, s.num_heads = 64, 256, 2, 2
    s.num_diffusion_steps, s.batch_per_task, s.num_train_steps, s.ema_start = 20, 2, 5000, 500
  elif preset == 'test':
    m.width, m.hidden, m.num_layers, m.num_heads = 16, 32, 1, 1
    m.prompt_len, m.history, m.horizon, m.plan_horizon = 2, 2, 4, 2
    m.num_diffusion_steps, m.batch_per_task, m.num_train_steps, m.ema_start = 4, 1, 10, 0
    s.width, s.hidden, s.num_layers, s.num_heads, s.prompt_len, s.horizon = 16, 32, 1, 1, 2, 4
    s.num_diffusion_steps, s.batch_per_task, s.num_train_steps, s.ema_start = 4, 1, 10, 0


def prompt_dt_presets(config, preset: str) -> None:
  """Prompt-DT's family returns and the `cpu` / `test` sizes (`paper` keeps the reference's);
  the CVAE-Planner's, FOCAL's, CORRO's and MTDiff-P's sizes alike."""
  focal_presets(config, preset)
  corro_presets(config, preset)
  mtdiff_presets(config, preset)
  v = config.cvae
  if preset == 'cpu':
    v.num_train_steps = 20_000  # a tenth of the `paper` preset's (an MLP: minutes on 2 cores)
  elif preset == 'test':
    v.latent_dim, v.hidden, v.num_train_steps = 4, (16,), 10
  t = config.prompt_dt
  t.target_return, t.return_scale = PROMPT_DT_RETURNS[config.family]
  if preset == 'cpu':
    # Half the reference's width (d = 64, MLP 256; 3 blocks, K = 20, K* = 5 as the reference),
    # 2 segments per task (60 per step; the reference: 16 per task, 560), 6000 steps (the
    # reference: 50,000), warm-up shortened in proportion (20% of the steps, as the reference's
    # 10,000): 1.3% of the reference's segment-updates (360k of 28M), and at about 4 GFLOP a step
    # (the reference's: 150) 0.3% of its arithmetic.
    t.embed_dim, t.hidden = 64, 256
    t.batch_per_task, t.num_train_steps, t.warmup_steps = 2, 6000, 1200
    t.finetune_steps = 200  # a tenth of 004's, as Prompt Diffuser's `cpu` fine-tuning
  elif preset == 'test':
    t.context_len, t.prompt_len, t.embed_dim, t.num_layers, t.hidden = 4, 2, 16, 1, 32
    t.batch_per_task, t.num_train_steps, t.warmup_steps = 1, 10, 5
    t.finetune_steps, t.finetune_batch = 2, 2


def locomotion_config(preset: str, family: str, *, history: int, horizon: int,
                      context_dropout: float, dynamics_weight: float,
                      paper_dim_mults: tuple[int, ...],
                      test_episode_length: int = 20) -> ml_collections.ConfigDict:
  """The presets the Brax families share; a family file passes the paper's h, H, beta, lambda.

  `cpu` fits a 2-core machine (about half an hour for the pipeline), `paper` is the paper's
  scale with Diffuser's U-Net for the robot (`paper_dim_mults`), `test` runs in seconds
  (`test_episode_length`-step episodes, tiny networks). Options follow the preset after commas
  (`configs/cheetah_vel.py:cpu,prompt_dt_split`): `prompt_dt_split` takes the Prompt-DT
  repository's task split (Cheetah-Vel, Ant-Dir; `mdx.envs.locomotion.TASK_SPLITS`), the one
  of papers 003 and 004.
  """
  preset, *options = preset.split(',')
  config = get_config()
  config.family = family
  c, d, p, e = config.context, config.diffusion, config.planner, config.eval
  config.data.train_episodes = {'expert': 4, 'medium': 2, 'random': 2}  # 200 steps each
  config.data.warm_start_episodes = 2
  c.history = history
  c.target_window = 10
  c.num_train_steps = 6000
  d.horizon = horizon
  d.dim_mults = (1, 2, 4)
  d.context_dropout = context_dropout
  d.batch_size = 32
  d.num_train_steps = 12000
  config.udiffuser.num_train_steps = 12000
  p.dynamics_weight = dynamics_weight
  # The guide on the predicted clean plan, where R and P were trained. Chosen per family on
  # validation tasks (results/<family>/sweeps/guide_form_*): 'x0' at s = 0.1 against 'mean' at
  # s = 0.01 / 0.1: Ant-Dir 0.64 / 0.63 / 0.41, Cheetah-Vel 0.94 / 0.14 / NaN, Cheetah-Dir
  # 0.66 / 0.02 / NaN, Walker-Param 0.83 / -0.03 / NaN, Hopper-Param 0.90 / -0.02 / NaN.
  p.guide_form = 'x0'
  p.num_candidates = 4
  e.episodes_per_task = 1
  e.warm_starts = ('expert', 'random')  # Table 1 (expert) and Table 2 (random) columns
  e.videos = ('MetaDiffuser',)  # a GIF of its episode on the first task, the plan as a ghost

  if preset == 'paper':
    c.learning_rate, c.num_train_steps, c.ema_decay = 2e-4, 200_000, 0.995
    d.num_diffusion_steps, d.learning_rate, d.batch_size = 100, 2e-4, 32
    d.dim_mults = paper_dim_mults
    d.num_train_steps = config.udiffuser.num_train_steps = 1_000_000
    d.predict_epsilon = True
    d.ema_start = 2000
    config.data.train_episodes = {'expert': 20, 'medium': 10, 'random': 10}
    config.checkpoint_every, config.log_every = 20_000, 1000
    p.num_candidates = 64
    e.episodes_per_task = 5
    e.warm_starts = ('expert', 'medium', 'random')
  elif preset == 'test':
    e.videos = ()
    config.env.episode_length = test_episode_length
    config.data.train_episodes = {'expert': 1, 'medium': 1, 'random': 1}
    config.data.warm_start_episodes = 1
    c.encoder_hidden = c.model_hidden = (32, 32)
    c.context_dim, c.history, c.target_window, c.num_context, c.num_train_steps = 8, 4, 4, 2, 20
    d.horizon, d.dim, d.dim_mults, d.embed_dim, d.embed_hidden = 8, 8, (1, 2), 8, 16
    d.num_diffusion_steps, d.num_train_steps, d.ema_start = 4, 10, 0
    config.udiffuser.num_train_steps = 10
    config.log_every, config.checkpoint_every = 10, 10
    p.num_candidates = 2
    e.num_eval_seeds = 2
  elif preset != 'cpu':
    raise ValueError(f"preset must be 'paper', 'cpu' or 'test', got {preset!r}")
  prompt_dt_presets(config, preset)
  for option in options:
    if option != 'prompt_dt_split':
      raise ValueError(f"unknown preset option {option!r} (known: 'prompt_dt_split')")
    # The family's own sizes of the split (imported here only: Brax loads with it). Cheetah-Dir's
    # two tasks are already its split.
    from mdx.envs.locomotion import PROMPT_DT_SIZES  # pylint: disable=g-import-not-at-top
    if family not in PROMPT_DT_SIZES:
      raise ValueError(f'prompt_dt_split: {family} has no Prompt-DT split other than its own '
                       f'(one exists for {sorted(PROMPT_DT_SIZES)})')
    config.env.task_split = 'prompt_dt'
    config.env.num_tasks, config.env.num_test_tasks = PROMPT_DT_SIZES[family]
  return config
