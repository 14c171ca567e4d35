"""mdx: MetaDiffuser (Ni et al., ICML 2023) in JAX/Flax, on a platform for offline meta-RL methods.

The public API, flat. Subpackages follow the data flow: envs -> data -> nets/diffusion ->
planning -> training -> methods -> evaluation; `mdx.experts` holds the committed behaviour
policies of the locomotion families.
"""
from mdx.data import (DatasetError, Normalizer, Segments, Trajectories, behaviour_policy, collect,
                      init_normalizer, load, sample_segments, save)
from mdx.diffusion import SampleConfig, Schedule, denoising_loss, make_schedule, q_sample, sample
from mdx.envs import EnvState, PointRobot, Task, TaskFamily, family_from_config, make_family
from mdx.evaluation import Episodes, Policy, evaluate, rollout
from mdx.nets import ContextModel, TemporalUNet
from mdx.planning import GuideFn, PlanConfig, PlanOutput, plan, trajectory_objective
from mdx.training import TrainState
from mdx.methods import REGISTRY, get_method, load_policy  # pylint: disable=g-bad-import-order

__all__ = [
    'DatasetError', 'Normalizer', 'Segments', 'Trajectories', 'behaviour_policy', 'collect',
    'init_normalizer', 'load', 'sample_segments', 'save', 'SampleConfig', 'Schedule',
    'denoising_loss', 'make_schedule', 'q_sample', 'sample', 'EnvState', 'PointRobot', 'Task',
    'TaskFamily', 'family_from_config', 'make_family', 'Episodes', 'Policy', 'evaluate',
    'rollout', 'ContextModel', 'TemporalUNet', 'GuideFn', 'PlanConfig', 'PlanOutput', 'plan',
    'trajectory_objective', 'TrainState', 'REGISTRY', 'get_method', 'load_policy',
]
