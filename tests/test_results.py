"""`results/README.md` is generated, never typed: regenerating it from the committed result files
reproduces it exactly."""
import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


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
