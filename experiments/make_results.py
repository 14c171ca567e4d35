"""Builds `results/README.md` from the committed result files, beside the paper's Tables 1 and 2.

  python experiments/make_results.py                       # regenerate results/README.md
  python experiments/make_results.py --add=runs/point_robot  # first copy a finished run's outputs

`--add=WORKDIR` copies a pipeline run's small outputs into `results/<family>/`: per split
`results_<split>.json`, `table_<split>.txt`, `plan_vs_reached_<split>.json` and the plots, plus
`timings.json` and `config.json`. The README is then written from every `results/*/results_test.json`
(validation results are listed but never put in the tables), with each family's `NOTES.md`
(what was tried where a target is missed) appended verbatim, and `results/figure1.png` (the
paper's Figure 1: normalized score per method and family). Nothing in it is typed by hand:
`tests/test_results.py` checks that regenerating it reproduces the committed file exactly.
"""
import json
import pathlib
import shutil
import sys

from absl import app, flags

sys.path.insert(1, str(pathlib.Path(__file__).resolve().parents[1]))
from mdx import io  # pylint: disable=g-import-not-at-top,wrong-import-position

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'results'
_ADD = flags.DEFINE_string('add', None, 'A finished pipeline workdir to copy into results/.')
_AS = flags.DEFINE_string('as_run', '', 'With --add: a name for a second run of the family (its '
                          'files get the suffix _NAME, e.g. an every-method run of one seed).')

# The paper's Tables 1 and 2 (Ni et al. 2023), MetaDiffuser and Oracle returns, mean ± std.
PAPER = {
    'point_robot': {'name': 'Point-Robot', 'expert': (-4.48, 0.28), 'medium': (-4.54, 0.31),
                    'random': (-4.61, 0.21), 'oracle': (-3.97, 0.12)},
    'ant_dir': {'name': 'Ant-Dir', 'expert': (247.7, 16.8), 'medium': (238.9, 18.1),
                'random': (213.8, 26.5), 'oracle': (314.4, 9.2)},
    'cheetah_dir': {'name': 'Cheetah-Dir', 'expert': (936.2, 17.9), 'medium': (930.3, 18.5),
                    'random': (916.7, 21.8), 'oracle': (943.4, 15.4)},
    'cheetah_vel': {'name': 'Cheetah-Vel', 'expert': (-45.9, 4.1), 'medium': (-50.2, 5.2),
                    'random': (-55.8, 2.3), 'oracle': (-32.4, 1.8)},
    'walker_param': {'name': 'Walker-Param', 'expert': (368.3, 30.6), 'medium': (357.9, 33.7),
                     'random': (341.6, 38.4), 'oracle': (447.2, 9.7)},
    'hopper_param': {'name': 'Hopper-Param', 'expert': (356.4, 16.9), 'medium': (337.0, 21.2),
                     'random': (319.6, 14.2), 'oracle': (429.6, 13.1)},
}
# The paper's other rows (Tables 1, 2, 3, 5), return mean ± std, by mdx method name and tier.
PAPER_ROWS = {
    'point_robot': {('CVAE-Planner', 'expert'): (-6.11, 0.71), ('PromptDT', 'expert'): (-5.04, 0.35),
                    ('PromptDT', 'medium'): (-5.17, 0.29), ('PromptDT', 'random'): (-5.85, 0.32),
                    ('UDiffuser', 'n/a'): (-7.48, 0.89), ('Ours+GT', 'n/a'): (-4.02, 0.13)},
    'ant_dir': {('CVAE-Planner', 'expert'): (130.6, 41.3), ('PromptDT', 'expert'): (213.2, 29.1),
                ('PromptDT', 'medium'): (154.7, 39.5), ('PromptDT', 'random'): (40.1, 16.3),
                ('UDiffuser', 'n/a'): (53.2, 51.1), ('Ours+GT', 'n/a'): (282.9, 13.6)},
    'cheetah_dir': {('CVAE-Planner', 'expert'): (759.4, 47.2),
                    ('PromptDT', 'expert'): (931.7, 21.3), ('PromptDT', 'medium'): (922.6, 28.2),
                    ('PromptDT', 'random'): (913.9, 30.8), ('UDiffuser', 'n/a'): (614.7, 63.5),
                    ('Ours+GT', 'n/a'): (939.7, 15.7)},
    'cheetah_vel': {('CVAE-Planner', 'expert'): (-87.1, 13.1), ('PromptDT', 'expert'): (-51.3, 4.9),
                    ('PromptDT', 'medium'): (-125.6, 7.5), ('PromptDT', 'random'): (-208.4, 1.9),
                    ('UDiffuser', 'n/a'): (-121.7, 36.2), ('Ours+GT', 'n/a'): (-41.1, 3.2)},
    'walker_param': {('CVAE-Planner', 'expert'): (187.9, 49.7),
                     ('PromptDT', 'expert'): (287.7, 32.1), ('PromptDT', 'medium'): (200.1, 26.3),
                     ('PromptDT', 'random'): (64.7, 8.1), ('UDiffuser', 'n/a'): (135.2, 78.1),
                     ('Ours+GT', 'n/a'): (394.1, 17.5)},
    'hopper_param': {('CVAE-Planner', 'expert'): (157.3, 54.5),
                     ('PromptDT', 'expert'): (265.2, 37.1), ('PromptDT', 'medium'): (159.6, 35.7),
                     ('PromptDT', 'random'): (82.6, 15.3), ('UDiffuser', 'n/a'): (103.5, 64.0),
                     ('Ours+GT', 'n/a'): (382.5, 12.0)},
}
# The rows of the "every method" table, in this order (the references are in every row's score).
METHODS = ('MetaDiffuser', 'MetaDiffuser-NoGuide', 'Ours+GT', 'PromptDT', 'CVAE-Planner',
           'UDiffuser')
