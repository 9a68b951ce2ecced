"""offload behind other APIs: ``concurrent.futures`` (``Executor``), asyncio's default
executor (``install()``), and anyio's worker threads (``install_anyio()``)."""
