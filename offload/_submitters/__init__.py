"""The ways into a pool: ``offload()`` and the default pool, ``Limiter``, ``@blocking``."""
