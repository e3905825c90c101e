"""Run the notebooks: every module notebook's test cells (nbdev_test) and every tutorial (nbval).

nbval and nbdev_clean disagree on execution counts: nbdev_clean strips them from committed notebooks,
and nbval refuses cells that have outputs but no execution count. The bridge: nbval runs on a copy of
each tutorial with its code cells numbered in order; the committed notebook stays clean.
"""
import json, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / 'nbs' / 'tutorials').glob('*.ipynb'))
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}


def test_module_notebooks():
    "The test cells of nbs/*.ipynb (what `nbdev_test` runs), two notebooks at a time."
    r = subprocess.run(['nbdev_test', '--path', 'nbs', '--n_workers', '2', '--timing',
                        '--skip_folder_re', '^(tutorials|[_.])'], cwd=ROOT, env=ENV, capture_output=True, text=True)
    print(r.stdout[-5000:], r.stderr[-5000:])
    assert r.returncode == 0, 'nbdev_test failed:\n' + r.stdout[-5000:] + r.stderr[-5000:]


def numbered_copy(src: Path, dst: Path) -> Path:
    "Copy notebook `src` to `dst` with execution counts 1, 2, ... on code cells and their outputs."
    nb = json.loads(src.read_text())
    n = 0
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        n += 1; c['execution_count'] = n
        for o in c.get('outputs', []):
            if 'execution_count' in o: o['execution_count'] = n
    dst.write_text(json.dumps(nb))
    return dst


@pytest.mark.parametrize('nb', TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial(nb, tmp_path):
    "Each tutorial runs top to bottom under nbval (lax: outputs are for readers, cells marked NBVAL_CHECK_OUTPUT are compared)."
    copy = numbered_copy(nb, tmp_path / nb.name)
    r = subprocess.run([sys.executable, '-m', 'pytest', '--nbval-lax', '-q', '-p', 'no:cacheprovider', str(copy)],
                       cwd=tmp_path, env=ENV, capture_output=True, text=True)
    print(r.stdout[-5000:], r.stderr[-3000:])
    assert r.returncode == 0, f'{nb.name} failed under nbval:\n' + r.stdout[-5000:]
