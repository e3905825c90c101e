"""Run the notebooks: every module notebook's test cells (nbdev_test) and every tutorial (nbval).

nbval and nbdev_clean disagree on execution counts: nbdev_clean strips them from committed notebooks,
and nbval refuses cells that have outputs but no execution count. The bridge: nbval runs on a copy of
each tutorial with its code cells numbered in order; the committed notebook stays clean.

Each notebook kernel uses one torch thread, so the selected tutorials run two at a time (CI has two cores;
MMDIFF_NB_WORKERS changes it), the longest first; each test waits for its own tutorial and reports its time.
"""
import json, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
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


TIMES: dict[str, float] = {}     # tutorial -> seconds under nbval (conftest prints them at the end of the run)
LONGEST_FIRST = ('01_text_diffusion', '04_one_model_two_directions', '06_one_model_blocks')   # the slowest tutorials


def run_nbval(nb: Path, tmp: Path) -> tuple[subprocess.CompletedProcess, float]:
    """Run tutorial `nb` top to bottom under nbval in folder `tmp` (lax: outputs are for readers, cells marked
    NBVAL_CHECK_OUTPUT are compared); the finished process and its wall time in seconds."""
    copy = numbered_copy(nb, tmp / nb.name)
    t0 = time.time()
    r = subprocess.run([sys.executable, '-m', 'pytest', '--nbval-lax', '-q', '-p', 'no:cacheprovider', str(copy)],
                       cwd=tmp, env=ENV, capture_output=True, text=True)
    return r, time.time() - t0


@pytest.fixture(scope='session')
def tutorial_runs(request, tmp_path_factory):
    "Start every selected tutorial in a pool of MMDIFF_NB_WORKERS (default 2) lanes; {stem: future}."
    chosen = [item.callspec.params['nb'] for item in request.session.items
              if item.originalname == 'test_tutorial' and hasattr(item, 'callspec')]
    rank = {stem: i for i, stem in enumerate(LONGEST_FIRST)}
    chosen.sort(key=lambda p: rank.get(p.stem, len(rank)))                  # stable: the rest keep their order
    pool = ThreadPoolExecutor(max_workers=int(os.environ.get('MMDIFF_NB_WORKERS', '2')))
    runs = {nb.stem: pool.submit(run_nbval, nb, tmp_path_factory.mktemp(nb.stem)) for nb in chosen}
    yield runs
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize('nb', TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial(nb, tutorial_runs):
    "Each tutorial runs top to bottom under nbval (started by `tutorial_runs`, two at a time)."
    r, seconds = tutorial_runs[nb.stem].result()
    TIMES[nb.stem] = seconds
    print(f'{nb.name}: {seconds:.0f} s under nbval')
    print(r.stdout[-5000:], r.stderr[-3000:])
    assert r.returncode == 0, f'{nb.name} failed under nbval:\n' + r.stdout[-5000:]
