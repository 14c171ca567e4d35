"""The errors by which mdx refuses bad input or damaged outputs, all in one place; the binaries
print them as one message (no traceback) and exit with status 1."""
from mdx.config_check import ConfigError
from mdx.data.trajectories import DatasetError
from mdx.provenance import StaleStageError
from mdx.training.checkpoints import CheckpointMismatchError, CorruptCheckpointError
from mdx.training.loop import NonFiniteError
from mdx.workdir import WorkdirLockedError

KNOWN = (ConfigError, DatasetError, StaleStageError, CheckpointMismatchError,
         CorruptCheckpointError, NonFiniteError, WorkdirLockedError, FloatingPointError)

__all__ = ['KNOWN', 'ConfigError', 'DatasetError', 'StaleStageError', 'CheckpointMismatchError',
           'CorruptCheckpointError', 'NonFiniteError', 'WorkdirLockedError']
