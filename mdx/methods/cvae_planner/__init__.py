"""CVAE-Planner (the paper's Table 5 ablation; architecture mdx's, the paper gives none).

MetaDiffuser's pipeline with the conditional diffusion model replaced by a conditional VAE: the
same context z (MetaDiffuser's trained `context` stage), the same H-step state-action plans,
the same receding-horizon loop, candidates scored by the same J - lambda zeta with MetaDiffuser's
reward and dynamics models. One stage of its own, `cvae` (`train.py`); the policy in `policy.py`.
"""
from mdx.methods.base import Method, Stage
from mdx.methods.cvae_planner import policy, train
from mdx.methods.metadiffuser import CONTEXT_STAGE

CVAE_STAGE = Stage(name=train.STAGE, train=train.train_cvae,
                   num_train_steps=lambda config: config.cvae.num_train_steps,
                   reads=('context', 'diffusion.horizon', 'diffusion.tiers',
                          'diffusion.action_weight', 'cvae'),
                   after=(CONTEXT_STAGE.name,))

CVAE_PLANNER = Method(name='CVAE-Planner', make_policy=policy.make_policy,
                      stages=(CONTEXT_STAGE, CVAE_STAGE), uses_warm_start=True,
                      description='MetaDiffuser with a conditional VAE in place of the diffusion '
                      'model (mdx design)')

__all__ = ['CVAE_PLANNER', 'policy', 'train']
