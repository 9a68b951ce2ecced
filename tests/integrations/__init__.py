"""Tests of offload._integrations: Executor, install(), install_anyio(), a FastAPI app."""
