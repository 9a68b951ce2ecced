"""Helpers for the tests, one module per concern: the loops to run on (loops.py),
polling with a deadline (polling.py), pools under test (pools.py), the examples and
child interpreters (scripts.py), and the seams into offload's private modules
(seams.py, the only one that reaches them)."""
