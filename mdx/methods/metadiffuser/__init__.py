"""MetaDiffuser (Ni et al., ICML 2023) and its ablation UDiffuser (Table 5).

Stages (per training seed): `context` (E_phi, R_psi, P_omega; Eq. 1), then `diffusion` (the
context-conditioned denoiser; Eq. 5). UDiffuser has one stage, `udiffuser` (beta = 1, no
context). Policies: `policy.make_policy` and `policy.make_udiffuser_policy`.
"""
from mdx.methods.base import Method, Stage
from mdx.methods.metadiffuser import context, denoiser, figure3, policy

CONTEXT_STAGE = Stage(name=context.STAGE, train=context.train_context,
                      num_train_steps=lambda config: config.context.num_train_steps,
                      reads=('context',))
DIFFUSION_STAGE = Stage(name=denoiser.STAGE, train=denoiser.train_denoiser,
                        num_train_steps=lambda config: config.diffusion.num_train_steps,
                        reads=('context', 'diffusion'), after=(context.STAGE,))
# UDiffuser samples the same segments (history windows included) but has no encoder.
_SEGMENT_FIELDS = ('context.history', 'context.num_context', 'context.tiers',
                   'context.context_dim')
UDIFFUSER_STAGE = Stage(
    name=denoiser.UNCONDITIONAL_STAGE,
    train=lambda config, workdir, seed: denoiser.train_denoiser(config, workdir, seed,
                                                                unconditional=True),
    num_train_steps=lambda config: config.udiffuser.num_train_steps,
    reads=_SEGMENT_FIELDS + ('diffusion', 'udiffuser'))

METADIFFUSER = Method(name='MetaDiffuser', make_policy=policy.make_policy,
                      stages=(CONTEXT_STAGE, DIFFUSION_STAGE), uses_warm_start=True,
                      sweepable=policy.SWEEPABLE,
                      analyses=(figure3.plan_vs_reached,),
                      description='context-conditioned diffusion planning with the dual guide')
UDIFFUSER = Method(name='UDiffuser', make_policy=policy.make_udiffuser_policy,
                   stages=(UDIFFUSER_STAGE,),
                   description='MetaDiffuser without a context: an unconditional diffusion planner')

__all__ = ['METADIFFUSER', 'UDIFFUSER', 'context', 'denoiser', 'figure3', 'policy']