# The targets for MetaDiffuser's normalized score with expert warm-start data.
TARGETS = {'point_robot': 0.93, 'cheetah_vel': 0.90, 'cheetah_dir': 0.95, 'ant_dir': 0.80,
           'walker_param': 0.83, 'hopper_param': 0.84}
TIERS = ('expert', 'medium', 'random')


def add_run(workdir: pathlib.Path, run: str = '') -> str:
  """Copies a run's small outputs into `results/<family>/` (with the suffix `_<run>` for a
  family's second run); returns the family."""
  config_path = workdir / 'config.json'
  if not config_path.exists():  # a workdir only evaluated: its newest run's config
    config_path = sorted((workdir / 'config_history').glob('*.json'))[-1]
  family = json.loads(config_path.read_text())['family']
  out = RESULTS / family
  out.mkdir(parents=True, exist_ok=True)
  tag = f'_{run}' if run else ''
  for split_dir in sorted((workdir / 'eval').iterdir()):
    split = split_dir.name
    if not (split_dir / 'results.json').exists() or '-sweep-' in split:
      continue
    for name, target in (('results.json', f'results_{split}{tag}.json'),
                         ('table.txt', f'table_{split}{tag}.txt'),
                         ('plan_vs_reached.json', f'plan_vs_reached_{split}{tag}.json')):
      if (split_dir / name).exists():
        shutil.copyfile(split_dir / name, out / target)
    for png in split_dir.glob('*.png'):
      shutil.copyfile(png, out / f'{png.stem}_{split}{tag}.png')
  shutil.copyfile(config_path, out / f'config{tag}.json')
  if (workdir / 'timings.json').exists():
    shutil.copyfile(workdir / 'timings.json', out / f'timings{tag}.json')
  return family


def _runs(family_dir: pathlib.Path) -> dict[str, dict]:
  """`{run: {(method, tier): record}}` of a family's test results: `''` is the main run
  (`results_test.json`), others are `results_test_<run>.json`."""
  out = {}
  for path in sorted(family_dir.glob('results_test*.json')):
    run = path.stem[len('results_test'):].lstrip('_')
    out[run] = {(r['method'], r['warm_start']): r for r in json.loads(path.read_text())
                if not r.get('sweep')}
  return out


def _cell(r: dict) -> str:
  return f"{r['normalized_score']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"


def verdict(r: dict, target: float) -> str:
  """'yes' when the whole interval is at or above `target`, 'no' when it is below, else
  'within noise' (never claimed)."""
  if r['ci_low'] >= target:
    return 'yes'
  return 'no' if r['ci_high'] < target else 'within noise'


