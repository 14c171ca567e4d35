"""The registry of methods: `{name: Method}`. Adding a method is one line here and a package.

  from mdx import methods
  policy = methods.load_policy(config, 'runs/demo')           # MetaDiffuser of training seed 0
  state = policy.init(rng, tasks, warm_start)
  action, state, info = policy.act(state, obs, rng)
"""
from __future__ import annotations

from typing import Optional

from mdx.envs import TaskFamily, family_from_config
from mdx.evaluation.policy import Policy
from mdx.methods import (corro, cvae_planner, focal, metadiffuser, mtdiff, oracle,
                         prompt_diffuser, prompt_dt, random)
from mdx.methods.base import Method, Stage

REGISTRY: dict[str, Method] = {m.name: m for m in (
    metadiffuser.METADIFFUSER,
    metadiffuser.NO_GUIDE,
    metadiffuser.OURS_GT,
    metadiffuser.OURS_CORRO,
    metadiffuser.UDIFFUSER,
    cvae_planner.CVAE_PLANNER,
    prompt_dt.PROMPT_DT,
    prompt_dt.PROMPT_DT_FT,
    mtdiff.MTDIFF_P,
    prompt_diffuser.PROMPT_DIFFUSER,
    focal.FOCAL,
    corro.CORRO,
    oracle.ORACLE,
    random.RANDOM,
)}


def get_method(name: str) -> Method:
  """The registered method `name`; raises `ValueError` listing the known ones."""
  if name not in REGISTRY:
    raise ValueError(f'unknown method {name!r}; registered: {sorted(REGISTRY)}')
  return REGISTRY[name]


def load_policy(config, workdir: str, method: str = 'MetaDiffuser', *, seed: Optional[int] = None,
                family: Optional[TaskFamily] = None) -> Policy:
  """A trained method of `workdir` as a ready `Policy` (training seed `seed`, default the
  config's first `train_seeds`), built exactly as the evaluation builds it."""
  family = family or family_from_config(config)
  seed = config.train_seeds[0] if seed is None else seed
  return get_method(method).make_policy(config, workdir, seed, family)


__all__ = ['REGISTRY', 'Method', 'Stage', 'get_method', 'load_policy']
