"""Figures a researcher looks at after an evaluation (matplotlib, Agg backend, PNG files).

Every figure is written by `save_figure`, which shrinks (then wraps) any text that would stick
out of the figure, so no title or label is cut off whatever the method names.
"""
from __future__ import annotations

import os
import textwrap

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from mdx import distributed
from mdx.evaluation.rollout import replay_mask


def _drawn_texts(fig) -> list:
  """The texts `fig` draws: titles, axis labels, the tick labels inside the view limits, legend
  texts, the suptitle and figure texts."""
  texts = list(fig.texts) + ([fig._suptitle] if fig._suptitle is not None else [])  # pylint: disable=protected-access
  for ax in fig.axes:
    texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]  # pylint: disable=protected-access
    for axis, (lo, hi) in ((ax.xaxis, sorted(ax.get_xlim())), (ax.yaxis, sorted(ax.get_ylim()))):
      for tick in axis.get_major_ticks():
        if lo - 1e-9 * (hi - lo) <= tick.get_loc() <= hi + 1e-9 * (hi - lo):
          texts += [tick.label1, tick.label2]
    legend = ax.get_legend()
    if legend is not None:
      texts += list(legend.get_texts())
  return [t for t in texts if t.get_visible() and t.get_text().strip()]


def texts_outside(fig, margin: float = 2.0) -> list[str]:
  """The drawn texts of `fig` (`_drawn_texts`) that come closer than `margin` pixels to the
  figure's edge or leave it."""
  fig.canvas.draw()
  renderer = fig.canvas.get_renderer()
  box = fig.bbox
  out = []
  for text in _drawn_texts(fig):
    ext = text.get_window_extent(renderer)
    if (ext.x0 < box.x0 + margin or ext.y0 < box.y0 + margin or ext.x1 > box.x1 - margin
        or ext.y1 > box.y1 - margin):
      out.append(text.get_text())
  return out


def fit_texts(fig, min_size: float = 6.0) -> None:
  """Shrinks each text that leaves the figure, down to `min_size` points, then wraps it."""
  for _ in range(12):
    fig.tight_layout()
    wide = set(texts_outside(fig))
    if not wide:
      return
    for text in _drawn_texts(fig):
      if text.get_text() in wide:
        if text.get_fontsize() > min_size:
          text.set_fontsize(max(min_size, text.get_fontsize() * 0.85))
        elif '\n' not in text.get_text():
          text.set_text(textwrap.fill(text.get_text(), max(10, len(text.get_text()) // 2 + 1)))


def save_figure(fig, path: str, dpi: int = 110) -> None:
  """Lays `fig` out so that every text fits (`fit_texts`), writes it to `path`, closes it."""
  fit_texts(fig)
  if distributed.is_writer():  # process 0 of a multi-process run
    fig.savefig(path, dpi=dpi)
  plt.close(fig)


def plot_returns(path: str, per_method: dict) -> None:
  """Per-task mean return of each (method, tier) as bars (`per_method[(name, tier)]` is
  `[S_train, S_eval, tasks, episodes]`)."""
  series = [(name if tier == 'n/a' else f'{name} ({tier})', np.asarray(r).mean(axis=(0, 1, 3)))
            for (name, tier), r in per_method.items()]
  n = len(series[0][1])
  x = np.arange(n)
  width = 0.8 / max(len(series), 1)
  fig, ax = plt.subplots(figsize=(max(6, 0.9 * n), 3.5))
  for i, (name, vals) in enumerate(series):
    ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=name)
  ax.set_xticks(x)
  ax.set_xticklabels([f'task {i}' for i in range(n)], rotation=45)
  ax.set_ylabel('return (mean over seeds and episodes)')
  ax.legend(fontsize=7, ncol=2)
  save_figure(fig, path)


def plot_point_robot(path: str, tasks, episodes, name: str, n_tasks: int, eps: int) -> None:
  """Executed paths of one episode per task (the first warm-start tier of `name`)."""
  goals = np.asarray(tasks.params)
  obs = np.asarray(episodes.observations)[:n_tasks * eps].reshape(n_tasks, eps, -1, 2)
  fig, ax = plt.subplots(figsize=(5, 5))
  colors = plt.cm.tab10(np.arange(n_tasks) % 10)
  for i in range(n_tasks):
    ax.plot(obs[i, 0, :, 0], obs[i, 0, :, 1], '-o', ms=2, c=colors[i], lw=1)
    ax.scatter(*goals[i], marker='*', s=120, c=[colors[i]], edgecolors='k')
  ax.scatter([0], [0], c='k', s=20)
  ax.set_xlim(-1.1, 1.1)
  ax.set_ylim(-1.1, 1.1)
  ax.set_aspect('equal')
  ax.set_title(f'{name}: executed paths (stars: goals)')
  save_figure(fig, path)


def plot_plan_vs_reached(path: str, family, traces: dict, *, num_plans: int = 5) -> None:
  """The paper's Figure 3: for the first task, the executed episode (black), and at a few decision
  steps the planned states (dashed) against the states the plan's actions reach open-loop (solid).
  One row per dynamics weight lambda, one column per state entry in `family.state_labels`."""
  labels = list(family.state_labels) or [(i, f'state[{i}]') for i in range(min(3, family.obs_dim))]
  lams = sorted(traces)
  fig, axes = plt.subplots(len(lams), len(labels), figsize=(4.2 * len(labels), 3 * len(lams)),
                           squeeze=False)
  for row, lam in enumerate(lams):
    ep = traces[lam]
    obs, plans, reached = (np.asarray(x)[0] for x in (ep.observations, ep.plans, ep.reached))
    alive = np.asarray(ep.alive)[0]
    horizon = plans.shape[1]
    live = int(alive.sum())
    picks = np.unique(np.linspace(0, max(live - horizon + 1, 0), num_plans).astype(int))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(picks)))
    for col, (dim, label) in enumerate(labels):
      ax = axes[row, col]
      ax.plot(np.arange(live + 1), obs[:live + 1, dim], c='k', lw=1, label='executed')
      for c, t in zip(colors, picks):
        ts = t + np.arange(horizon)
        ax.plot(ts, plans[t, :, dim], '--', c=c, lw=1.2, label='planned' if t == picks[0] else None)
        ax.plot(ts, reached[t, :, dim], '-', c=c, lw=1.8,
                label='plan replayed open-loop' if t == picks[0] else None)
      mask = replay_mask(np.asarray(ep.alive)[:1], horizon)[0, :, 1:]
      gaps = np.abs(plans[:, 1:, dim] - reached[:, 1:, dim])[mask]
      err = gaps.mean() if gaps.size else float('nan')
      ax.set_title(f'lambda = {lam:g}: {label} (mean |gap| {err:.3f})', fontsize=9)
      ax.set_xlabel('environment step')
      if col == 0:
        ax.legend(fontsize=7)
  fig.suptitle(f'{family.name}, task 0: planned vs reached states', fontsize=10)
  save_figure(fig, path)


def plot_all(out, family, tasks, per_method, episodes, *, tiers, episodes_per_task) -> None:
  """`returns_per_task.png`, and on Point-Robot `paths_<method>.png` of the warm-start methods."""
  del tiers
  os.makedirs(out, exist_ok=True)
  plot_returns(os.path.join(out, 'returns_per_task.png'), per_method)
  if family.name == 'point_robot':
    n = int(tasks.task_id.shape[0])
    for name, ep in episodes.items():
      if ep is not None and (name, 'n/a') not in per_method:
        plot_point_robot(os.path.join(out, f'paths_{name}.png'), tasks, ep, name, n,
                         episodes_per_task)
