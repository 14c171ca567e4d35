"""The one module that knows a run folder's layout.

  WORKDIR/
    config.json                      the config of the latest run (others: config-<time>.json)
    data/{split}_{tier}/             datasets: data.npz + meta.json (`mdx.data.trajectories`)
    seed_{s}/{stage}/                a training stage of training seed s: checkpoints/,
                                     metrics.jsonl, TensorBoard files, and what the stage adds
                                     (the context stage's normalizer.npz, ...)
    eval/{split}/                    results.json, table.txt, per_task_returns.json, plots

Datasets are shared by every training seed; `config.train_seeds` lists the seeds.
"""
from __future__ import annotations

import os


def dataset_dir(workdir: str, split: str, tier: str) -> str:
  return os.path.join(workdir, 'data', f'{split}_{tier}')


def stage_dir(workdir: str, stage: str, seed: int) -> str:
  return os.path.join(workdir, f'seed_{seed}', stage)


def checkpoint_dir(workdir: str, stage: str, seed: int) -> str:
  return os.path.join(stage_dir(workdir, stage, seed), 'checkpoints')


def eval_dir(workdir: str, split: str) -> str:
  return os.path.join(workdir, 'eval', split)
