"""Tests of offload._submitters: offload(), the default pool, Limiter, @blocking."""
