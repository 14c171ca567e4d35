"""MTDiff-P (He et al., NeurIPS 2023, "Diffusion Model is an Effective Planner and Data Synthesizer
for Multi-Task Reinforcement Learning"; code `tinnerhrhe/MTDiff`): a transformer diffusion model
over action sequences, conditioned on a demonstration prompt of the task, the last L states and a
return (with CFG on the return), used as a multi-task planner that executes the first action.

One stage, `mtdiff` (`train.py`); the policy (`policy.py`) takes its prompt from the evaluated
task's warm-start data of each tier, as Prompt-DT does.
"""
import jax.numpy as jnp

from mdx.methods.base import Method, Stage
from mdx.methods.mtdiff import data, policy, train

MTDIFF_STAGE = Stage(name=train.STAGE, train=train.train_mtdiff,
                     num_train_steps=lambda config: config.mtdiff.num_train_steps,
                     reads=('mtdiff',) + tuple(f'-mtdiff.{f}' for f in policy.SAMPLER_FIELDS))


def make_policy(config, workdir, seed, family, *, traced: tuple[str, ...] = ()):
  """MTDiff-P of training seed `seed`; `traced` fields (of `policy.SWEEPABLE`) are read from
  `params['knobs']` (an evaluation sweep over the CFG weight, tuned on validation tasks)."""
  params = train.load_mtdiff(config, workdir, seed, family)
  if traced:
    params = {**params, 'knobs': {f: jnp.asarray(config.mtdiff[f], jnp.float32) for f in traced}}
  return policy.mtdiff_policy(config, family, params)


MTDIFF_P = Method(name='MTDiff-P', make_policy=make_policy, stages=(MTDIFF_STAGE,),
                  uses_warm_start=True, sweepable=policy.SWEEPABLE,
                  description='a transformer diffusion planner of action sequences prompted '
                  'with a demonstration of the task')

__all__ = ['MTDIFF_P', 'data', 'policy', 'train']