def render() -> str:
  """The text of results/README.md from the committed files."""
  rows = {}
  for path in sorted(RESULTS.glob('*/results_test.json')):
    rows[path.parent.name] = {(r['method'], r['warm_start']): r for r in json.loads(
        path.read_text()) if not r.get('sweep')}
  order = [f for f in PAPER if f in rows]
  lines = [
      '# Results', '',
      'Generated by `python experiments/make_results.py` from the committed '
      '`results/<family>/results_test.json`; do not edit by hand. Each family\'s folder holds '
      'the run\'s validation and test results, tables, Figure-3 replays, plots, config and stage '
      'wall times (`timings.json`, seconds).', '',
      '"met": yes when the whole 95% interval is at or above the target, no when it is below, '
      'within noise otherwise (then the target is not claimed).', '',
      'Normalized score `(R - R_random) / (R_oracle - R_random)` with our own Oracle (the expert '
      'behaviour policy) and Random; in brackets its 95% bootstrap interval (training seeds, then '
      'test tasks x episodes x evaluation seeds). Our simulators and experts are not the '
      'paper\'s: compare the score with the paper\'s MetaDiffuser/Oracle return ratio (given '
      'where returns are positive), not the raw returns.', '',
      '## Table 1: expert warm-start data (test split)', '',
      '| family | MetaDiffuser return | Oracle return | Random return | normalized score | '
      'target | met | seeds (train / eval) | paper: MetaDiffuser | paper: Oracle | paper: ratio |',
      '|---|---|---|---|---|---|---|---|---|---|---|']
  for f in order:
    md = rows[f].get(('MetaDiffuser', 'expert'))
    if md is None:
      continue
    p = PAPER[f]
    ratio = f"{p['expert'][0] / p['oracle'][0]:.2f}" if p['oracle'][0] > 0 else 'n/a'
    lines.append(
        f"| {p['name']} | {md['mean_return']:.2f} | {md['oracle_return']:.2f} | "
        f"{md['random_return']:.2f} | {_cell(md)} | {TARGETS[f]:.2f} | "
        f"{verdict(md, TARGETS[f])} | "
        f"{md['num_train_seeds']} / {md['num_eval_seeds']} | {p['expert'][0]} ± {p['expert'][1]} | "
        f"{p['oracle'][0]} ± {p['oracle'][1]} | {ratio} |")
  lines += ['', '## Table 2: warm-start quality (test split)', '',
            '| family | MetaDiffuser: expert | medium | random | drop expert - random | '
            'UDiffuser | paper: expert | paper: medium | paper: random |',
            '|---|---|---|---|---|---|---|---|---|']
  for f in order:
    got = {t: rows[f].get(('MetaDiffuser', t)) for t in TIERS}
    if got['expert'] is None:
      continue
    p = PAPER[f]
    cells = [_cell(got[t]) if got[t] else '-' for t in TIERS]
    drop = (f"{got['expert']['normalized_score'] - got['random']['normalized_score']:.2f}"
            if got['random'] else '-')
    ud = rows[f].get(('UDiffuser', 'n/a'))
    lines.append(f"| {p['name']} | " + ' | '.join(cells) + f" | {drop} | "
                 f"{_cell(ud) if ud else '-'} | "
                 + ' | '.join(f'{p[t][0]} ± {p[t][1]}' for t in TIERS) + ' |')
  lines += ['', '## Every method (test split): Tables 1, 2, 3 and 5', '',
            'One row per method and warm-start tier present in the committed results; "run" is '
            '"main" for the family\'s main run (`results_test.json`, the rows of Tables 1 and 2) '
            'or the name of another run of it (`results_test_<run>.json`, every method with the '
            'same training seeds); compare rows within one run. "drop" is the normalized score '
            'lost from the expert warm start; the paper\'s return beside ours.', '',
            '| family | run | method | warm start | return | normalized score | drop | '
            'seeds (train / eval) | paper: return |',
            '|---|---|---|---|---|---|---|---|---|']
  for f in order:
    for run, got in _runs(RESULTS / f).items():
      for m in METHODS:
        for t in TIERS + ('n/a',):
          r = got.get((m, t))
          if r is None:
            continue
          base = got.get((m, 'expert'))
          drop = (f"{base['normalized_score'] - r['normalized_score']:.2f}"
                  if base is not None and t not in ('expert', 'n/a') else '')
          paper = (PAPER[f][t] if m == 'MetaDiffuser' else PAPER_ROWS[f].get((m, t)))
          lines.append(f"| {PAPER[f]['name']} | {run or 'main'} | {m} | {t} | "
                       f"{r['mean_return']:.2f} | {_cell(r)} | {drop} | "
                       f"{r['num_train_seeds']} / {r['num_eval_seeds']} | "
                       + (f'{paper[0]} ± {paper[1]}' if paper else '-') + ' |')
  for f in order:
    notes = RESULTS / f / 'NOTES.md'
    if notes.exists():
      lines += ['', notes.read_text().rstrip()]
  return '\n'.join(lines) + '\n'


def plot_figure1(path: pathlib.Path) -> None:
  """The paper's Figure 1 from our test results: normalized score per method and family, with
  the 95% intervals as error bars (expert warm starts; methods without a tier: 'n/a')."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows = {}
  for p in sorted(RESULTS.glob('*/results_test.json')):  # the main run, then the others' methods
    runs = _runs(p.parent)
    rows[p.parent.name] = {k: v for run in sorted(runs, key=bool, reverse=True)
                           for k, v in runs[run].items()}
  families = [f for f in PAPER if f in rows]
  methods = [m for m in METHODS if any((m, t) in rows[f] for f in families
                                      for t in ('expert', 'n/a'))]
  fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(families), 3.2))
  width = 0.8 / max(len(methods), 1)
  for i, m in enumerate(methods):
    for j, f in enumerate(families):
      r = rows[f].get((m, 'expert')) or rows[f].get((m, 'n/a'))
      if r is None:
        continue
      x = j + (i - (len(methods) - 1) / 2) * width
      ax.bar(x, r['normalized_score'], width, color=f'C{i}', label=m if j == 0 else None,
             yerr=[[r['normalized_score'] - r['ci_low']], [r['ci_high'] - r['normalized_score']]],
             capsize=2)
  ax.set_xticks(range(len(families)), [PAPER[f]['name'] for f in families])
  ax.axhline(1.0, color='k', lw=0.5, ls='--')
  ax.set_ylabel('normalized score (test)')
  ax.legend(fontsize=7, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv):
  del argv
  if _ADD.value:
    print(f'copied {add_run(pathlib.Path(_ADD.value), _AS.value)}', file=sys.stderr)
  text = render()
  io.write_atomic(RESULTS / 'README.md', text)
  plot_figure1(RESULTS / 'figure1.png')
  print(text)


if __name__ == '__main__':
  app.run(main)
