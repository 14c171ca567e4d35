"""`results/README.md` is generated, never typed: regenerating it from the committed result files
reproduces it exactly."""
import functools
import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)  # its absl flags can be defined once per process
def _make_results():
  spec = importlib.util.spec_from_file_location('make_results',
                                                ROOT / 'experiments' / 'make_results.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_results_readme_regenerates_exactly():
  readme = ROOT / 'results' / 'README.md'
  if not readme.exists():
    pytest.skip('no committed results yet')
  assert _make_results().render() == readme.read_text()


def test_every_committed_row_names_its_split_and_interval():
  import json  # pylint: disable=g-import-not-at-top
  files = sorted((ROOT / 'results').glob('*/results_*.json'))
  for path in files:
    split = path.stem.split('_')[1]  # results_<split>[_<run>]
    for r in json.loads(path.read_text()):
      assert r['split'] == split, path
      assert r['ci_low'] <= r['normalized_score'] <= r['ci_high'], (path, r['method'])
      assert r['num_eval_seeds'] >= 1, path


def test_an_ablation_names_no_best_setting_within_noise():
  """The ablation summary claims a best setting only when its interval clears every other's."""
  summary = _make_results()._ablation_summary  # pylint: disable=protected-access
  row = lambda v, s, lo, hi: {'sweep': {'dynamics_weight': v}, 'normalized_score': s,
                              'ci_low': lo, 'ci_high': hi}
  paper = {0: (-4.57, 0.33), 0.5: (-4.48, 0.28)}
  text = summary('dynamics_weight', [row(0, 0.90, 0.85, 0.95), row(0.5, 0.93, 0.90, 0.96)], paper)
  assert 'lambda = 0.5 (0.93 [0.90, 0.96])' in text and 'no setting is measurably best' in text
  assert "the paper's best: lambda = 0.5" in text
  text = summary('dynamics_weight', [row(0, 0.80, 0.75, 0.85), row(2, 0.93, 0.90, 0.96)], {})
  assert 'lambda = 2' in text and 'above every other' in text and 'paper' not in text


def _record(method, ret, tier='n/a', oracle=10.0):
  return {'family': 'toy', 'split': 'test', 'method': method, 'warm_start': tier, 'sweep': {},
          'mean_return': ret, 'std_return': 0.0, 'return_ci_low': ret - 1, 'return_ci_high': ret + 1,
          'oracle_return': oracle, 'random_return': 0.0, 'normalized_score': ret / oracle,
          'ci_low': (ret - 1) / oracle, 'ci_high': (ret + 1) / oracle, 'num_tasks': 2,
          'episodes_per_task': 1,
          'num_train_seeds': 1 if method not in ('Oracle', 'Random') else 0, 'num_eval_seeds': 3}


def test_merge_adds_a_later_runs_method_only_with_the_same_preset_and_references(
    tmp_path, monkeypatch):
  import json  # pylint: disable=g-import-not-at-top
  mr = _make_results()
  monkeypatch.setattr(mr, 'RESULTS', tmp_path / 'results')
  config = {'family': 'toy', 'seed': 0, 'diffusion': {'horizon': 4},
            'eval': {'methods': ['MetaDiffuser', 'Oracle', 'Random'], 'oracle': 'Oracle',
                     'random': 'Random'}}
  committed = tmp_path / 'results' / 'toy'
  committed.mkdir(parents=True)
  (committed / 'config.json').write_text(json.dumps(config))
  main = [_record('MetaDiffuser', 8.0, 'expert'), _record('Oracle', 10.0), _record('Random', 0.0)]
  del main[0]['sweep']  # a record from before evaluation sweeps: unswept, as `{}`
  (committed / 'results_test.json').write_text(json.dumps(main))

  def later_run(name, config_change=None, oracle=10.0, methods=('UDiffuser',)):
    workdir = tmp_path / name
    (workdir / 'eval' / 'test').mkdir(parents=True)
    cfg = json.loads(json.dumps(config))
    cfg['eval']['methods'] = [*methods, 'Oracle', 'Random']
    cfg.update(config_change or {})
    (workdir / 'config.json').write_text(json.dumps(cfg))
    (workdir / 'eval' / 'test' / 'results.json').write_text(json.dumps(
        [_record(m, 3.0, 'expert' if m == 'MetaDiffuser' else 'n/a', oracle) for m in methods]
        + [_record('Oracle', oracle, oracle=oracle), _record('Random', 0.0, oracle=oracle)]))
    return workdir

  with pytest.raises(ValueError, match=r"fields \['diffusion.horizon'\] differ"):
    mr.merge_run(later_run('other_preset', {'diffusion': {'horizon': 8}}))
  with pytest.raises(ValueError, match='Oracle on test differs'):  # 5% of the score range
    mr.merge_run(later_run('other_oracle', oracle=10.5))
  with pytest.raises(ValueError, match='already has MetaDiffuser'):
    mr.merge_run(later_run('again', methods=('MetaDiffuser',)))
  assert json.loads((committed / 'results_test.json').read_text()) == main  # nothing written
  # Another machine's rounding (0.05% of the range) is accepted, and a config section added to
  # the library since the commit is no difference; the added row is normalized by the committed
  # references, as the committed rows are.
  assert mr.merge_run(later_run('udiffuser', {'mtdiff': {'horizon': 32}}, oracle=10.005)) == (
      'toy: test: UDiffuser')
  merged = json.loads((committed / 'results_test.json').read_text())
  assert [r['method'] for r in merged] == ['MetaDiffuser', 'UDiffuser', 'Oracle', 'Random']
  want = _record('UDiffuser', 3.0)
  assert set(merged[1]) == set(want)
  for k, v in want.items():
    assert merged[1][k] == (pytest.approx(v, rel=1e-12) if isinstance(v, float) else v), k
  assert 'UDiffuser' in (committed / 'table_test.txt').read_text()
  assert (committed / 'config_add_udiffuser.json').exists()


def test_a_run_is_added_with_its_evaluations_config(tmp_path, monkeypatch):
  """Seeds trained and evaluated by `train.py` / `evaluate.py` after a pipeline: the workdir's
  `config.json` is the pipeline's, the test evaluation's own config is the one committed."""
  import json  # pylint: disable=g-import-not-at-top
  mr = _make_results()
  monkeypatch.setattr(mr, 'RESULTS', tmp_path / 'results')
  workdir = tmp_path / 'run'
  (workdir / 'eval' / 'test').mkdir(parents=True)
  (workdir / 'config.json').write_text(json.dumps({'family': 'toy', 'train_seeds': [0]}))
  (workdir / 'eval' / 'test' / 'results.json').write_text('[]')
  assert mr.add_run(workdir) == 'toy'
  assert json.loads((tmp_path / 'results' / 'toy' / 'config.json').read_text())[
      'train_seeds'] == [0]  # an evaluation made before evaluations kept their config
  (workdir / 'eval' / 'test' / 'config.json').write_text(
      json.dumps({'family': 'toy', 'train_seeds': [0, 1, 2]}))
  mr.add_run(workdir)
  assert json.loads((tmp_path / 'results' / 'toy' / 'config.json').read_text())[
      'train_seeds'] == [0, 1, 2]


def test_add_sweep_never_overwrites_another_committed_sweep(tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  make_results = _make_results()
  folder = tmp_path / 'eval' / 'validation-sweep-planner.guide_scale'
  folder.mkdir(parents=True)
  (folder / 'results.json').write_text(json.dumps([{'family': 'toy', 'split': 'validation'}]))
  (folder / 'table.txt').write_text('first\n')
  results = tmp_path / 'results'
  assert make_results.add_sweep(folder, results=results) == 'toy/sweeps/guide_scale_validation'
  assert make_results.add_sweep(folder, results=results)  # the same files again: fine
  (folder / 'table.txt').write_text('second\n')
  with pytest.raises(FileExistsError, match='--sweep_name'):
    make_results.add_sweep(folder, results=results)
  assert (results / 'toy' / 'sweeps' / 'guide_scale_validation.txt').read_text() == 'first\n'
  assert make_results.add_sweep(folder, 'guide_form_mean', results=results).endswith(
      'guide_form_mean_validation')


def test_an_augmentation_run_is_copied_once_and_listed_with_its_check(tmp_path, monkeypatch):
  import json  # pylint: disable=g-import-not-at-top
  make_results = _make_results()
  folder = tmp_path / 'eval' / 'test-mtdiff-augment'
  folder.mkdir(parents=True)
  row = lambda method, ret, score: {
      'family': 'point_robot', 'split': 'test', 'method': method, 'mean_return': ret,
      'normalized_score': score, 'ci_low': score - 0.1, 'ci_high': score + 0.1,
      'num_train_seeds': 1, 'num_eval_seeds': 3}
  run = {'records': [row('SAC+CQL (real)', -9.5, 0.47), row('SAC+CQL (real+synthetic)', -7.0, 0.65)],
         'synthetic_check': {'dynamics_error': 0.0156, 'reward_error': 0.0445},
         'settings': {'real_episodes': 1, 'windows_per_task': 64, 'horizon': 8, 'tier': 'expert',
                      'sac': {'hidden': [64, 64], 'cql_weight': 5.0, 'num_updates': 10000,
                              'batch': 256}}}
  (folder / 'results.json').write_text(json.dumps(run))
  results = tmp_path / 'results'
  assert make_results.add_augment(folder, results=results) == 'point_robot/mtdiff_augment/test.json'
  assert make_results.add_augment(folder, results=results)  # the same file again: fine
  (folder / 'results.json').write_text(json.dumps(dict(run, records=run['records'][:1])))
  with pytest.raises(FileExistsError, match='another run'):
    make_results.add_augment(folder, results=results)
  with pytest.raises(ValueError, match='not an augmentation run'):
    make_results.add_augment(tmp_path / 'eval', results=results)
  monkeypatch.setattr(make_results, 'RESULTS', results)
  lines = make_results._augment_lines(['point_robot'])  # pylint: disable=protected-access
  assert '| Point-Robot | test | SAC+CQL (real+synthetic) | -7.00 | 0.65 [0.55, 0.75] | 1 / 3 |' in lines
  assert any('dynamics_error 0.0156, reward_error 0.0445' in l and '64 synthetic 8-step' in l
             for l in lines)
  assert make_results._augment_lines(['ant_dir']) == []  # pylint: disable=protected-access


def test_a_prompt_dt_split_run_is_listed_beside_papers_003_and_004_only(tmp_path, monkeypatch):
  """A run on Prompt-DT's task split gets its own section with the papers' returns, and stays out
  of the every-method table (another split); a run on MetaDiffuser's split gets no such row."""
  import json  # pylint: disable=g-import-not-at-top
  mr = _make_results()
  monkeypatch.setattr(mr, 'RESULTS', tmp_path)
  family = tmp_path / 'cheetah_vel'
  family.mkdir()
  rows = [_record('PromptDT', -40.0, 'expert'), _record('PromptDT-FT', -38.0, 'expert'),
          _record('MTDiff-P', -30.0, 'expert'), _record('Oracle', 10.0), _record('Random', 0.0)]
  for run, split in (('pdt', 'prompt_dt'), ('methods_seed0', None)):
    (family / f'results_test_{run}.json').write_text(json.dumps(rows))
    (family / f'config_{run}.json').write_text(json.dumps(
        {'family': 'cheetah_vel', 'env': {'task_split': split} if split else {}}))
  lines = mr._overlap_lines(['cheetah_vel'])  # pylint: disable=protected-access
  table = [l for l in lines if l.startswith('| Cheetah-Vel')]
  assert [l.split(' | ')[1:4] for l in table] == [['pdt', 'PromptDT', 'expert'],
                                                   ['pdt', 'PromptDT-FT', 'expert'],
                                                   ['pdt', 'MTDiff-P', 'expert']]
  assert table[0].endswith('| -43.5 ± 3.4 (T1) | -34.43 ± 2.33 |')
  assert table[2].endswith('| - | -29.09 ± 0.31 |')
  on_split = mr._prompt_dt_split  # pylint: disable=protected-access
  assert on_split(family, 'pdt') and not on_split(family, 'methods_seed0')
  assert mr._overlap_lines(['point_robot']) == []  # pylint: disable=protected-access
  cheetah_dir = tmp_path / 'cheetah_dir'  # its own split is Prompt-DT's
  cheetah_dir.mkdir()
  (cheetah_dir / 'results_test.json').write_text(json.dumps(rows[:1] + rows[3:]))
  (cheetah_dir / 'results_test_methods_seed0.json').write_text(json.dumps(rows))
  overlap = mr._overlap_lines  # pylint: disable=protected-access
  listed = [l for l in overlap(['cheetah_dir']) if l.startswith('| Cheetah-Dir')]
  assert [l.split(' | ')[1:3] for l in listed] == [['methods_seed0', 'PromptDT'],
                                                  ['methods_seed0', 'PromptDT-FT'],
                                                  ['methods_seed0', 'MTDiff-P']]


def test_the_prompt_tier_runs_fill_the_grid_of_paper_004s_table_2(tmp_path, monkeypatch):
  """004's Table 2 grid: a run without `prompt_tier` gives the diagonal, a run with it the column
  of that prompt tier, each cell beside 004's number; only the runs without it stay in E1's
  table, and no grid is drawn from a diagonal alone."""
  import json  # pylint: disable=g-import-not-at-top
  mr = _make_results()
  monkeypatch.setattr(mr, 'RESULTS', tmp_path)
  family = tmp_path / 'cheetah_vel'
  family.mkdir()
  pd = lambda ret, tier: _record('PromptDiffuser', ret, tier)
  runs = {'pdt': ('', [pd(-50.0, 'expert'), pd(-60.0, 'medium'), pd(-70.0, 'random')]),
          'pdt_prompt_random': ('random', [pd(-51.0, 'expert'), pd(-61.0, 'medium'),
                                           pd(-71.0, 'random')])}
  for run, (prompt_tier, rows) in runs.items():
    (family / f'results_test_{run}.json').write_text(json.dumps(rows))
    (family / f'config_{run}.json').write_text(json.dumps(
        {'family': 'cheetah_vel', 'env': {'task_split': 'prompt_dt'},
         'prompt_dt': {'prompt_tier': prompt_tier}}))
  overlap, grid_lines = mr._overlap_lines, mr._grid_lines  # pylint: disable=protected-access
  e1 = [l for l in overlap(['cheetah_vel']) if l.startswith('| Cheetah-Vel')]
  assert {l.split(' | ')[1] for l in e1} == {'pdt'}
  grid = [l for l in grid_lines(['cheetah_vel']) if l.startswith('| ')]
  cells = {l.split(' | ')[0][2:]: l.split(' | ')[1:] for l in grid[1:]}
  assert cells['expert'][0].startswith('-50.0 [') and cells['expert'][0].endswith(
      '-49.0] / 004: -32.6 ± 1.3')
  assert cells['medium'][1].startswith('-60.0 [')
  assert cells['expert'][1] == '-'  # medium prompts: no run
  assert cells['medium'][2].startswith('-61.0 [') and '(pdt_prompt_random)' in cells['medium'][2]
  assert cells['random'][2].startswith('-70.0 [')  # the diagonal run's, not the grid run's
  (family / 'results_test_pdt_prompt_random.json').unlink()
  assert grid_lines(['cheetah_vel']) == []


def test_the_glance_tables_take_the_every_method_run_first_and_mark_the_main_runs_cells(
    tmp_path, monkeypatch):
  """Tables 1, 3 and 5 at a glance: a method of the every-method run is read from it (even where
  the main run has it too); one only the main run has is marked †; a missing one is '-'; the
  paper's return sits under each cell."""
  import json  # pylint: disable=g-import-not-at-top
  mr = _make_results()
  monkeypatch.setattr(mr, 'RESULTS', tmp_path)
  family = tmp_path / 'point_robot'
  family.mkdir()
  (family / 'results_test.json').write_text(json.dumps(
      [_record('MetaDiffuser', 9.0, 'expert'), _record('FOCAL', 6.0, 'expert')]))
  (family / 'results_test_methods_seed0.json').write_text(json.dumps(
      [_record('MetaDiffuser', 8.0, 'expert', oracle=20.0), _record('PromptDT', 5.0, 'expert'),
       _record('UDiffuser', 1.0)]))
  lines = mr._glance_lines(['point_robot'])  # pylint: disable=protected-access
  table1 = lines[lines.index('### Table 1: every method, expert warm start') + 4:][:2]
  assert table1[0] == ('| Point-Robot | ours: score | 0.60 [0.50, 0.70] † | - | - | '
                       '0.50 [0.40, 0.60] | 0.40 [0.35, 0.45] | 20.00 |')
  assert table1[1] == ('| | paper: return | -5.99 ± 0.26 | -6.11 ± 0.71 | -5.59 ± 0.57 | '
                       '-5.04 ± 0.35 | -4.48 ± 0.28 | -3.97 ± 0.12 |')
  table5 = lines[lines.index('### Table 5: the generative model') + 4]
  assert table5.split(' | ')[2:5] == ['-', '0.10 [0.00, 0.20]', '0.40 [0.35, 0.45]']
