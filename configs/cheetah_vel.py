"""Cheetah-Vel: HalfCheetah (Brax) with a target velocity ~ U[0, 3] per task, 200-step episodes.

Presets (`base.locomotion_config`): `paper` (the paper's hyperparameters, for a GPU), `cpu` (fits
a 2-core machine), `test` (seconds: 20-step episodes, tiny networks). The expert and medium
behaviour policies are the committed Brax-PPO checkpoints in mdx/experts (see
docs/locomotion.md).

  python experiments/pipeline.py --config=configs/cheetah_vel.py:cpu --workdir=runs/cheetah_vel
"""
import ml_collections

from configs import base


def get_config(preset: str = 'cpu') -> ml_collections.ConfigDict:
  return base.locomotion_config(
      preset, 'cheetah_vel',
      history=10,  # h (paper: 10 for the reward-change families)
      horizon=16,  # H (paper: 16 for Cheetah-Vel)
      context_dropout=0.3,  # beta (paper, Table 6: 0.3 for Cheetah-Vel)
      dynamics_weight=1.0,  # lambda (paper, Table 4: 1 for Cheetah-Vel)
      paper_dim_mults=(1, 4, 8))  # Diffuser's HalfCheetah U-Net
