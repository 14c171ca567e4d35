"""MetaDiffuser (Ni et al., ICML 2023) and its ablation UDiffuser (Table 5).

Stages (per training seed): `context` (E_phi, R_psi, P_omega; Eq. 1), then `diffusion` (the
context-conditioned denoiser; Eq. 5). UDiffuser has one stage, `udiffuser` (beta = 1, no
context). Policies: `policy.make_policy` and `policy.make_udiffuser_policy`.
"""
from mdx.methods.base import Method, Stage
from mdx.methods.metadiffuser import context, denoiser, figure3, policy

CONTEXT_STAGE = Stage(name=context.STAGE, train=context.train_context,
                      train_stack=context.train_context_stack,
                      num_train_steps=lambda config: config.context.num_train_steps,
                      reads=('context',))
DIFFUSION_STAGE = Stage(name=denoiser.STAGE, train=denoiser.train_denoiser,
                        train_stack=denoiser.train_denoiser_stack,
                        member_fields=denoiser.MEMBER_FIELDS,
                        num_train_steps=lambda config: config.diffusion.num_train_steps,
                        reads=('context', 'diffusion'), after=(context.STAGE,))
# UDiffuser samples the same segments (history windows included) but has no encoder.
_SEGMENT_FIELDS = ('context.history', 'context.num_context', 'context.tiers',
                   'context.context_dim')
UDIFFUSER_STAGE = Stage(
    name=denoiser.UNCONDITIONAL_STAGE,
    train=lambda config, workdir, seed: denoiser.train_denoiser(config, workdir, seed,
                                                                unconditional=True),
    train_stack=lambda members: denoiser.train_denoiser_stack(members, unconditional=True),
    num_train_steps=lambda config: config.udiffuser.num_train_steps,
    reads=_SEGMENT_FIELDS + ('diffusion', 'udiffuser'))

METADIFFUSER = Method(name='MetaDiffuser', make_policy=policy.make_policy,
                      stages=(CONTEXT_STAGE, DIFFUSION_STAGE), uses_warm_start=True,
                      sweepable=policy.SWEEPABLE,
                      analyses=(figure3.plan_vs_reached,),
                      description='context-conditioned diffusion planning with the dual guide')
GT_CONTEXT_STAGE = Stage(
    name=context.GT_STAGE,
    train=lambda config, workdir, seed: context.train_context(config, workdir, seed, gt=True),
    train_stack=lambda members: context.train_context_stack(members, gt=True),
    num_train_steps=lambda config: config.context.num_train_steps, reads=('context',))
GT_DIFFUSION_STAGE = Stage(
    name=denoiser.GT_STAGE,
    train=lambda config, workdir, seed: denoiser.train_denoiser(config, workdir, seed, gt=True),
    train_stack=lambda members: denoiser.train_denoiser_stack(members, gt=True),
    num_train_steps=lambda config: config.diffusion.num_train_steps,
    reads=('context', 'diffusion'), after=(context.GT_STAGE,))
# Table 3's upper reference: the true task parameters as the context, everywhere.
OURS_GT = Method(name='Ours+GT', make_policy=policy.make_gt_policy,
                 stages=(GT_CONTEXT_STAGE, GT_DIFFUSION_STAGE), sweepable=policy.SWEEPABLE,
                 description='MetaDiffuser with the true task parameters as its context')


def _no_guide_policy(config, workdir, seed, family):
  return policy.make_policy(config, workdir, seed, family, guide_scale=0.0, num_candidates=1)


# The ablation that separates what the context does from what the dual guide does (issue 13):
# the same trained stages, CFG only, one plan per state.
NO_GUIDE = Method(name='MetaDiffuser-NoGuide', make_policy=_no_guide_policy,
                  stages=(CONTEXT_STAGE, DIFFUSION_STAGE), uses_warm_start=True,
                  description='MetaDiffuser without the dual guide: CFG only, one candidate')
UDIFFUSER = Method(name='UDiffuser', make_policy=policy.make_udiffuser_policy,
                   stages=(UDIFFUSER_STAGE,),
                   description='MetaDiffuser without a context: an unconditional diffusion planner')

__all__ = ['METADIFFUSER', 'NO_GUIDE', 'OURS_GT', 'UDIFFUSER', 'context', 'denoiser', 'figure3', 'policy']
