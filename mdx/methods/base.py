"""What a method offers the platform: its training stages and a policy constructor.

A method is a package `mdx/methods/<name>/` that defines one or more `Method` values and is listed
in the registry (`mdx/methods/__init__.py`, one line). The generic code (`mdx.evaluation`,
`experiments/train.py`, `experiments/evaluate.py`, `experiments/pipeline.py`) calls only this
interface, so adding a method touches no shared file but the registry.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

import ml_collections

from mdx.envs import TaskFamily
from mdx.evaluation.policy import Policy

Config = ml_collections.ConfigDict
DATA_FIELDS = ('family', 'env', 'seed', 'data')  # what the collected datasets depend on


@dataclasses.dataclass(frozen=True)
class Stage:
  """One training stage, run per training seed into `WORKDIR/seed_{s}/{name}/`."""
  name: str  # its folder; methods that share a stage (the same name) train it once
  train: Callable[[Config, str, int], Any]  # (config, workdir, seed) -> anything; resumable
  num_train_steps: Callable[[Config], int]  # the stage is complete at this checkpoint step
  # The config fields it reads, as prefixes ('context' or 'context.history'): its record
  # (`mdx.provenance`) compares them on every rerun; a prefix marked '-' excepts fields under
  # another ('-diffusion.num_train_steps'). Data fields ('family', 'env', 'seed', 'data') are
  # always included.
  reads: tuple[str, ...] = ()
  after: tuple[str, ...] = ()  # the stages (of the same seed) whose outputs it loads
  # Optional: `([(config, workdir, seed), ...]) -> anything` trains the members as one vmapped
  # stack, each writing what `train(config, workdir, seed)` writes (`mdx.training.train_stack`);
  # the configs may differ only where the stage allows (a training sweep's variants).
  train_stack: Optional[Callable[[Sequence[tuple[Config, str, int]]], Any]] = None
  # The config fields (dotted) in which a stack's members may differ: a training sweep over them
  # (`experiments/train.py --sweep`) trains this stage for every setting in one stack.
  member_fields: tuple[str, ...] = ()
  # The dotted config field of its step count, for a stage whose training reads that count
  # nowhere else (a constant learning rate, step keys `fold_in(rng, step)`): `--extend` trains
  # such a finished stage on to a raised count (`mdx.provenance.check_stage`). None: not offered.
  steps_field: Optional[str] = None

  def __post_init__(self):
    object.__setattr__(self, 'reads', DATA_FIELDS + tuple(self.reads))


@dataclasses.dataclass(frozen=True)
class Method:
  """A method: its stages (in order) and `make_policy(config, workdir, seed, family)`.

  `make_policy` loads what the stages of training seed `seed` wrote and returns a ready
  `Policy`; methods without stages (Oracle, Random) ignore `workdir` and `seed`.
  `uses_warm_start`: the policy reads the task's warm-start data, so the evaluation runs it once
  per warm-start tier (the paper's Tables 1 and 2); otherwise once, in the column 'n/a'.
  `analyses`: extra outputs `(config, workdir, split, out_dir) -> None` that evaluation runs after
  the returns are written (MetaDiffuser's Figure-3 replay).
  """
  name: str
  make_policy: Callable[[Config, str, int, TaskFamily], Policy]
  stages: tuple[Stage, ...] = ()
  uses_warm_start: bool = False
  analyses: tuple[Callable[[Config, str, str, str], None], ...] = ()
  description: str = ''
  # Knobs an evaluation sweep may vary in one program (fields of `config.planner`, or of the
  # method's own section, such as Prompt-DT's `target_return`): called with
  # `make_policy(..., traced=fields)`, the policy reads them from `params['knobs'][field]`.
  sweepable: tuple[str, ...] = ()

  @property
  def trained_fields(self) -> tuple[str, ...]:
    """The config fields (dotted) of a training sweep over its stages (their `member_fields`):
    an evaluation sweep over them evaluates each variant's stages in the same program."""
    return tuple(dict.fromkeys(f for s in self.stages for f in s.member_fields))

  @property
  def sweep_fields(self) -> tuple[str, ...]:
    """Everything an evaluation sweep of this method may vary: its knobs and trained fields."""
    return self.sweepable + self.trained_fields
