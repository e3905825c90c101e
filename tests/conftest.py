import os
# Two cores are shared by the test runner and the notebook kernels: one torch thread per process avoids
# OpenMP oversubscription, which slows small CPU models down by an order of magnitude.
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('MKL_NUM_THREADS', '1')
