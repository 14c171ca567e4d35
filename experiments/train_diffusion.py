"""Trains the context-conditioned denoiser (Eq. 5), or UDiffuser with --unconditional. Resumable.

  python experiments/train_diffusion.py --config=configs/point_robot.py:cpu --workdir=runs/demo
"""
import _common  # first: sets up logging before JAX loads
from absl import app, flags
from ml_collections import config_flags

from mdx.training import trainers

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder (needs WORKDIR/context).')
_UNCONDITIONAL = flags.DEFINE_bool('unconditional', False,
                                   'Train UDiffuser (beta = 1, no context) into WORKDIR/udiffuser.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  _common.setup()
  trainers.train_diffusion(_CONFIG.value, _WORKDIR.value, unconditional=_UNCONDITIONAL.value)


if __name__ == '__main__':
  app.run(main)
