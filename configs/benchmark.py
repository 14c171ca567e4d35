"""Benchmark of the compiled planner and one denoiser update (experiments/benchmark.py).

The default is a Diffuser-sized denoiser (jannerm/diffuser locomotion: horizon 32, dim 32,
dim_mults (1, 2, 4, 8)) on Walker2d-like dimensions (17 state + 6 action). Override any field,
e.g. `--config.batches='(1,)' --config.num_diffusion_steps='(20,)'`.
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.horizon = 32  # H
  config.obs_dim = 17
  config.act_dim = 6
  config.dim = 32  # U-Net channels at the first level
  config.dim_mults = (1, 2, 4, 8)
  config.embed_dim = 64  # time and context embeddings (MetaDiffuser: 64 each)
  config.embed_hidden = 256
  config.context_dim = 64  # z
  config.model_hidden = (256, 256, 256)  # reward and dynamics MLPs (the guide in plan/full)
  config.num_diffusion_steps = (20, 100)  # K values to measure
  config.batches = (1, 64)  # B values to measure
  config.modes = ('plan/bare', 'plan/full')  # bare: omega = 1, no guide; full: CFG + dual guide
  # The U-Net's computation dtypes to time ('bfloat16' rows also give the largest difference of
  # their actions from float32's, same parameters and keys).
  config.compute_dtypes = ('float32',)
  config.cfg_weight = 1.5  # omega in plan/full
  config.guide_scale = 0.1  # s in plan/full
  config.dynamics_weight = 1.0  # lambda in plan/full
  config.t_stopgrad = 2  # plan/full
  config.predict_epsilon = False
  config.train_batch = 32  # the train_step measurement's batch (Diffuser: 32)
  config.stack_members = (2, 3, 5)  # train_stack: N members in one vmapped update ('()' = off)
  # train_parts / train_scan: the update's gradient alone, and this many updates in one call
  # (a lax.scan) against one call per update (0 = off)
  config.train_scan = 10
  # rollout: one episode of random actions on this family's test tasks ('' = off), per value of
  # progress_every (environment steps between progress callbacks; 0 = none): their cost.
  config.rollout_family = 'hopper_param'
  config.rollout_batch = 32
  config.progress_every = (0, 20, 1)
  # matmul_ceiling: XLA's fp32 matmul at these square sizes; the best is each row's ceiling
  config.ceiling_sizes = (256, 512, 1024, 2048)  # ('()' = off)
  # unet_profile: one U-Net step at each batch against its matrix products timed alone ('()' = off)
  config.profile_batches = (1, 64)
  # sample_transitions: the TD-learning baselines' draw of `draws` transitions for each of
  # `meta_batch` tasks from a dataset of (tasks, episodes, steps, obs_dim, act_dim), random
  # arrays with some episodes ending early ('()' = off). Cheetah-Dir's FOCAL data (2 training
  # tasks, 3 tiers pooled) and Ant-Dir's (30 tasks).
  config.sampler_shapes = ((2, 120, 200, 17, 6, 8, 64), (30, 12, 200, 27, 8, 8, 64))
  # evaluation: one test episode per task of MetaDiffuser as the pipeline compiles it ('' = off)
  config.eval_config = 'configs/cheetah_vel.py:cpu'
  config.eval_repeats = 3  # timed evaluation programs after one warm-up
  config.repeats = 5  # at least this many timed runs after one warm-up; the median is reported
  config.min_time_s = 3.0  # ... and more runs until this much time is spent (fast programs)
  config.seed = 0
  # A checkout of the code before a change ('' = off): every planner measurement then runs in a
  # fresh process of each code base, alternating, `compare_rounds` times (experiments/benchmark.py).
  config.compare_with = ''
  config.compare_rounds = 3
  return config
