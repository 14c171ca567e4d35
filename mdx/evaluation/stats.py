"""95% bootstrap intervals for the evaluation's scores.

The returns of a method form an array `[num_train_seeds, num_eval_seeds, num_tasks, episodes]`.
The interval is a two-level (hierarchical) percentile bootstrap: training seeds are resampled
with replacement, then, within each, the (evaluation seed, task, episode) cells; the statistic is
the mean return (and the normalized score, with the Oracle's and Random's mean returns held
fixed). With one training seed it is the plain bootstrap over test tasks x episodes x evaluation
seeds. The resampling draws from a fixed numpy seed, so the same returns give the same interval.
"""
from __future__ import annotations

import numpy as np

NUM_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


def bootstrap_means(returns: np.ndarray, *, num_resamples: int = NUM_RESAMPLES,
                    seed: int = BOOTSTRAP_SEED) -> np.ndarray:
  """`[num_resamples]` bootstrap replicates of the mean of `returns [S, ...]` (S training seeds,
  the rest cells)."""
  returns = np.asarray(returns, np.float64)
  seeds = returns.shape[0]
  cells = returns.reshape(seeds, -1)
  rng = np.random.default_rng(seed)
  pick_seeds = rng.integers(0, seeds, size=(num_resamples, seeds))
  pick_cells = rng.integers(0, cells.shape[1], size=(num_resamples, seeds, cells.shape[1]))
  values = cells[pick_seeds[:, :, None], pick_cells]  # [R, S, cells]
  return values.mean(axis=(1, 2))


def interval(returns: np.ndarray, level: float = 0.95, **kwargs) -> tuple[float, float]:
  """The percentile bootstrap interval of the mean of `returns [S, ...]` at `level`."""
  reps = bootstrap_means(returns, **kwargs)
  lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
  return float(lo), float(hi)


def normalized(value, oracle: float, random: float):
  """`(value - random) / (oracle - random)` (works on arrays)."""
  return (np.asarray(value) - random) / (oracle - random)
