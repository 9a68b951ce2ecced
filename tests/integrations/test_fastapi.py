"""A real FastAPI app (examples/fastapi_app.py) served by uvicorn in a child process on
127.0.0.1, asked by an HTTP client: its ``def`` endpoints and its sync dependency run on
offload's pool once ``install_anyio()`` is on, and on anyio's threads otherwise."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from benchmarks._web import served, server_figures  # noqa: E402  # after the skips

from ..support.loops import LOOP_FACTORIES  # noqa: E402

REQUESTS = 40


async def ask(port: int) -> tuple[list[str], dict[str, object]]:
    """Sleeps and queries at once, REQUESTS of each; the threads that answered, and one
    answer of the query."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        replies = await asyncio.gather(
            *(client.get("/sleep", params={"ms": 20}) for _ in range(REQUESTS)),
            *(client.get(f"/items/{n}") for n in range(REQUESTS)),
        )
    assert [reply.status_code for reply in replies] == [200] * 2 * REQUESTS
    answers = [reply.json() for reply in replies]
    return [answer["thread"] for answer in answers], answers[REQUESTS + 7]


@pytest.mark.parametrize("loop", sorted(LOOP_FACTORIES))
def test_def_endpoints_run_on_offloads_pool(loop: str) -> None:
    with served("offload", loop) as port:
        before = server_figures(port)["pool_completed"]
        threads, answer = asyncio.run(ask(port))
        figures = server_figures(port)
    assert answer == {"n": 7, "square": 49, "thread": answer["thread"]}
    assert all(name.startswith("offload-") for name in threads), set(threads)
    # Each /items call runs the dependency's setup and teardown besides the endpoint.
    assert figures["pool_completed"] - before >= 2 * REQUESTS  # type: ignore[operator]
    assert figures["mode"] == "offload"


def test_without_install_anyio_they_run_on_anyios_threads() -> None:
    with served("anyio") as port:
        threads, _ = asyncio.run(ask(port))
        figures = server_figures(port)
    assert set(threads) == {"AnyIO worker thread"}
    assert figures["pool_completed"] == 0
