"""A pytest plugin that runs anyio's own test suite with ``offload.install_anyio()``
active for the whole session (see .ci/anyio_suite).

Most tests skipped below inspect anyio's own worker threads, which offload replaces:
each says what it looks at. One races in anyio itself, with or without offload, on a
busy machine: it says how. The session fails if one of them is no longer in the suite
(the list would be stale), or if no call reached offload's pool.
"""

from __future__ import annotations

import pytest

import offload

SKIPPED = {
    "tests/test_to_thread.py::test_asyncio_worker_thread_loop_closed_during_result_report": (
        "waits for anyio's worker to report an abandoned call's outcome through the loop's "
        "call_soon_threadsafe, then for that thread to end with the loop; offload does not wake "
        "the loop for an outcome nobody awaits, and its threads outlive a loop"
    ),
    "tests/test_to_thread.py::test_asyncio_worker_reused_after_cancelled_call": (
        "patches the queue of anyio's WorkerThread (worker.queue), which offload's threads have not"
    ),
    "tests/test_from_thread.py::TestRunAsyncFromThread::test_run_sync_from_thread_pooling": (
        "expects anyio's worker thread to end within 1 s of its event loop; offload's threads serve "
        "every loop of the process and the last idle one stays for the pool's idle_timeout"
    ),
    "tests/test_to_thread.py::TestBlockingPortalProvider::test_single_thread": (
        "compares threading.active_count() before and after; offload's pool threads from earlier "
        "tests retire on their own meanwhile (the portal's own thread is what it means to count)"
    ),
    "tests/test_to_thread.py::TestBlockingPortalProvider::test_multiple_threads": (
        "races without offload too: a ThreadPoolExecutor worker that enters the provider only "
        "after every other lease has ended starts a second portal thread; on a busy 2-core "
        "machine it failed one of five runs of anyio's to_thread and from_thread tests as shipped"
    ),
}


def pytest_configure(config: pytest.Config) -> None:
    offload.install_anyio()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    seen = set()
    for item in items:
        name = item.nodeid.split("[")[0]
        if name in SKIPPED:
            seen.add(name)
            item.add_marker(pytest.mark.skip(reason=f"offload: {SKIPPED[name]}"))
    stale = set(SKIPPED) - seen
    if stale:
        raise pytest.UsageError(f"tests skipped for offload are no longer in anyio's suite: {sorted(stale)}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    completed = offload.default_pool().stats().completed
    print(f"\noffload: {completed} calls ran on offload's default pool")
    if completed == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
