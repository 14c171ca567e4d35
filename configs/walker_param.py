"""Walker-Param: Walker2d (Brax, MJX with elliptic friction cones), dynamics randomized as in
Hopper-Param; the presets are `hopper_param.py`'s with the walker's beta (0.2) and lambda (2).

  python experiments/pipeline.py --config=configs/walker_param.py:cpu --workdir=runs/walker_param
"""
import ml_collections

from configs import hopper_param


def get_config(preset: str = 'cpu') -> ml_collections.ConfigDict:
  return hopper_param.get_config(preset, family='walker_param')
