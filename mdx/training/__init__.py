"""Training: `TrainState` with EMA, Orbax restore-or-init, metric writers, the shared loop, and the
two trainers (`train_context`, `train_diffusion`)."""
from mdx.training.loop import checkpoint_manager, latest_step, load_params, restore_or_init, train
from mdx.training.state import TrainState
from mdx.training.writers import JsonlWriter, TensorBoardXWriter, create_writer

__all__ = ['checkpoint_manager', 'latest_step', 'load_params', 'restore_or_init', 'train',
           'TrainState', 'JsonlWriter', 'TensorBoardXWriter', 'create_writer']
