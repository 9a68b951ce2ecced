"""Fronts: the same ``await`` on other executors: processes, a Dask cluster, any
``concurrent.futures`` executor."""
