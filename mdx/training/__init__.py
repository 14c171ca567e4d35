"""Method-agnostic training machinery: `TrainState` with EMA, the Orbax restore-or-init loop,
checkpoint reading and metric writers. The stages themselves live with their method
(`mdx.methods.<name>`)."""
from mdx.training.checkpoints import (CheckpointMismatchError, CorruptCheckpointError,
                                      checkpoint_manager, latest_step, load_params)
from mdx.training.loop import (NonFiniteError, member, reporting, restore_or_init, stack_trees,
                               train, train_stack)
from mdx.training.state import TrainState, compiled_init
from mdx.training.writers import JsonlWriter, TensorBoardXWriter, create_writer

__all__ = ['CheckpointMismatchError', 'CorruptCheckpointError', 'NonFiniteError',
           'checkpoint_manager', 'latest_step', 'load_params', 'member', 'reporting',
           'restore_or_init', 'stack_trees', 'train', 'train_stack',
           'TrainState', 'compiled_init', 'JsonlWriter', 'TensorBoardXWriter', 'create_writer']
