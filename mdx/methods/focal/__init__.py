"""FOCAL (Li et al., ICLR 2021), the paper's distance-metric offline meta-RL baseline (Table 1).

One stage, `focal` (`train.py`: the encoder by the distance-metric loss, BRAC on the detached z);
the policy (`policy.py`) infers z from the evaluated task's warm-start data of each tier.
"""
from mdx.methods.base import Method, Stage
from mdx.methods.focal import losses, model, policy, train

FOCAL_STAGE = Stage(name=train.STAGE, train=train.train_focal,
                    num_train_steps=lambda config: config.focal.num_iterations, reads=('focal',))


def make_policy(config, workdir, seed, family):
  return policy.focal_policy(config, family, train.load_focal(config, workdir, seed, family))


FOCAL = Method(name='FOCAL', make_policy=make_policy, stages=(FOCAL_STAGE,),
               uses_warm_start=True,
               description='a distance-metric task encoder and BRAC on its detached embedding')

__all__ = ['FOCAL', 'losses', 'model', 'policy', 'train']
