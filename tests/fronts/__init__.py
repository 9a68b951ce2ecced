"""Tests of offload._fronts: processes, Dask, via()."""
