"""Task families that step in-graph (`TaskFamily` contract) and the registry `make_family`."""
from mdx.envs.base import SPLITS, EnvState, Task, TaskFamily
from mdx.envs.point_robot import PointRobot

_FAMILIES = {'point_robot': PointRobot}


def register_family(name: str, cls) -> None:
  """Adds a family class to the registry used by `make_family` (configs name families by string)."""
  _FAMILIES[name] = cls


def make_family(name: str, **kwargs) -> TaskFamily:
  """Builds a registered family by name; `kwargs` override its static fields."""
  if name not in _FAMILIES:
    _maybe_register_locomotion()
  if name not in _FAMILIES:
    raise ValueError(f'Unknown family {name!r}; known: {sorted(_FAMILIES)}')
  return _FAMILIES[name](**kwargs)


def family_from_config(config) -> TaskFamily:
  """The family a config names (`config.family`), with its static fields `config.env`."""
  return make_family(config.family, **dict(config.env))


def _maybe_register_locomotion() -> None:
  try:
    from mdx.envs import locomotion  # pylint: disable=g-import-not-at-top
  except ImportError:
    return
  for name, cls in getattr(locomotion, 'FAMILIES', {}).items():
    _FAMILIES.setdefault(name, cls)


__all__ = ['SPLITS', 'family_from_config', 'EnvState', 'Task', 'TaskFamily', 'PointRobot', 'make_family', 'register_family']
