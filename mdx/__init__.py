"""mdx: MetaDiffuser (Ni et al., ICML 2023) in JAX/Flax.

The public API, flat. Subpackages follow the data flow: envs -> data -> nets/diffusion ->
training -> planning -> evaluation.
"""
from mdx.data import (DatasetError, Normalizer, Segments, Trajectories, collect, init_normalizer,
                      load, make_policy, sample_segments, save)
from mdx.diffusion import Schedule, denoising_loss, make_schedule, q_sample
from mdx.envs import EnvState, PointRobot, Task, TaskFamily, make_family
from mdx.nets import ContextModel, TemporalUNet
from mdx.planning import GuideFn, PlanConfig, PlanOutput, plan, trajectory_objective
from mdx.training import TrainState

__all__ = [
    'DatasetError', 'Normalizer', 'Segments', 'Trajectories', 'collect', 'init_normalizer', 'load',
    'make_policy', 'sample_segments', 'save', 'Schedule', 'denoising_loss', 'make_schedule',
    'q_sample', 'EnvState', 'PointRobot', 'Task', 'TaskFamily', 'make_family', 'ContextModel',
    'TemporalUNet', 'GuideFn', 'PlanConfig', 'PlanOutput', 'plan', 'trajectory_objective',
    'TrainState',
]
