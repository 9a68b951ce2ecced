"""Whole-process behaviour, in child interpreters: fork, and interpreter exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time


def run_script(source: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_fork_with_a_busy_pool_leaves_the_child_a_working_empty_pool() -> None:
    result = run_script(
        """
        import asyncio, os, threading, warnings
        import offload

        release = threading.Event()

        async def start_busy_call():
            offload.offload(release.wait)  # left running on purpose

        asyncio.run(start_busy_call())
        while offload.default_pool().stats().busy != 1:
            pass
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, on 3.12+
            pid = os.fork()
        if pid == 0:
            before = offload.default_pool().stats()
            async def child():
                return await offload.offload(sum, [1, 2])
            result = asyncio.run(child())
            ok = (before.threads, before.busy, before.queued, result) == (0, 0, 0, 3)
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        release.set()
        print("child exit", os.waitstatus_to_exitcode(status))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "child exit 0"


def test_exit_waits_for_running_calls_and_not_for_idle_threads() -> None:
    started = time.monotonic()
    result = run_script(
        """
        import asyncio, threading, time
        import offload

        lingering = offload.Pool(idle_timeout=3600, name="lingering")
        running = threading.Event()

        def slow_write():
            running.set()
            time.sleep(0.2)
            print("finished", flush=True)

        async def main():
            await lingering.run(int)  # leaves an idle thread, for an hour
            offload.offload(slow_write)  # still running when the program ends
            await asyncio.to_thread(running.wait)

        asyncio.run(main())
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "finished\n"
    assert result.stderr == ""
    assert time.monotonic() - started < 30  # the hour-long idle thread did not hold up exit
