"""Metric writers for the `jax_loop_utils` (CLU without TensorFlow) `MetricWriter` interface.

`create_writer(logdir)` writes every scalar to three places: the absl log (terminal), a JSON-lines
file `metrics.jsonl` (machine-readable: one `{"step": ..., "name": value}` object per write) and
TensorBoard event files (via tensorboardX, so no TensorFlow is needed).
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np
from jax_loop_utils import metric_writers
from jax_loop_utils.metric_writers import interface


class JsonlWriter(interface.MetricWriter):
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

  def write_images(self, step, images):
    pass

  def write_videos(self, step, videos):
    pass

  def write_audios(self, step, audios, *, sample_rate):
    pass

  def write_histograms(self, step, arrays, num_buckets=None):
    pass

  def flush(self):
    self._f.flush()

  def close(self):
    self._f.close()


class TensorBoardXWriter(interface.MetricWriter):
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

  def write_videos(self, step, videos):
    pass

  def write_audios(self, step, audios, *, sample_rate):
    pass

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


def create_writer(logdir: str, *, to_log: bool = True) -> interface.MetricWriter:
  """The log + `metrics.jsonl` + TensorBoard writer for a run's `logdir`."""
  writers = [JsonlWriter(os.path.join(logdir, 'metrics.jsonl')), TensorBoardXWriter(logdir)]
  if to_log:
    writers.insert(0, metric_writers.LoggingWriter())
  return metric_writers.MultiWriter(writers)
