"README.md is the index notebook's text, and CI runs README's own test command."
import json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_matches_index():
    nb = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())
    readme = (ROOT / 'README.md').read_text()
    for c in nb['cells']:
        if c['cell_type'] == 'markdown': assert ''.join(c['source']) in readme


def test_ci_runs_readme_test_command():
    cmds = re.findall(r'```sh\n(.*?)\n```', (ROOT / 'README.md').read_text(), re.S)
    test_cmd = next(c for c in cmds if 'pytest' in c)
    assert test_cmd.startswith('pip install torch==2.13.0')
    assert test_cmd in (ROOT / '.ci' / 'run').read_text()
