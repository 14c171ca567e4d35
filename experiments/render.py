"""Renders an episode of a locomotion family as a GIF, the kept plan drawn as a translucent ghost
(`mdx.evaluation.video`; headless MuJoCo through EGL).

  # any saved episode (an evaluation writes eval/<split>/video_<method>.npz):
  python experiments/render.py --episode=runs/walker_param/eval/test/video_MetaDiffuser.npz \
      --out=walker.gif [--lead=2] [--width=480 --height=360] [--every=1]
  # record one episode of a trained method first (WORKDIR/videos/<split>_<method>_task<k>.npz):
  python experiments/render.py --config=configs/walker_param.py:cpu \
      --workdir=runs/walker_param --method=MetaDiffuser --split=test --task=3
"""
import os

import _common  # first: sets up logging before JAX loads
from absl import app, flags
from ml_collections import config_flags

from mdx.evaluation import video

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path:preset), to '
                                          'record an episode.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Trained run folder, to record an episode.')
_METHOD = flags.DEFINE_string('method', 'MetaDiffuser', 'Registered method to record.')
_SPLIT = flags.DEFINE_enum('split', 'test', ['validation', 'test'], 'Split of the task.')
_TASK = flags.DEFINE_integer('task', 0, 'Task index in the split.')
_TIER = flags.DEFINE_enum('tier', 'expert', ['expert', 'medium', 'random'], 'Warm-start tier.')
_EPISODE = flags.DEFINE_string('episode', '', 'A saved episode (.npz) to render.')
_OUT = flags.DEFINE_string('out', '', 'GIF to write (default: beside the episode file).')
_LEAD = flags.DEFINE_integer('lead', 0, 'The ghost shows the plan made this many steps earlier '
                             '(0: H - 1).')
_WIDTH = flags.DEFINE_integer('width', 320, 'Frame width (pixels).')
_HEIGHT = flags.DEFINE_integer('height', 240, 'Frame height (pixels).')
_EVERY = flags.DEFINE_integer('every', 2, 'Render every n-th step (the GIF stays real-time).')


def main(argv):
  del argv
  _common.setup()
  if bool(_EPISODE.value) == bool(_WORKDIR.value):
    raise app.UsageError('give --episode=PATH.npz, or --config and --workdir to record one')
  path = _EPISODE.value
  if not path:
    from mdx import methods  # pylint: disable=g-import-not-at-top
    from mdx.envs import family_from_config  # pylint: disable=g-import-not-at-top
    config = _CONFIG.value
    if config is None:
      raise app.UsageError('--workdir needs --config (the run\'s config and preset)')
    family = family_from_config(config)
    episode = video.record_episode(config, _WORKDIR.value, methods.get_method(_METHOD.value),
                                   family, _SPLIT.value, task_index=_TASK.value, tier=_TIER.value)
    os.makedirs(os.path.join(_WORKDIR.value, 'videos'), exist_ok=True)
    path = os.path.join(_WORKDIR.value, 'videos',
                        f'{_SPLIT.value}_{_METHOD.value}_task{_TASK.value}.npz')
    video.save_episode(path, episode)
    print(f'[render] episode: {path} (return {episode["meta"]["return"]:.1f})', flush=True)
  episode = video.load_episode(path)
  out = _OUT.value or os.path.splitext(path)[0] + '.gif'
  frames = video.render_gif(out, episode, width=_WIDTH.value, height=_HEIGHT.value,
                            lead=_LEAD.value, every=_EVERY.value)
  print(f'[render] {out}: {frames} frames', flush=True)


if __name__ == '__main__':
  app.run(_common.clear_errors(main))
