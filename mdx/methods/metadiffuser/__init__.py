"""MetaDiffuser (Ni et al., ICML 2023) and its ablation UDiffuser (Table 5).

Stages (per training seed): `context` (E_phi, R_psi, P_omega; Eq. 1), then `diffusion` (the
context-conditioned denoiser; Eq. 5). UDiffuser has one stage, `udiffuser` (beta = 1, no
context). Policies: `policy.make_policy` and `policy.make_udiffuser_policy`.
"""
from mdx.methods import corro
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
                        steps_field='diffusion.num_train_steps',  # a constant learning rate
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
    steps_field='udiffuser.num_train_steps',
    # The denoiser's fields but its step count (UDiffuser's is `udiffuser.num_train_steps`).
    reads=_SEGMENT_FIELDS + ('diffusion', '-diffusion.num_train_steps', 'udiffuser'))

METADIFFUSER = Method(name='MetaDiffuser', make_policy=policy.make_policy,
                      stages=(CONTEXT_STAGE, DIFFUSION_STAGE), uses_warm_start=True,
                      sweepable=policy.SWEEPABLE,
                      analyses=(figure3.plan_vs_reached,),
                      description='context-conditioned diffusion planning with the dual guide')


def given_context_stages(source: str, *, reads: tuple[str, ...] = (),
                         upstream: tuple[str, ...] = ()) -> tuple[Stage, Stage]:
  """The context-model and denoiser stages of MetaDiffuser with a given context `source`
  ('gt', 'corro'): R and P trained on it, the denoiser conditioned on it. `reads`: the config
  fields of the context's producer; `upstream`: its stages. A seed-dependent source (CORRO's
  encoder) trains its context model one seed at a time (no stack)."""
  ctx = Stage(
      name=context.STAGES[source],
      train=lambda config, workdir, seed: context.train_context(config, workdir, seed,
                                                                source=source),
      train_stack=(None if source == 'corro' else
                   lambda members: context.train_context_stack(members, source=source)),
      num_train_steps=lambda config: config.context.num_train_steps,
      reads=('context',) + reads, after=upstream)
  den = Stage(
      name=denoiser.STAGES[source],
      train=lambda config, workdir, seed: denoiser.train_denoiser(config, workdir, seed,
                                                                  source=source),
      train_stack=lambda members: denoiser.train_denoiser_stack(members, source=source),
      num_train_steps=lambda config: config.diffusion.num_train_steps,
      steps_field='diffusion.num_train_steps',
      reads=('context', 'diffusion') + reads, after=upstream + (ctx.name,))
  return ctx, den


GT_CONTEXT_STAGE, GT_DIFFUSION_STAGE = given_context_stages('gt')
# Table 3's upper reference: the true task parameters as the context, everywhere.
OURS_GT = Method(name='Ours+GT', make_policy=policy.make_gt_policy,
                 stages=(GT_CONTEXT_STAGE, GT_DIFFUSION_STAGE), sweepable=policy.SWEEPABLE,
                 description='MetaDiffuser with the true task parameters as its context')

# Table 3's Ours+CORRO: CORRO's frozen encoder (its stages corro_cvae and corro_encoder) gives z;
# R and P are trained on it (corro_context), the denoiser is conditioned on it (corro_diffusion).
CORRO_CONTEXT_STAGE, CORRO_DIFFUSION_STAGE = given_context_stages(
    'corro', reads=corro.ENCODER_FIELDS, upstream=(corro.train.ENCODER_STAGE,))
OURS_CORRO = Method(name='Ours+CORRO', make_policy=policy.make_corro_policy,
                    stages=(corro.CVAE_STAGE, corro.ENCODER_STAGE, CORRO_CONTEXT_STAGE,
                            CORRO_DIFFUSION_STAGE), uses_warm_start=True,
                    sweepable=policy.SWEEPABLE,
                    description='MetaDiffuser with CORRO\'s frozen contrastive encoder as its '
                    'context')


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

__all__ = ['METADIFFUSER', 'NO_GUIDE', 'OURS_CORRO', 'OURS_GT', 'UDIFFUSER', 'context', 'denoiser', 'figure3', 'policy']
