"""Builds `results/README.md` from the committed result files, beside the paper's Tables 1 and 2.

  python experiments/make_results.py                       # regenerate results/README.md
  python experiments/make_results.py --add=runs/point_robot  # first copy a finished run's outputs
  python experiments/make_results.py --merge=runs/ant_dir    # add a run's methods to a committed run
  python experiments/make_results.py --add_sweep=runs/ant_dir/eval/test-sweep-dynamics_weight
  python experiments/make_results.py --add_augment=runs/point_robot/eval/test-mtdiff-augment

`--add=WORKDIR` copies a pipeline run's small outputs into `results/<family>/`: per split
`results_<split>.json`, `table_<split>.txt`, `plan_vs_reached_<split>.json` and the plots, plus
`timings.json` and `config.json`. `--merge=WORKDIR` adds the methods a later run evaluated (say
UDiffuser, trained after the run was committed) to the committed `results_<split>.json` of the same
preset: refused unless every config field outside `eval` is the committed run's (fields added to
the library after it was committed aside) and the reference
methods (Oracle, Random) returned the same on the same tasks, episodes and evaluation seeds (to
0.1% of the score range: another machine's rounding), and normalized by the committed run's
references, so that all rows share their 0 and 1; a method already there is never replaced (the
test split runs once). The README is then written from every `results/*/results_test.json`
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
_ADD_SWEEP = flags.DEFINE_list(
    'add_sweep', [], 'Finished sweep evaluations (WORKDIR/eval/<split>-sweep-<fields>) to copy '
    'into results/<family>/sweeps/<fields>_<split>.json (and .txt).')
_SWEEP_NAME = flags.DEFINE_string(
    'sweep_name', '', "With --add_sweep: the files' name instead of <fields> (e.g. "
    "'guide_form_mean' for a guide-scale sweep in another guide form).")
_ADD_AUGMENT = flags.DEFINE_list(
    'add_augment', [], 'Finished MTDiff-S augmentation runs (WORKDIR/eval/<split>-mtdiff-augment, '
    'experiments/mtdiff_augment.py) to copy into results/<family>/mtdiff_augment/<split>.json.')
# --merge: how far a later run's Oracle or Random return may lie from the committed one's, as a
# fraction of the committed |Oracle - Random|.
MERGE_REF_TOLERANCE = 1e-3
_MERGE = flags.DEFINE_string(
    'merge', None, 'A finished pipeline workdir whose evaluated methods are added to the committed '
    'results of the same preset (results/<family>/results_<split>[_<as_run>].json).')
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
# The paper's ablations (returns, mean ± std; MetaDiffuser with expert warm starts): Table 4
# (lambda, the dynamics guide's weight) and Table 6 (beta, the context dropout).
PAPER_ABLATIONS = {
    'dynamics_weight': ('Table 4', 'lambda', {
        'point_robot': {0: (-4.57, 0.33), 0.5: (-4.48, 0.28), 1: (-4.74, 0.26), 2: (-4.89, 0.27)},
        'ant_dir': {0: (210.3, 10.7), 0.5: (214.6, 19.8), 1: (247.7, 16.8), 2: (238.3, 18.1)},
        'cheetah_dir': {0: (924.2, 19.6), 0.5: (936.2, 17.9), 1: (929.7, 15.1), 2: (916.0, 19.8)},
        'cheetah_vel': {0: (-52.9, 4.72), 0.5: (-49.9, 2.95), 1: (-45.9, 4.1), 2: (-48.6, 3.75)},
        'walker_param': {0: (326.5, 24.9), 0.5: (330.6, 23.4), 1: (347.2, 19.3),
                         2: (368.3, 30.6)},
        'hopper_param': {0: (293.3, 13.8), 0.5: (307.2, 18.6), 1: (328.1, 16.7),
                         2: (356.8, 16.9)}}),
    'context_dropout': ('Table 6', 'beta', {
        'point_robot': {0: (-4.86, 0.22), 0.1: (-4.61, 0.34), 0.2: (-4.71, 0.30),
                        0.3: (-4.48, 0.28)},
        'ant_dir': {0: (234.9, 12.8), 0.1: (241.3, 16.6), 0.2: (247.7, 16.8), 0.3: (224.8, 25.3)},
        'cheetah_dir': {0: (936.2, 17.9), 0.1: (915.4, 19.8), 0.2: (909.6, 23.1),
                        0.3: (873.8, 28.6)},
        'cheetah_vel': {0: (-48.3, 2.7), 0.1: (-49.8, 3.5), 0.2: (-47.4, 3.7), 0.3: (-45.9, 4.1)},
        'walker_param': {0: (346.5, 31.4), 0.1: (349.6, 35.7), 0.2: (368.3, 30.6),
                         0.3: (357.8, 29.0)},
        'hopper_param': {0: (347.1, 17.3), 0.1: (356.8, 16.9), 0.2: (336.9, 12.4),
                         0.3: (343.3, 18.6)}}),
    'cfg_weight': ('the CFG weight; the paper gives no table', 'omega', {}),
}
# Where each swept field lives in the committed config.json (the preset's value).
CONFIG_FIELDS = {'dynamics_weight': ('planner', 'dynamics_weight'),
                 'context_dropout': ('diffusion', 'context_dropout'),
                 'cfg_weight': ('planner', 'cfg_weight')}
# The rows of the "every method" table, in this order (the references are in every row's score).
METHODS = ('MetaDiffuser', 'MetaDiffuser-NoGuide', 'Ours+GT', 'Ours+CORRO', 'PromptDT',
           'CVAE-Planner', 'UDiffuser', 'FOCAL', 'CORRO', 'PromptDT-FT', 'PromptDiffuser',
           'MTDiff-P')
# The paper's Table 1 (FOCAL, CORRO) and Table 3 (Ours+CORRO) rows: expert warm start / n/a.
_TD_ROWS = {'point_robot': ((-5.99, 0.26), (-5.59, 0.57), (-4.43, 0.26)),
            'ant_dir': ((151.3, 24.6), (193.3, 32.1), (251.3, 17.2)),
            'cheetah_dir': ((680.9, 46.6), (823.5, 37.0), (936.9, 18.1)),
            'cheetah_vel': ((-82.5, 7.0), (-56.2, 9.4), (-44.6, 3.9)),
            'walker_param': ((245.6, 37.8), (300.5, 34.2), (377.0, 29.6)),
            'hopper_param': ((203.6, 46.6), (289.3, 24.7), (361.3, 19.2))}
for _family, (_focal, _corro, _ours_corro) in _TD_ROWS.items():
  PAPER_ROWS[_family].update({('FOCAL', 'expert'): _focal, ('CORRO', 'expert'): _corro,
                              ('Ours+CORRO', 'expert'): _ours_corro})
# Papers 004 (Prompt Diffuser; Table 1, and Table 2 for medium prompts and Prompt Diffuser's
# medium and random tiers) and 003 (MTDiff; Table 5) on Prompt-DT's task split: return mean ± std
# over 3 seeds, by mdx method and warm-start tier. mdx's tier is the few-shot data, both the
# prompt and the fine-tuning data: Table 2's diagonal (dataset and prompt of one quality) for
# Prompt Diffuser; its expert-dataset row for Prompt-DT, which does not fine-tune.
OVERLAP_004 = {
    'cheetah_vel': {('PromptDT', 'random'): (-127.7, 9.9, 'T1'),
                    ('PromptDT', 'medium'): (-49.9, 1.6, 'T2'),
                    ('PromptDT', 'expert'): (-43.5, 3.4, 'T1'),
                    ('PromptDT-FT', 'expert'): (-40.1, 3.8, 'T1'),
                    ('PromptDiffuser', 'expert'): (-35.3, 2.4, 'T1'),
                    ('PromptDiffuser', 'medium'): (-33.5, 2.0, 'T2'),
                    ('PromptDiffuser', 'random'): (-32.5, 1.6, 'T2')},
    'ant_dir': {('PromptDT', 'random'): (278.7, 38.7, 'T1'),
                ('PromptDT', 'expert'): (420.2, 5.1, 'T1'),
                ('PromptDT-FT', 'expert'): (425.2, 8.6, 'T1'),
                ('PromptDiffuser', 'expert'): (432.1, 6.7, 'T1')},
    'cheetah_dir': {('PromptDT', 'random'): (935.3, 2.6, 'T1'),
                    ('PromptDT', 'expert'): (934.6, 4.4, 'T1'),
                    ('PromptDT-FT', 'expert'): (936.9, 4.8, 'T1'),
                    ('PromptDiffuser', 'expert'): (945.3, 7.2, 'T1')}}
OVERLAP_003 = {'cheetah_vel': {('MTDiff-P', 'expert'): (-29.09, 0.31),
                               ('PromptDT', 'expert'): (-34.43, 2.33)},
               'ant_dir': {('MTDiff-P', 'expert'): (602.17, 1.68),
                           ('PromptDT', 'expert'): (409.81, 9.69)}}
OVERLAP_METHODS = ('MetaDiffuser', 'PromptDT', 'PromptDT-FT', 'PromptDiffuser', 'MTDiff-P')
# Families whose own task split is Prompt-DT's (Cheetah-Dir's two tasks, the `cpu` preset as it
# is): their runs with a method of papers 003 and 004 are listed beside those papers too.
OWN_SPLIT_IS_PROMPT_DTS = ('cheetah_dir',)
# Paper 004's Table 2 (Cheetah-Vel): Prompt Diffuser's return, mean ± std over 3 seeds, by the
# quality of the data it is fine-tuned on (mdx: the warm-start tier under evaluation) and of the
# prompt its y is copied from (mdx: `prompt_dt.prompt_tier`, '' being the evaluated tier).
GRID_004 = {'cheetah_vel': {
    ('expert', 'expert'): (-32.6, 1.3), ('expert', 'medium'): (-34.2, 2.8),
    ('expert', 'random'): (-33.5, 2.0), ('medium', 'expert'): (-34.2, 2.8),
    ('medium', 'medium'): (-33.5, 2.0), ('medium', 'random'): (-34.4, 2.4),
    ('random', 'expert'): (-33.5, 2.0), ('random', 'medium'): (-33.2, 2.2),
    ('random', 'random'): (-32.5, 1.6)}}
GRID_METHODS = ('PromptDiffuser', 'PromptDT-FT')
# The targets for MetaDiffuser's normalized score with expert warm-start data.
TARGETS = {'point_robot': 0.93, 'cheetah_vel': 0.90, 'cheetah_dir': 0.95, 'ant_dir': 0.80,
           'walker_param': 0.83, 'hopper_param': 0.84}
TIERS = ('expert', 'medium', 'random')
MAX_VIDEO_BYTES = 3_000_000  # larger evaluation videos stay in the workdir


def _run_config(workdir: pathlib.Path) -> pathlib.Path:
  """The config the run's results were made with: the test evaluation's own `config.json`
  (written by every evaluation since 2026-12-06; else the validation one's), then the workdir's
  (the last pipeline's), then its newest binary's."""
  for split in ('test', 'validation'):
    if (workdir / 'eval' / split / 'config.json').exists():
      return workdir / 'eval' / split / 'config.json'
  config_path = workdir / 'config.json'
  if not config_path.exists():  # a workdir only evaluated: its newest run's config
    config_path = sorted((workdir / 'config_history').glob('*.json'))[-1]
  return config_path


def _evaluated_splits(workdir: pathlib.Path) -> list[pathlib.Path]:
  """`WORKDIR/eval/<split>` folders with a finished evaluation (sweeps are copied apart)."""
  return [d for d in sorted((workdir / 'eval').iterdir())
          if (d / 'results.json').exists() and '-sweep-' not in d.name]


def add_run(workdir: pathlib.Path, run: str = '') -> str:
  """Copies a run's small outputs into `results/<family>/` (with the suffix `_<run>` for a
  family's second run); returns the family."""
  config_path = _run_config(workdir)
  family = json.loads(config_path.read_text())['family']
  out = RESULTS / family
  out.mkdir(parents=True, exist_ok=True)
  tag = f'_{run}' if run else ''
  for split_dir in _evaluated_splits(workdir):
    split = split_dir.name
    for name, target in (('results.json', f'results_{split}{tag}.json'),
                         ('table.txt', f'table_{split}{tag}.txt'),
                         ('plan_vs_reached.json', f'plan_vs_reached_{split}{tag}.json')):
      if (split_dir / name).exists():
        shutil.copyfile(split_dir / name, out / target)
    for png in split_dir.glob('*.png'):
      shutil.copyfile(png, out / f'{png.stem}_{split}{tag}.png')
    for video in split_dir.glob('video_*.gif'):  # the evaluation's episode videos (small GIFs)
      if video.stat().st_size > MAX_VIDEO_BYTES:
        print(f'[make_results] {video} is {video.stat().st_size / 1e6:.1f} MB, over '
              f'{MAX_VIDEO_BYTES / 1e6:.0f} MB: not copied (render it smaller with '
              'experiments/render.py)', flush=True)
        continue
      shutil.copyfile(video, out / f'{video.stem}_{split}{tag}.gif')
      if video.with_suffix('.json').exists():
        shutil.copyfile(video.with_suffix('.json'), out / f'{video.stem}_{split}{tag}.json')
  shutil.copyfile(config_path, out / f'config{tag}.json')
  if (workdir / 'timings.json').exists():
    shutil.copyfile(workdir / 'timings.json', out / f'timings{tag}.json')
  return family


def _flat(config: dict, prefix: str = '') -> dict:
  """`{'diffusion.horizon': 32, ...}` without the `eval` section."""
  out = {}
  for k, v in config.items():
    if not prefix and k == 'eval':
      continue
    out.update(_flat(v, f'{prefix}{k}.') if isinstance(v, dict) else {f'{prefix}{k}': v})
  return out


def merge_run(workdir: pathlib.Path, run: str = '') -> str:
  """Adds the methods evaluated in `workdir` to the committed results of the family's run
  `run` (see the module docstring for what is checked); returns what was added."""
  from mdx.evaluation import format_table, stats  # pylint: disable=g-import-not-at-top
  config_path = _run_config(workdir)
  config = json.loads(config_path.read_text())
  out, tag = RESULTS / config['family'], f'_{run}' if run else ''
  committed = json.loads((out / f'config{tag}.json').read_text())
  # Fields the committed config lacks were added to the library after it was made (they cannot
  # have changed it); every field it has must be the same.
  new_fields, old_fields = _flat(config), _flat(committed)
  changed = sorted(f for f in old_fields if new_fields.get(f, '<missing>') != old_fields[f])
  if changed:
    raise ValueError(f'--merge: {workdir} was not made with the preset of {out}/config{tag}.json '
                     f'(fields {changed} differ); commit it as its own run with --add --as_run')
  refs = (config['eval']['oracle'], config['eval']['random'])
  added, names, merged = [], [], {}
  for split_dir in _evaluated_splits(workdir):
    target = out / f'results_{split_dir.name}{tag}.json'
    if not target.exists():
      raise FileNotFoundError(f'--merge: {target} does not exist; copy a whole run with --add')
    old, new = json.loads(target.read_text()), json.loads((split_dir / 'results.json').read_text())
    # (records written before evaluation sweeps existed have no `sweep`: they are unswept)
    key = lambda r: (r['method'], r['warm_start'], json.dumps(r.get('sweep', {}), sort_keys=True))
    have = {key(r) for r in old}
    ref_old = [[r for r in old if r['method'] == ref] for ref in refs]
    ref_new = [[r for r in new if r['method'] == ref] for ref in refs]
    if not all(len(a) == len(b) == 1 for a, b in zip(ref_old, ref_new)):
      raise ValueError(f'--merge: {target} and {split_dir}/results.json must each hold one '
                       f'record of each of {refs}')
    r_or, r_ra = (a[0]['mean_return'] for a in ref_old)
    for ref, (a,), (b,) in zip(refs, ref_old, ref_new):
      # The same references up to the rounding of another machine (MJX's contacts move an
      # Oracle's 562-return episode by ~0.06): within 0.1% of the score's range.
      if (any(a[f] != b[f] for f in ('num_tasks', 'episodes_per_task', 'num_eval_seeds'))
          or abs(a['mean_return'] - b['mean_return']) > MERGE_REF_TOLERANCE * abs(r_or - r_ra)):
        raise ValueError(f'--merge: {ref} on {split_dir.name} differs between {target} '
                         f"({a['mean_return']:.4f}) and {split_dir}/results.json "
                         f"({b['mean_return']:.4f}), by more than {MERGE_REF_TOLERANCE:g} of "
                         'the score range, or in its tasks, episodes or seeds: the normalized '
                         'scores would not share their references')
    # The added rows are normalized by the committed run's references, as its own rows are.
    extra = [dict(r, oracle_return=r_or, random_return=r_ra,
                  normalized_score=float(stats.normalized(r['mean_return'], r_or, r_ra)),
                  ci_low=float(stats.normalized(r['return_ci_low'], r_or, r_ra)),
                  ci_high=float(stats.normalized(r['return_ci_high'], r_or, r_ra)))
             for r in new if r['method'] not in refs]
    for r in extra:
      if key(r) in have:
        raise ValueError(f'--merge: {target} already has {r["method"]} ({r["warm_start"]}); '
                         'a committed test result is not replaced')
    first_ref = min(i for i, r in enumerate(old) if r['method'] in refs)
    merged[split_dir.name] = (target, old[:first_ref] + extra + old[first_ref:])
    names += [r['method'] for r in extra]
    added.append(f'{split_dir.name}: ' + ', '.join(dict.fromkeys(r['method'] for r in extra)))
  if not names:
    raise ValueError(f'--merge: {workdir} evaluated no method besides {refs}')
  for split, (target, records) in merged.items():  # written only once every split is checked
    io.write_json(target, records)
    io.write_atomic(out / f'table_{split}{tag}.txt', format_table(records) + '\n')
  suffix = '_add_' + '_'.join(dict.fromkeys(n.lower().replace('+', '_') for n in names))
  shutil.copyfile(config_path, out / f'config{tag}{suffix}.json')
  if (workdir / 'timings.json').exists():
    shutil.copyfile(workdir / 'timings.json', out / f'timings{tag}{suffix}.json')
  return f'{out.name}{tag}: ' + '; '.join(added)


def add_sweep(folder: pathlib.Path, name: str = '', results: pathlib.Path = RESULTS) -> str:
  """Copies a sweep evaluation's `results.json` and `table.txt` into
  `results/<family>/sweeps/<name>_<split>.{json,txt}`, `name` by default the swept fields by their
  last component (the first one the swept quantity of the ablation tables); returns the file stem.
  A committed file of that name with other contents is never overwritten (`FileExistsError`)."""
  if '-sweep-' not in folder.name:
    raise ValueError(f'--add_sweep: {folder} is not a sweep evaluation (<split>-sweep-<fields>)')
  records = json.loads((folder / 'results.json').read_text())
  family, split = records[0]['family'], records[0]['split']
  fields = folder.name.split('-sweep-', 1)[1].split('-')
  stem = (name or '-'.join(f.rsplit('.', 1)[-1] for f in fields)) + f'_{split}'
  out = results / family / 'sweeps'
  pairs = [(folder / 'results.json', out / f'{stem}.json')]
  if (folder / 'table.txt').exists():
    pairs.append((folder / 'table.txt', out / f'{stem}.txt'))
  _copy_new(pairs, '--add_sweep: {} holds another sweep; name this one with --sweep_name=NAME '
                   '(or move that file aside)')
  return f'{family}/sweeps/{stem}'


def _copy_new(pairs, refusal: str) -> None:
  """Copies each `(src, dst)` of `pairs`, none unless every `dst` is absent or already holds
  its `src`'s bytes (a committed result is never overwritten): else
  `FileExistsError(refusal.format(dst))`."""
  for src, dst in pairs:
    if dst.exists() and dst.read_bytes() != src.read_bytes():
      raise FileExistsError(refusal.format(dst))
  for src, dst in pairs:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def add_augment(folder: pathlib.Path, results: pathlib.Path = RESULTS) -> str:
  """Copies an `experiments/mtdiff_augment.py` run's `results.json` into
  `results/<family>/mtdiff_augment/<split>.json`; returns that path. A committed file there with
  other contents is never overwritten (`FileExistsError`): the test split runs once."""
  if not folder.name.endswith('-mtdiff-augment'):
    raise ValueError(f'--add_augment: {folder} is not an augmentation run '
                     '(WORKDIR/eval/<split>-mtdiff-augment)')
  src = folder / 'results.json'
  record = json.loads(src.read_text())['records'][0]
  dst = results / record['family'] / 'mtdiff_augment' / f"{record['split']}.json"
  _copy_new([(src, dst)], '--add_augment: {} holds another run (move it aside first)')
  return str(dst.relative_to(results))


def _augment_lines(order) -> list[str]:
  """'MTDiff-S's data augmentation': each committed `<family>/mtdiff_augment/<split>.json`, its
  learners' scores and the synthetic transitions' check against the simulator."""
  lines, checks = [], []
  for f in order:
    for split in ('validation', 'test'):
      path = RESULTS / f / 'mtdiff_augment' / f'{split}.json'
      if not path.exists():
        continue
      run = json.loads(path.read_text())
      s = run['settings']
      for r in run['records']:
        lines.append(f"| {PAPER[f]['name']} | {split} | {r['method']} | {r['mean_return']:.2f} | "
                     f"{_cell(r)} | {r['num_train_seeds']} / {r['num_eval_seeds']} |")
      check = ', '.join(f'{k} {v:.4f}' for k, v in run['synthetic_check'].items()
                        if isinstance(v, (int, float)))
      checks.append(f"- {PAPER[f]['name']}, {split}: {s['real_episodes']} real {s['tier']} "
                    f"episode(s) per task, {s['windows_per_task']} synthetic {s['horizon']}-step "
                    f"windows; SAC+CQL (weight {s['sac']['cql_weight']:g}, "
                    f"{'x'.join(map(str, s['sac']['hidden']))}, {s['sac']['num_updates']} updates, "
                    f"batch {s['sac']['batch']}); the synthetic transitions against the "
                    f"simulator: {check or 'not available for this family'}.")
  if not lines:
    return []
  return ['', "## MTDiff-S's data augmentation (paper 003, Section 5.3)", '',
          'Per held-out task an offline learner on the task\'s few real episodes, with and '
          'without MTDiff-S transitions generated from them as prompts '
          '(`experiments/mtdiff_augment.py`; `<family>/mtdiff_augment/<split>.json`); the '
          'normalized score with its 95% interval. 003 reports its gains on Meta-World only.', '',
          '| family | split | learner | return | normalized score | seeds (train / eval) |',
          '|---|---|---|---|---|---|'] + lines + [''] + checks


def _ablations(family_dir: pathlib.Path) -> dict[str, list[dict]]:
  """`{swept field: [MetaDiffuser expert-tier test records]}` from `sweeps/*_test.json`, the
  field being the first of the file's name (`context_dropout-cfg_weight_test.json`: beta = 0
  evaluated with omega = 1)."""
  out = {}
  for path in sorted((family_dir / 'sweeps').glob('*_test.json')):
    field = path.stem[:-len('_test')].split('-')[0]
    rows = [r for r in json.loads(path.read_text()) if r['method'] == 'MetaDiffuser'
            and r['warm_start'] == 'expert' and field in r.get('sweep', {})]
    out.setdefault(field, []).extend(rows)
  for field, rows in out.items():
    rows.sort(key=lambda r, f=field: (r['sweep'][f], sorted(r['sweep'].items())))
  return {f: out[f] for f in CONFIG_FIELDS if out.get(f)}


def _label(field: str, r: dict) -> str:
  others = ', '.join(f'{k} {v:g}' for k, v in r['sweep'].items() if k != field)
  return f"{r['sweep'][field]:g}" + (f' ({others})' if others else '')


def _ablation_summary(field: str, rows: list[dict], paper: dict) -> str:
  best = max(rows, key=lambda r: r['normalized_score'])
  overlap = [r for r in rows if r is not best and r['ci_high'] >= best['ci_low']]
  name = PAPER_ABLATIONS[field][1]
  ours = (f"ours: the highest point estimate at {name} = {_label(field, best)} "
          f"({_cell(best)}); ")
  ours += (f'the intervals of {len(overlap)} of the other {len(rows) - 1} settings reach it, so '
           'no setting is measurably best' if overlap else
           'its interval is above every other setting\'s')
  if paper:
    top = max(paper, key=lambda v: paper[v][0])
    ours += f"; the paper's best: {name} = {top:g}"
  return ours + '.'


def _ablation_lines(order: list[str]) -> list[str]:
  lines = []
  for f in order:
    ablations = _ablations(RESULTS / f)
    if not ablations:
      continue
    config = json.loads((RESULTS / f / 'config.json').read_text())
    for field, rows in ablations.items():
      table, name, paper_all = PAPER_ABLATIONS[field]
      paper = paper_all.get(f, {})
      section, key = CONFIG_FIELDS[field]
      preset = config[section][key]
      lines += ['', f"### {PAPER[f]['name']}: {name} ({table}), test split, expert warm start", '',
                f'| {name} | return | normalized score | seeds (train / eval) | paper: return |',
                '|---|---|---|---|---|']
      for r in rows:
        v = r['sweep'][field]
        mark = ' (preset)' if v == preset and len(r['sweep']) == 1 else ''
        p = paper.get(v)
        lines.append(f"| {_label(field, r)}{mark} | {r['mean_return']:.2f} | {_cell(r)} | "
                     f"{r['num_train_seeds']} / {r['num_eval_seeds']} | "
                     + (f'{p[0]} ± {p[1]}' if p else '-') + ' |')
      lines += ['', _ablation_summary(field, rows, paper)]
  if lines:
    lines = ['', '## Ablations (test split): Tables 4 and 6, and the CFG weight', '',
             'MetaDiffuser with expert warm-start data, one row per swept setting (each evaluated '
             'in one program with the rest of the preset fixed; `results/<family>/sweeps/`); '
             'the paper\'s return for the same setting beside ours. Plots: '
             '`results/<family>/ablations_test.png`.'] + lines
  return lines


def plot_ablations(family_dir: pathlib.Path) -> None:
  """`ablations_test.png`: normalized score against each swept value, with 95% intervals."""
  ablations = _ablations(family_dir)
  if not ablations:
    return
  from mdx.evaluation import plots  # pylint: disable=g-import-not-at-top  (Agg backend)
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, len(ablations), figsize=(3.2 * len(ablations), 2.8), squeeze=False)
  for ax, (field, rows) in zip(axes[0], ablations.items()):
    x = list(range(len(rows)))
    y = [r['normalized_score'] for r in rows]
    err = [[r['normalized_score'] - r['ci_low'] for r in rows],
           [r['ci_high'] - r['normalized_score'] for r in rows]]
    ax.errorbar(x, y, yerr=err, fmt='o-', capsize=3)
    ax.set_xticks(x, [_label(field, r).replace(' (', '\n(') for r in rows], fontsize=7)
    ax.set_xlabel(PAPER_ABLATIONS[field][1])
    ax.set_ylabel('normalized score (test)')
  fig.suptitle(f"{PAPER[family_dir.name]['name']}: MetaDiffuser, expert warm start", fontsize=9)
  plots.save_figure(fig, str(family_dir / 'ablations_test.png'), dpi=120)


def _runs(family_dir: pathlib.Path) -> dict[str, dict]:
  """`{run: {(method, tier): record}}` of a family's test results: `''` is the main run
  (`results_test.json`), others are `results_test_<run>.json`."""
  out = {}
  for path in sorted(family_dir.glob('results_test*.json')):
    run = path.stem[len('results_test'):].lstrip('_')
    out[run] = {(r['method'], r['warm_start']): r for r in json.loads(path.read_text())
                if not r.get('sweep')}
  return out


def _run_field(family_dir: pathlib.Path, run: str, section: str, field: str, default=None):
  """`section.field` of the config the family's run `run` was committed with (`default` where
  the run has no config or the config lacks the field)."""
  path = family_dir / (f'config_{run}.json' if run else 'config.json')
  if not path.exists():
    return default
  return json.loads(path.read_text()).get(section, {}).get(field, default)


def _prompt_dt_split(family_dir: pathlib.Path, run: str) -> bool:
  """Whether the family's run `run` used Prompt-DT's task split (`env.task_split`)."""
  return _run_field(family_dir, run, 'env', 'task_split') == 'prompt_dt'


def _prompt_tier(family_dir: pathlib.Path, run: str) -> str:
  """The run's `prompt_dt.prompt_tier` ('' where the prompt came from the evaluated tier)."""
  return _run_field(family_dir, run, 'prompt_dt', 'prompt_tier', '')


def _beside_overlap_papers(family: str, run: str, got: dict) -> bool:
  """Whether the run belongs in the table beside papers 003 and 004: made on Prompt-DT's task
  split (or on Cheetah-Dir's own, which is it, with a method of those papers), its prompts
  taken from the evaluated tier (the grid's other runs are `_grid_lines`')."""
  if _prompt_tier(RESULTS / family, run):
    return False
  return _prompt_dt_split(RESULTS / family, run) or (
      family in OWN_SPLIT_IS_PROMPT_DTS and any(m in OVERLAP_METHODS[2:] for m, _ in got))


def _grid_lines(order) -> list[str]:
  """Paper 004's Table 2 grid: the runs on Prompt-DT's task split, by the fine-tuning data's
  tier (rows) and the prompt's (columns; a run without `prompt_tier` gives the diagonal)."""
  lines = []
  for f in order:
    cells = {}  # (method, data tier, prompt tier) -> (run, record)
    runs = [(_prompt_tier(RESULTS / f, run), run, got) for run, got in _runs(RESULTS / f).items()
            if _prompt_dt_split(RESULTS / f, run)]
    for prompt, run, got in sorted(runs, key=lambda x: x[0] != ''):  # the diagonal's runs first
      for (m, t), r in got.items():
        if m in GRID_METHODS and t in TIERS:
          cells.setdefault((m, t, prompt or t), (run, r))
    for m in GRID_METHODS:
      if not any(p != t for (mm, t, p) in cells if mm == m):  # the diagonal alone: E1's table
        continue
      lines += ['', f"{PAPER[f]['name']}, {m} (rows: the data it is fine-tuned on; columns: the "
                'prompt its prompt starts from):', '',
                '| data \\ prompt | ' + ' | '.join(TIERS) + ' |', '|---' * (len(TIERS) + 1) + '|']
      for t in TIERS:
        row = []
        for p in TIERS:
          run, r = cells.get((m, t, p), (None, None))
          paper = GRID_004.get(f, {}).get((t, p)) if m == 'PromptDiffuser' else None
          row.append('-' if r is None else
                     f"{r['mean_return']:.1f} [{r['return_ci_low']:.1f}, "
                     f"{r['return_ci_high']:.1f}]" + ('' if p == t else f' ({run})')
                     + (f' / 004: {paper[0]} ± {paper[1]}' if paper else ''))
        lines.append(f'| {t} | ' + ' | '.join(row) + ' |')
  if not lines:
    return []
  return ['', "### Paper 004's Table 2: the fine-tuning data's quality against the prompt's", '',
          "Prompt Diffuser's y (the prompt's returns-to-go and timesteps) and PromptDT-FT's prompt "
          'are taken from the prompt tier (`--config.prompt_dt.prompt_tier`), while both '
          'fine-tune on the evaluated tier\'s data. Test split; return with its 95% interval, '
          "the diagonal from the run that took prompt and data from one tier, the other cells' "
          "runs in brackets; paper 004's mean ± std over 3 seeds beside (its Prompt-Tuning DT "
          'columns have no mdx counterpart).'] + lines


def _overlap_lines(order) -> list[str]:
  """Papers 003 and 004 beside the runs made on Prompt-DT's task split
  (`_beside_overlap_papers`)."""
  lines = []
  for f in order:
    for run, got in _runs(RESULTS / f).items():
      if not _beside_overlap_papers(f, run, got):
        continue
      for m in OVERLAP_METHODS:
        for t in TIERS:
          r = got.get((m, t))
          if r is None:
            continue
          p4, p3 = OVERLAP_004.get(f, {}).get((m, t)), OVERLAP_003.get(f, {}).get((m, t))
          lines.append(
              f"| {PAPER[f]['name']} | {run} | {m} | {t} | {r['mean_return']:.2f} "
              f"[{r['return_ci_low']:.2f}, {r['return_ci_high']:.2f}] | {_cell(r)} | "
              f"{r['num_train_seeds']} / {r['num_eval_seeds']} | "
              + (f'{p4[0]} ± {p4[1]} ({p4[2]})' if p4 else '-') + ' | '
              + (f'{p3[0]} ± {p3[1]}' if p3 else '-') + ' |')
  if not lines:
    return []
  return ['', "## Papers 003 and 004 on Prompt-DT's task split (test split)", '',
          "Runs made with Prompt-DT's task split (`configs/<family>.py:cpu,prompt_dt_split`: "
          "its test tasks, the other tasks training; Cheetah-Dir's own split is Prompt-DT's, so "
          'its runs with these methods are listed as they are), beside paper 004 (Prompt '
          'Diffuser: its Table 1 (T1) and Table 2 (T2)) and paper 003 (MTDiff: Table 5). The warm-start tier '
          'is the few-shot data of the task, prompt and fine-tuning data at once (for Prompt '
          "Diffuser T2 is Table 2's diagonal): Prompt-DT's prompt, the fine-tuning data of "
          "PromptDT-FT and Prompt Diffuser, MTDiff-P's prompt, MetaDiffuser's context. Return "
          "with its 95% interval; the papers': mean ± std over 3 seeds. Compare orderings, not "
          'absolute returns (other simulators, experts and data).',
          '', '| family | run | method | warm start | return | normalized score | '
          'seeds (train / eval) | paper 004 | paper 003 |', '|---|---|---|---|---|---|---|---|---|'
          ] + lines


def _expert_or_tierless(by_key: dict, method: str):
  """`by_key[(method, 'expert')]`, else `by_key[(method, 'n/a')]` (a method that reads no
  warm-start data), else None: the one cell per method of Figure 1 and the glance tables."""
  return by_key.get((method, 'expert')) or by_key.get((method, 'n/a'))


def _paper_return(family: str, method: str, tier: str):
  """The paper's `(mean, std)` return of `method` with warm-start tier `tier` (None if it has
  none): MetaDiffuser's from Tables 1 and 2, the others' from `PAPER_ROWS`."""
  return PAPER[family][tier] if method == 'MetaDiffuser' else PAPER_ROWS[family].get((method, tier))


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
  lines += _glance_lines(order)
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
      if _prompt_dt_split(RESULTS / f, run):  # its own section (another task split)
        continue
      for m in METHODS:
        for t in TIERS + ('n/a',):
          r = got.get((m, t))
          if r is None:
            continue
          base = got.get((m, 'expert'))
          drop = (f"{base['normalized_score'] - r['normalized_score']:.2f}"
                  if base is not None and t not in ('expert', 'n/a') else '')
          paper = _paper_return(f, m, t)
          lines.append(f"| {PAPER[f]['name']} | {run or 'main'} | {m} | {t} | "
                       f"{r['mean_return']:.2f} | {_cell(r)} | {drop} | "
                       f"{r['num_train_seeds']} / {r['num_eval_seeds']} | "
                       + (f'{paper[0]} ± {paper[1]}' if paper else '-') + ' |')
  overlap = _overlap_lines(order)
  lines += overlap + (_grid_lines(order) if overlap else [])
  lines += _ablation_lines(order)
  lines += _few_step_lines(order)
  lines += _augment_lines(order)
  lines += _video_lines(order)
  for f in order:
    notes = RESULTS / f / 'NOTES.md'
    if notes.exists():
      lines += ['', notes.read_text().rstrip()]
  return '\n'.join(lines) + '\n'


# The paper's comparison tables at a glance: (title, its methods as mdx names, left to right).
GLANCE_TABLES = (
    ('Table 1: every method, expert warm start',
     ('FOCAL', 'CVAE-Planner', 'CORRO', 'PromptDT', 'MetaDiffuser')),
    ('Table 3: the context', ('CORRO', 'MetaDiffuser', 'Ours+CORRO', 'Ours+GT')),
    ('Table 5: the generative model', ('CVAE-Planner', 'UDiffuser', 'MetaDiffuser')),
)
GLANCE_RUN = 'methods_seed0'  # the every-method run each family's cells come from first


def _glance_record(family: str, runs: dict, method: str):
  """`(run, record)` of `method`'s expert-tier (or tier-free) test record: from the family's
  every-method run, else from its main run (neither on Prompt-DT's task split); None if neither
  has it."""
  for run in (GLANCE_RUN, ''):
    r = _expert_or_tierless(runs.get(run, {}), method)
    if r is not None and not _prompt_dt_split(RESULTS / family, run):
      return run, r
  return None


def _glance_lines(order) -> list[str]:
  """The paper's Tables 1, 3 and 5 as the paper lays them out (families by methods), each cell
  `_glance_record`'s normalized score (marked where it comes from the main run), the paper's
  return under it."""
  lines, runs_of = [], {f: _runs(RESULTS / f) for f in order}
  for title, methods in GLANCE_TABLES:
    lines += ['', f'### {title}', '', '| family | | ' + ' | '.join(methods) + ' | Oracle return |',
              '|---' * (len(methods) + 3) + '|']
    for f in order:
      ours, paper, oracle = [], [], '-'
      for m in methods:
        found = _glance_record(f, runs_of[f], m)
        if found is None:
          ours.append('-')
        else:
          run, r = found
          ours.append(_cell(r) + ('' if run == GLANCE_RUN else ' †'))
          if oracle == '-' or run == GLANCE_RUN:  # the every-method run's, where it has a cell
            oracle = f"{r['oracle_return']:.2f}"
        pr = _paper_return(f, m, 'expert') or _paper_return(f, m, 'n/a')
        paper.append(f'{pr[0]} ± {pr[1]}' if pr else '-')
      if all(c == '-' for c in ours):
        continue
      name, p = PAPER[f]['name'], PAPER[f]['oracle']
      lines += [f'| {name} | ours: score | ' + ' | '.join(ours) + f' | {oracle} |',
                '| | paper: return | ' + ' | '.join(paper) + f' | {p[0]} ± {p[1]} |']
  return ['', '## The paper\'s Tables 1, 3 and 5 at a glance (test split)', '',
          'Families by methods as the paper lays them out. Ours: the normalized score with its 95% '
          f'interval, from the family\'s every-method run (`results_test_{GLANCE_RUN}.json`, one '
          'training seed, every method on the same data and references); † marks a cell from '
          'the family\'s main run (`results_test.json`, its own training seeds and references) '
          'where the every-method run lacks the method. The paper\'s return (mean ± std) under '
          'it: compare orderings within a row, not our scores with its returns. Seeds and the '
          'other tiers are in the table below.'] + lines


def _few_step_lines(order) -> list[str]:
  """'Few-step sampling': MetaDiffuser's score per sampler setting (`few_step/<split>_<sampler>_
  K<steps>_eta<eta>.json`) beside the planner's decisions per second at that number of steps
  (`few_step/plan_speed.jsonl`, `experiments/benchmark.py` lines)."""
  lines = []
  for f in order:
    folder = RESULTS / f / 'few_step'
    if not folder.is_dir():
      continue
    speed = {}
    for line in (folder / 'plan_speed.jsonl').read_text().splitlines():
      row = json.loads(line)
      if row.get('name') == 'plan/full':
        speed[row['num_steps']] = 1.0 / row['median_s']
    settings = []
    for path in folder.glob('*_K*_eta*.json'):
      split, sampler, steps, eta = path.stem.split('_')
      settings.append((int(steps[1:]), float(eta[3:]), split, sampler, path))
    # Most steps first, DDPM before DDIM at equal steps, then by eta.
    for steps, eta, split, sampler, path in sorted(
        settings, key=lambda s: (-s[0], s[3] != 'ddpm', s[1])):
      got = {r['warm_start']: r for r in json.loads(path.read_text())
             if r['method'] == 'MetaDiffuser'}
      cells = ' | '.join(_cell(got[t]) if t in got else '-' for t in TIERS)
      rate = f'{speed[steps]:.0f}' if steps in speed else '-'
      lines.append(f"| {PAPER[f]['name']} | {split} | {sampler} | {steps} | "
                   f"{eta:g} | {cells} | {rate} |")
  lines_cpu = _few_step_cpu_lines(order)
  if not lines and not lines_cpu:
    return []
  return ['', '## Few-step sampling', '',
          'MetaDiffuser with K\' of its trained K denoising steps: DDPM (all K) or DDIM over a '
          'strided subsequence, deterministic (eta 0) or stochastic (eta 1). Decisions per '
          'second: one state, the preset\'s candidate plans with CFG and the dual guide, '
          'batch 1 on the 2-core CPU (`experiments/benchmark.py` `plan/full` at that number of '
          'steps; a DDIM step costs what a DDPM step costs). See the family notes for the model '
          'and seeds.', '',
          '| family | split | sampler | K\' | eta | expert | medium | random | '
          'decisions/s |', '|---|---|---|---|---|---|---|---|---|'] + lines + lines_cpu


def _few_step_cpu_lines(order) -> list[str]:
  """The `experiments/few_step.py` runs (`<family>/few_step_cpu/<split>.json`): per setting the
  scores and the trained policy's plans per second at batch 1 and at the split's batch."""
  lines = []
  for f in order:
    for split in ('validation', 'test'):
      path = RESULTS / f / 'few_step_cpu' / f'{split}.json'
      if not path.exists():
        continue
      for row in json.loads(path.read_text())['rows']:
        got = {r['warm_start']: r for r in row['records']}
        cells = ' | '.join(_cell(got[t]) if t in got else '-' for t in TIERS)
        seeds = sorted({r['num_eval_seeds'] for r in row['records']})
        lines.append(f"| {PAPER[f]['name']} | {split} | {','.join(map(str, seeds))} | "
                     f"{row['sampler']} | "
                     f"{row['sample_steps']} | {row['fields'].get('planner.eta', 0):g} | "
                     f"{cells} | {row['plans_per_s_batch1']:.0f} | "
                     f"{row['plans_per_s_batch_tasks']:.0f} ({row['batch_tasks']}) |")
  if not lines:
    return []
  return ['', 'The `cpu` preset (one training seed), every setting on validation and test tasks by `experiments/few_step.py` (`<family>/few_step_cpu/`, with its plots): '
          'plans per second of the trained policy\'s planning call (the preset\'s candidates, '
          'CFG, the dual guide) at batch 1 and at the split\'s tasks, on the 2-core CPU (each '
          'row\'s load average is in its file).', '',
          '| family | split | eval seeds | sampler | K\' | eta | expert | medium | random | '
          'plans/s, batch 1 | plans/s, batch (B) |',
          '|---|---|---|---|---|---|---|---|---|---|---|'] + lines


def _video_lines(order) -> list[str]:
  """The 'Videos' section: every committed evaluation video, with its episode."""
  lines = []
  for f in order:
    for meta_path in sorted((RESULTS / f).glob('video_*.json')):
      meta = json.loads(meta_path.read_text())
      lines.append(f"- [{PAPER[f]['name']}: {meta['method']} on {meta['split']} task "
                   f"{meta['task_id']}]({f}/{meta_path.stem}.gif), {meta['warm_start']} warm "
                   f"start, training seed {meta['train_seed']}: return {meta['return']:.1f}")
  if not lines:
    return []
  return ['', '## Videos', '',
          'One evaluation episode per family (`config.eval.videos`), rendered by MuJoCo; the '
          'translucent blue ghost is the state the plan made H - 1 steps earlier predicted for '
          'the current step (`mdx.evaluation.video`). Render another with '
          '`experiments/render.py`.', ''] + lines


def plot_figure1(path: pathlib.Path) -> None:
  """The paper's Figure 1 from our test results: normalized score per method and family, with
  the 95% intervals as error bars (expert warm starts; methods without a tier: 'n/a')."""
  from mdx.evaluation import plots  # pylint: disable=g-import-not-at-top  (Agg backend)
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows = {}
  for p in sorted(RESULTS.glob('*/results_test.json')):
    # The main run's methods, then the every-method run's others (the variants of other runs,
    # and runs on another task split, are not the paper's figure).
    runs = _runs(p.parent)
    rows[p.parent.name] = {k: v for run in (GLANCE_RUN, '') if run in runs
                           and not _prompt_dt_split(p.parent, run) for k, v in runs[run].items()}
  families = [f for f in PAPER if f in rows]
  methods = [m for m in METHODS if any((m, t) in rows[f] for f in families
                                      for t in ('expert', 'n/a'))]
  fig, ax = plt.subplots(figsize=(3.4 + 1.4 * len(families), 3.2))
  width = 0.8 / max(len(methods), 1)
  colors = plt.get_cmap('tab20').colors  # one color per method (tab10 repeats after ten)
  for i, m in enumerate(methods):
    labelled = False  # the legend entry at the method's first bar, wherever that is
    for j, f in enumerate(families):
      r = _expert_or_tierless(rows[f], m)
      if r is None:
        continue
      x = j + (i - (len(methods) - 1) / 2) * width
      ax.bar(x, r['normalized_score'], width, color=colors[i % len(colors)],
             label=None if labelled else m, capsize=2,
             yerr=[[r['normalized_score'] - r['ci_low']], [r['ci_high'] - r['normalized_score']]])
      labelled = True
  ax.set_xticks(range(len(families)), [PAPER[f]['name'] for f in families])
  ax.axhline(1.0, color='k', lw=0.5, ls='--')
  ax.set_ylabel('normalized score (test)')
  ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1.0))
  plots.save_figure(fig, str(path), dpi=120)


def main(argv):
  del argv
  if _ADD.value:
    print(f'copied {add_run(pathlib.Path(_ADD.value), _AS.value)}', file=sys.stderr)
  if _MERGE.value:
    print(f'merged {merge_run(pathlib.Path(_MERGE.value), _AS.value)}', file=sys.stderr)
  for folder in _ADD_SWEEP.value:
    print(f'copied {add_sweep(pathlib.Path(folder), _SWEEP_NAME.value)}', file=sys.stderr)
  for folder in _ADD_AUGMENT.value:
    print(f'copied {add_augment(pathlib.Path(folder))}', file=sys.stderr)
  text = render()
  io.write_atomic(RESULTS / 'README.md', text)
  plot_figure1(RESULTS / 'figure1.png')
  for family_dir in sorted(p.parent for p in RESULTS.glob('*/results_test.json')):
    plot_ablations(family_dir)
  print(text)


if __name__ == '__main__':
  app.run(main)
