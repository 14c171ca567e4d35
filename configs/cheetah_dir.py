"""Cheetah-Dir: HalfCheetah (Brax) running forward or backward, 200-step episodes; its two tasks
are the training, validation and test split (the paper's protocol).

Presets (`base.locomotion_config`): `paper` (the paper's hyperparameters, for a GPU), `cpu` (fits
a 2-core machine), `test` (seconds). The expert and medium behaviour policies are the committed
Brax-PPO checkpoints in mdx/experts (docs/locomotion.md).

  python experiments/pipeline.py --config=configs/cheetah_dir.py:cpu --workdir=runs/cheetah_dir
"""
import ml_collections

from configs import base


def get_config(preset: str = 'cpu') -> ml_collections.ConfigDict:
  config = base.locomotion_config(
      preset, 'cheetah_dir',
      history=10,  # h (paper: 10 for the reward-change families)
      horizon=16,  # H (paper: 16 for Cheetah-Dir)
      context_dropout=0.0,  # beta (paper, Table 6: 0 for Cheetah-Dir)
      dynamics_weight=0.5,  # lambda (paper, Table 4: 0.5 for Cheetah-Dir)
      paper_dim_mults=(1, 4, 8))  # Diffuser's HalfCheetah U-Net
  # With beta = 0 the null context is never trained, so CFG has no unconditional branch to use.
  config.planner.cfg_weight = 1.0
  if preset == 'cpu':
    # As many training transitions as the other families' `cpu` data (Cheetah-Vel: 30 tasks x 8
    # episodes): with the shared 4 / 2 / 2 episodes per task, Cheetah-Dir's 2 tasks gave the
    # denoiser 8 expert episodes, and its plans were far from reachable (results/cheetah_dir).
    config.data.train_episodes = {'expert': 60, 'medium': 30, 'random': 30}
  return config
