"""Tests of offload._inside: calls back into the loop from a pool thread."""
