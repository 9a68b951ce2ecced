"""The elastic thread pool and its invariant (pool.py); its threads' life (threads.py);
what it runs (contract.py); interpreter exit (exit.py, imported here so that its hook
is registered with the pool)."""

from . import exit as exit
