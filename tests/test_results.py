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
