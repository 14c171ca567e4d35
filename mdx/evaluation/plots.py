"""Figures a researcher looks at after an evaluation (matplotlib, Agg backend, PNG files)."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np


def plot_returns(path: str, per_task, tiers) -> None:
  """Per-test-task mean return of each method/tier as bars, with the Oracle as a marker."""
  oracle = per_task[('Oracle', 'n/a')].mean(-1)
  randomr = per_task[('Random', 'n/a')].mean(-1)
  series = [(f'MetaDiffuser ({t})', per_task[('MetaDiffuser', t)].mean(-1)) for t in tiers
            if ('MetaDiffuser', t) in per_task]
  if ('UDiffuser', 'n/a') in per_task:
    series.append(('UDiffuser', per_task[('UDiffuser', 'n/a')].mean(-1)))
  n = len(oracle)
  x = np.arange(n)
  width = 0.8 / max(len(series), 1)
  fig, ax = plt.subplots(figsize=(max(6, 0.9 * n), 3.5))
  for i, (name, vals) in enumerate(series):
    ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=name)
  ax.scatter(x, oracle, marker='_', s=400, c='k', label='Oracle', zorder=3)
  ax.scatter(x, randomr, marker='x', c='gray', label='Random', zorder=3)
  ax.set_xticks(x)
  ax.set_xticklabels([f'task {i}' for i in range(n)], rotation=45)
  ax.set_ylabel('return')
  ax.legend(fontsize=7, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_point_robot(path: str, tasks, episodes, n_tasks: int, eps: int) -> None:
  """Executed paths (and the first step's plan) of MetaDiffuser with the first warm-start tier."""
  goals = np.asarray(tasks.params)
  obs = np.asarray(episodes.observations)[:n_tasks * eps].reshape(n_tasks, eps, -1, 2)
  plans = np.asarray(episodes.plans)[:n_tasks * eps].reshape(n_tasks, eps, obs.shape[2] - 1, -1, 2)
  fig, ax = plt.subplots(figsize=(5, 5))
  colors = plt.cm.tab10(np.arange(n_tasks) % 10)
  for i in range(n_tasks):
    ax.plot(obs[i, 0, :, 0], obs[i, 0, :, 1], '-o', ms=2, c=colors[i], lw=1)
    ax.plot(plans[i, 0, 0, :, 0], plans[i, 0, 0, :, 1], ':', c=colors[i], lw=1)
    ax.scatter(*goals[i], marker='*', s=120, c=[colors[i]], edgecolors='k')
  ax.scatter([0], [0], c='k', s=20)
  ax.set_xlim(-1.1, 1.1)
  ax.set_ylim(-1.1, 1.1)
  ax.set_aspect('equal')
  ax.set_title('MetaDiffuser on the test tasks (stars: goals; dotted: first plan)')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_all(out, family, tasks, per_task, episodes_out, *, tiers, episodes_per_task) -> None:
  os.makedirs(out, exist_ok=True)
  plot_returns(os.path.join(out, 'returns_per_task.png'), per_task, tiers)
  if family.name == 'point_robot' and 'MetaDiffuser' in episodes_out:
    plot_point_robot(os.path.join(out, 'paths.png'), tasks, episodes_out['MetaDiffuser'],
                     int(tasks.task_id.shape[0]), episodes_per_task)
