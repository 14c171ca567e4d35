"""CORRO (Yuan and Lu, ICML 2022), the paper's contrastive offline meta-RL baseline (Table 1).

Stages: `corro_cvae` (the negative generator), `corro_encoder` (InfoNCE with generated
negatives), `corro_sac` (offline SAC on the aggregated embedding); `train.py` has the details.
The policy (`policy.py`) infers z from one warm-start episode of the evaluated tier.
"""
from mdx.methods.base import Method, Stage
from mdx.methods.corro import losses, model, policy, train

# The fields each stage reads (its stale-output check compares them): changing SAC's settings
# keeps the trained CVAE and encoder.
CVAE_FIELDS = tuple('corro.' + f for f in (
    'cvae_hidden', 'cvae_latent_dim', 'cvae_beta', 'cvae_learning_rate', 'cvae_batch',
    'cvae_num_calls', 'updates_per_call', 'tiers'))
ENCODER_FIELDS = CVAE_FIELDS[:2] + tuple('corro.' + f for f in (
    'encoder_hidden', 'latent_dim', 'num_negatives', 'temperature', 'encoder_learning_rate',
    'encoder_batch', 'encoder_num_calls', 'updates_per_call', 'tiers', 'negatives',
    'reward_std'))
CVAE_STAGE = Stage(name=train.CVAE_STAGE, train=train.train_cvae,
                   num_train_steps=lambda config: config.corro.cvae_num_calls, reads=CVAE_FIELDS)
ENCODER_STAGE = Stage(name=train.ENCODER_STAGE, train=train.train_encoder,
                      num_train_steps=lambda config: config.corro.encoder_num_calls,
                      reads=ENCODER_FIELDS, after=(train.CVAE_STAGE,))
SAC_STAGE = Stage(name=train.SAC_STAGE, train=train.train_sac,
                  num_train_steps=lambda config: config.corro.sac_num_calls, reads=('corro',),
                  after=(train.ENCODER_STAGE,),
                  # constant learning rates and step keys: --extend trains on to a raised count
                  steps_field='corro.sac_num_calls')


def make_policy(config, workdir, seed, family):
  return policy.corro_policy(config, family, train.load_corro(config, workdir, seed, family))


CORRO = Method(name='CORRO', make_policy=make_policy,
               stages=(CVAE_STAGE, ENCODER_STAGE, SAC_STAGE), uses_warm_start=True,
               description='a contrastive transition encoder with generated negatives, and '
               'offline SAC on its aggregated embedding')

__all__ = ['CORRO', 'losses', 'model', 'policy', 'train']
