"""Evaluation sweeps as data: `config.eval.sweep` text -> settings, their keys and folder tags.

A sweep varies planner settings that change no shapes (a method lists them in
`Method.sweepable`) as one more vmapped axis of one compiled evaluation (`mdx.evaluation`); a
setting of a trained field (a stage's `member_fields`, such as `diffusion.context_dropout`)
evaluates the stages of that training sweep's variant on the same axis.
"""
from __future__ import annotations

import copy
import itertools
import json


def parse_sweep(text: str) -> list[dict]:
  """`'dynamics_weight=0,0.5,1;guide_scale=0.1,0.2'` -> every combination as
  `[{'dynamics_weight': 0.0, 'guide_scale': 0.1}, ...]`; `''` -> `[{}]` (no sweep)."""
  fields = {}
  for part in filter(None, (p.strip() for p in text.split(';'))):
    name, sep, values = part.partition('=')
    if not sep or not values.strip():
      raise ValueError(f"eval.sweep: {part!r} is not 'field=v1,v2,...'")
    fields[name.strip()] = [float(v) for v in values.split(',')]
  return [dict(zip(fields, combo)) for combo in itertools.product(*fields.values())] or [{}]


def sweep_key(setting: dict) -> str:
  """The canonical JSON of a setting (`'{}'` when nothing is swept), a dictionary key."""
  return json.dumps(setting, sort_keys=True)


def record_setting(setting: dict) -> dict:
  """A setting as the results name it: each field by its last component
  (`{'diffusion.context_dropout': 0.2}` -> `{'context_dropout': 0.2}`)."""
  return {field.rsplit('.', 1)[-1]: value for field, value in setting.items()}


def sweep_tag(settings: list[dict]) -> str:
  """`'sweep-dynamics_weight'` for a sweep over `dynamics_weight` ('' without a sweep): a sweep's
  results go to their own folder, beside the split's main evaluation."""
  return 'sweep-' + '-'.join(settings[0]) if settings != [{}] else ''


def with_fields(config, setting: dict):
  """A copy of `config` with each dotted field of `setting` (`'diffusion.context_dropout'`) set;
  raises `ValueError` naming a field the config does not have."""
  out = copy.deepcopy(config)
  for field, value in setting.items():
    *path, leaf = field.split('.')
    node = out
    for key in path:
      if key not in node:
        raise ValueError(f'sweep: the config has no field {field!r}')
      node = node[key]
    if leaf not in node:
      raise ValueError(f'sweep: the config has no field {field!r}')
    old = node[leaf]
    if isinstance(old, int) and not isinstance(old, bool) and not float(value).is_integer():
      raise ValueError(f'sweep: {field} is an integer field, got {value}')
    node[leaf] = type(old)(value) if isinstance(old, (int, float)) else value
  return out
