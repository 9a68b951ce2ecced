"""Tests of offload._pool: the invariant, returning threads, races, faults, the state
machine, exit and fork."""
