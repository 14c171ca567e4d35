"""Metric writers for the `jax_loop_utils` (CLU without TensorFlow) `MetricWriter` interface.

`create_writer(logdir)` writes every scalar to three places: the absl log (terminal), a JSON-lines
file `metrics.jsonl` (machine-readable: one `{"step": ..., "name": value}` object per write) and
TensorBoard event files (via tensorboardX, so no TensorFlow is needed; `tensorboard --logdir
WORKDIR` shows them). With a Weights & Biases project (`config.wandb.project`, the optional extra
`pip install -e '.[wandb]'`) a fourth writer logs the same scalars to a wandb run.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Mapping, Optional

import numpy as np
from jax_loop_utils import metric_writers
from jax_loop_utils.metric_writers import interface


class _Writer(interface.MetricWriter):
  """A writer that ignores what it cannot show: images, videos, audio and histograms unless a
  subclass overrides them."""

  def write_images(self, step, images):
    pass

  def write_videos(self, step, videos):
    pass

  def write_audios(self, step, audios, *, sample_rate):
    pass

  def write_histograms(self, step, arrays, num_buckets=None):
    pass


class JsonlWriter(_Writer):
  """Appends `{"step": s, **scalars}` lines to `path`, flushed after every write."""

  def __init__(self, path: str):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    self._f = open(path, 'a', encoding='utf-8')

  def write_scalars(self, step: int, scalars: Mapping[str, Any]):
    record = {'step': int(step)}
    record.update({k: float(np.asarray(v)) for k, v in scalars.items()})
    self._f.write(json.dumps(record) + '\n')
    self._f.flush()

  def write_hparams(self, hparams: Mapping[str, Any]):
    self._f.write(json.dumps({'hparams': {k: str(v) for k, v in hparams.items()}}) + '\n')
    self._f.flush()

  def write_texts(self, step, texts):
    self._f.write(json.dumps({'step': int(step), 'texts': dict(texts)}) + '\n')

  def flush(self):
    self._f.flush()

  def close(self):
    self._f.close()


class TensorBoardXWriter(_Writer):
  """Scalars, images, texts and histograms to TensorBoard event files through tensorboardX."""

  def __init__(self, logdir: str):
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self._w = SummaryWriter(logdir)

  def write_scalars(self, step, scalars):
    for k, v in scalars.items():
      self._w.add_scalar(k, float(np.asarray(v)), int(step))

  def write_images(self, step, images):
    for k, v in images.items():
      self._w.add_image(k, np.asarray(v), int(step), dataformats='HWC')

  def write_texts(self, step, texts):
    for k, v in texts.items():
      self._w.add_text(k, v, int(step))

  def write_histograms(self, step, arrays, num_buckets=None):
    for k, v in arrays.items():
      self._w.add_histogram(k, np.asarray(v), int(step))

  def write_hparams(self, hparams):
    self._w.add_text('hparams', json.dumps({k: str(v) for k, v in hparams.items()}, indent=1))

  def flush(self):
    self._w.flush()

  def close(self):
    self._w.close()


class WandbWriter(_Writer):
  """Scalars, texts and hyperparameters to a Weights & Biases run (`wandb.init` with `dir=logdir`).

  The run's id is derived from `logdir`, so a resumed training run (restarted from its last
  checkpoint) continues the same wandb run. `mode='offline'` writes everything under
  `logdir/wandb/` with no network (upload later with `wandb sync`); 'online' needs a login.
  """

  def __init__(self, logdir: str, *, project: str, name: str = '', entity: str = '',
               mode: str = 'offline', group: str = ''):
    try:
      import wandb  # pylint: disable=g-import-not-at-top
    except ImportError as err:
      raise ImportError(
          f'config.wandb.project = {project!r} asks for a Weights & Biases writer, but wandb is '
          "not installed: pip install -c constraints.txt -e '.[wandb]' (or set "
          "config.wandb.project='')") from err
    if mode not in ('offline', 'online', 'disabled'):
      raise ValueError(f"config.wandb.mode: {mode!r} is not one of 'offline', 'online', "
                       "'disabled'")
    os.makedirs(logdir, exist_ok=True)
    run_id = 'mdx-' + hashlib.sha1(os.path.abspath(logdir).encode()).hexdigest()[:16]
    self._run = wandb.init(project=project, entity=entity or None, name=name or None,
                           group=group or None, dir=logdir, mode=mode, id=run_id,
                           resume='allow', reinit='create_new')

  @property
  def run(self):
    """The `wandb.Run`."""
    return self._run

  def write_scalars(self, step, scalars):
    self._run.log({k: float(np.asarray(v)) for k, v in scalars.items()}, step=int(step))

  def write_hparams(self, hparams):
    self._run.config.update({k: str(v) for k, v in hparams.items()}, allow_val_change=True)

  def write_texts(self, step, texts):
    self._run.log({k: str(v) for k, v in texts.items()}, step=int(step))

  def flush(self):
    pass

  def close(self):
    self._run.finish()


def create_writer(logdir: str, *, to_log: bool = True, wandb: Optional[Mapping] = None,
                  name: str = '') -> interface.MetricWriter:
  """The log + `metrics.jsonl` + TensorBoard writer for a run's `logdir`, and a `WandbWriter`
  when `wandb` (a config's `wandb` fields: project, entity, mode) names a project; `name` is
  the wandb run's name (the stage and seed), its group the run's workdir."""
  writers = [JsonlWriter(os.path.join(logdir, 'metrics.jsonl')), TensorBoardXWriter(logdir)]
  if to_log:
    writers.insert(0, metric_writers.LoggingWriter())
  if wandb and wandb.get('project'):
    writers.append(WandbWriter(logdir, project=wandb['project'], entity=wandb.get('entity', ''),
                               mode=wandb.get('mode', 'offline'), name=name,
                               group=os.path.dirname(os.path.dirname(os.path.abspath(logdir)))))
  return metric_writers.MultiWriter(writers)
