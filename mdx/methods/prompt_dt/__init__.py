"""Prompt-DT (Xu et al., ICML 2022), the paper's decision-transformer baseline (Tables 1 and 2).

One stage, `prompt_dt` (behaviour cloning with task prompts, `train.py`); the policy
(`policy.py`) takes its prompt from the evaluated task's warm-start data of each tier.
`PromptDT-FT` (paper 004's baseline, `finetune.py`) is the same trained network fine-tuned on
that data in the policy's `init`, one copy per environment.
"""
import jax.numpy as jnp

from mdx.methods.base import Method, Stage
from mdx.methods.prompt_dt import data, finetune, model, policy, train

# What training reads of the config: `config.prompt_dt` less the knobs only the policies read.
TRAINED_FIELDS = ('prompt_dt',) + tuple(f'-prompt_dt.{f}'
                                        for f in policy.SWEEPABLE + policy.PROMPT_FIELDS
                                        + finetune.FINETUNE_FIELDS)
PROMPT_DT_STAGE = Stage(name=train.STAGE, train=train.train_prompt_dt,
                        num_train_steps=lambda config: config.prompt_dt.num_train_steps,
                        reads=TRAINED_FIELDS)


def with_prompt_tier(config, workdir, family, params: dict) -> dict:
  """`params` with `'prompt_data'` (`policy.load_prompt_tier`) where
  `config.prompt_dt.prompt_tier` is set: prompts from that tier, whatever tier is evaluated."""
  prompt_data = policy.load_prompt_tier(config, workdir, family)
  return params if prompt_data is None else {**params, 'prompt_data': prompt_data}


def make_policy(config, workdir, seed, family, *, traced: tuple[str, ...] = ()):
  """Prompt-DT of training seed `seed`; `traced` fields (of `policy.SWEEPABLE`) are read from
  `params['knobs']` (an evaluation sweep over target returns, tuned on validation tasks)."""
  params = with_prompt_tier(config, workdir, family, train.load_prompt_dt(config, workdir, seed,
                                                                         family))
  if traced:
    params = {**params, 'knobs': {f: jnp.asarray(config.prompt_dt[f], jnp.float32)
                                  for f in traced}}
  return policy.prompt_dt_policy(config, family, params)


PROMPT_DT = Method(name='PromptDT', make_policy=make_policy, stages=(PROMPT_DT_STAGE,),
                   uses_warm_start=True, sweepable=policy.SWEEPABLE,
                   description='a decision transformer prompted with the end of a warm-start '
                   'episode of the task')


def make_ft_policy(config, workdir, seed, family, *, traced: tuple[str, ...] = ()):
  """Prompt-DT-FT of training seed `seed`: `make_policy`'s network, fine-tuned per environment."""
  dt = make_policy(config, workdir, seed, family, traced=traced)
  return finetune.prompt_dt_ft_policy(config, family, dt.params)


PROMPT_DT_FT = Method(name='PromptDT-FT', make_policy=make_ft_policy, stages=(PROMPT_DT_STAGE,),
                      uses_warm_start=True, sweepable=policy.SWEEPABLE,
                      description='Prompt-DT with all its weights fine-tuned on the warm-start '
                      'data of the task (paper 004\'s Prompt-DT-FT)')

__all__ = ['PROMPT_DT', 'PROMPT_DT_FT', 'PROMPT_DT_STAGE', 'TRAINED_FIELDS', 'data', 'finetune',
           'model', 'policy', 'train', 'with_prompt_tier']
