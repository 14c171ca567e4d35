"""Brax-PPO settings of the task-conditioned experts, one preset per locomotion family.

Use as `--config=configs/experts.py:cheetah_vel` (or just `--family=cheetah_vel`). Sized for a
2-core CPU: each run is 10-60 minutes. `num_timesteps` counts environment steps.
"""
import ml_collections


def get_config(family: str = 'cheetah_vel') -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.family = family
  config.backend = ''  # '' keeps the family's default physics backend
  config.seed = 0
  config.init_from = ''  # an expert .msgpack to start the policy from (fresh value function)
  config.resume_from = ''  # an earlier run's workdir: continue from its resume.msgpack (+ value fn)
  config.medium_from = ''  # a .msgpack for the medium tier (needed with init_from/resume_from)
  # The medium tier: the checkpoint half-way between uniform actions and the final policy in the
  # validation tasks' 'return' or in the family's task 'metric' (speed along the goal, forward
  # speed, velocity error).
  config.medium_by = 'return'
  config.train_episode_length = 0  # steps per training episode; 0 = the family's (200)
  # True: a finished training episode restarts with a new task (experts.RedrawAutoResetWrapper);
  # False: Brax's auto-reset, which replays the slot's first task until PPO's next full reset.
  config.redraw_tasks = False
  # Test-task indices to train on instead of the training distribution: a feasibility probe of
  # chosen test tasks (e.g. the ones an expert fails), never a committed expert. () = off.
  config.probe_test_tasks = ()
  # End the run at its first checkpoint at or past this many PPO steps, checkpoints only (0 = off):
  # re-runs the early part of a run for `experiments/select_tier.py` (docs/locomotion.md).
  config.stop_after_env_steps = 0
  config.env = ml_collections.ConfigDict()  # overrides of the family's static fields

  p = config.ppo = ml_collections.ConfigDict()
  p.num_timesteps = 4_000_000  # environment steps of PPO
  p.num_envs = 64  # parallel environments (tasks are resampled at every reset)
  p.batch_size = 64  # trajectories of `unroll_length` per minibatch
  p.num_minibatches = 16  # minibatches per PPO update
  p.unroll_length = 20  # steps per trajectory chunk
  p.num_updates_per_batch = 4  # SGD passes over each batch
  p.discounting = 0.97
  p.learning_rate = 3e-4
  p.entropy_cost = 1e-3
  p.reward_scaling = 1.0
  p.clipping_epsilon = 0.3
  p.max_grad_norm = 1.0
  p.num_evals = 21  # Brax evals (and saved checkpoints) spread over training, for the medium tier
  p.num_resets_per_eval = 2  # full env resets (new tasks) per eval interval
  p.num_eval_envs = 32  # episodes per Brax eval (training task distribution)

  n = config.network = ml_collections.ConfigDict()
  n.policy_hidden_layer_sizes = (64, 64, 64, 64)
  n.value_hidden_layer_sizes = (128, 128, 128, 128)
  n.activation = 'swish'
  n.normalize_observations = True

  config.eval_episodes_per_task = 2  # deterministic episodes per test task for the recorded quality

  if family == 'cheetah_vel':
    pass
  elif family == 'cheetah_dir':
    p.num_timesteps = 8_000_000  # backward 1.67 m/s at 3.3M steps, 1.89 at 8.2M (docs/locomotion.md);
    # committed: this run fine-tuned 5 times with init_from and env.forward_prob 0.25 (3.51 m/s)
    config.eval_episodes_per_task = 5  # only two test tasks
    config.env.forward_prob = 0.5  # P(d = +1) of the training draws (the backward gait lags)
  elif family == 'ant_dir':
    p.num_timesteps = 3_000_000
    # By return, the half-way checkpoint stood still and collected the survive bonus
    # (0.05 m/s along the goal); half-way in speed is a walking one (docs/locomotion.md).
    config.medium_by = 'metric'
  elif family in ('walker_param', 'hopper_param'):
    # MJX with elliptic friction cones (the families' default; docs/locomotion.md has the earlier
    # generalized-backend experts, which fell on the high-friction tasks as their feet sank).
    p.num_timesteps = 8_000_000
    p.discounting = 0.99
    config.redraw_tasks = True  # each finished episode draws a new task (64 tasks at a time else)
    if family == 'walker_param':
      # 16.4M steps (41 evals: 204.8k-step epochs as in the 8M run); the committed walker
      # continued it twice with --config.resume_from and was then picked by select_expert.py
      # (docs/locomotion.md has the commands).
      p.num_timesteps = 16_000_000
      p.num_evals = 41
    if family == 'hopper_param':
      config.train_episode_length = 1000  # states late in an episode get trained on
      p.discounting = 0.995
      # 24.6M steps (the committed run; at 8.19M it was too slow on the heaviest bodies). 61
      # evals keep Brax's 204.8k-step epochs, so its first 8.19M steps are the 8M run's exactly.
      p.num_timesteps = 24_000_000
      p.num_evals = 61
  else:
    raise ValueError(f'No expert preset for family {family!r}')
  return config
