"""Offline actor-critic learners over fixed transitions, for the TD-learning baselines: SAC with
twin critics (CORRO) and BRAC with a dual KL critic and a learned penalty (FOCAL). Pure
functions on `Batch`es; `make_train_step` scans many updates per compiled call."""
from mdx.rl.brac import BRACConfig, BRACState, brac_update, init_brac, kl_dual_estimate
from mdx.rl.loop import make_train_step
from mdx.rl.networks import TanhGaussianPolicy, TwinQ, sample_tanh_gaussian
from mdx.rl.sac import Batch, SACConfig, SACState, init_sac, policy_mode, sac_update

__all__ = ['BRACConfig', 'BRACState', 'brac_update', 'init_brac', 'kl_dual_estimate',
           'make_train_step', 'TanhGaussianPolicy', 'TwinQ', 'sample_tanh_gaussian', 'Batch',
           'SACConfig', 'SACState', 'init_sac', 'policy_mode', 'sac_update']
