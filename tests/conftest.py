import os, sys
# Two cores are shared by the test runner and the notebook kernels: one torch thread per process avoids
# OpenMP oversubscription, which slows small CPU models down by an order of magnitude.
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('MKL_NUM_THREADS', '1')


def pytest_terminal_summary(terminalreporter):
    "After a run that ran tutorials: each one's wall time under nbval (they run two at a time)."
    mods = [m for name, m in list(sys.modules.items()) if name.split('.')[-1] == 'test_notebooks']
    times = getattr(mods[0], 'TIMES', {}) if mods else {}
    if not times: return
    each = ', '.join(f'{k} {v:.0f} s' for k, v in times.items())
    total = sum(times.values())
    terminalreporter.write_line(f'tutorial wall times under nbval (two at a time): {each}; sum {total:.0f} s')
