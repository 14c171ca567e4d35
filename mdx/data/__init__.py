"""Behaviour policies, in-graph collection, storage with validation, sampling and normalization."""
from mdx.data.collect import collect, collect_datasets, episode, load_dataset
from mdx.data.normalizer import (Normalizer, init_normalizer, load_normalizer, normalize_act,
                                 normalize_obs, save_normalizer,
                                 normalize_rew, normalize_traj, unnormalize_act, unnormalize_obs,
                                 unnormalize_rew, unnormalize_traj)
from mdx.data.policies import TIERS, BehaviourFn, behaviour_policy
from mdx.data.sampler import (Segments, Transitions, sample_context, sample_segments,
                              sample_transitions, transition_rows)
from mdx.data.trajectories import (DatasetError, Trajectories, concat_episodes, exists, load, save,
                                   validate)

__all__ = [
    'collect', 'collect_datasets', 'episode', 'load_dataset', 'Normalizer', 'init_normalizer', 'load_normalizer', 'save_normalizer', 'normalize_act', 'normalize_obs',
    'normalize_rew', 'normalize_traj', 'unnormalize_act', 'unnormalize_obs', 'unnormalize_rew',
    'unnormalize_traj', 'TIERS', 'BehaviourFn', 'behaviour_policy', 'Segments', 'sample_context',
    'sample_segments', 'sample_transitions', 'Transitions', 'transition_rows', 'DatasetError', 'Trajectories', 'concat_episodes', 'exists', 'load', 'save',
    'validate',
]
