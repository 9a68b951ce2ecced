"""Whole-process behaviour, in child interpreters: interpreter exit (fork: test_races)."""

from __future__ import annotations

from .support import run_script


def test_exit_waits_for_running_calls_and_not_for_idle_threads() -> None:
    # Within 30 s, or TimeoutExpired: the hour-long idle thread must not hold up exit.
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
        """,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "finished\n"
    assert result.stderr == ""


def test_exit_does_not_wait_for_a_call_whose_awaiter_was_cancelled() -> None:
    # It was given up on, and may never end (here it waits for ever): its thread ends
    # with the interpreter. Within 30 s, or TimeoutExpired.
    result = run_script(
        """
        import asyncio, threading
        import offload

        started = threading.Event()

        def wait_for_ever():
            started.set()
            threading.Event().wait()

        async def main():
            call = offload.offload(wait_for_ever)
            await asyncio.to_thread(started.wait)
            call.cancel()
            print("cancelled", flush=True)

        asyncio.run(main())
        """,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("cancelled\n", "")


def test_exit_says_which_calls_it_waits_for() -> None:
    result = run_script(
        """
        import time
        import offload
        from offload import _pool

        _pool.EXIT_PATIENCE = 0.1
        executor = offload.Executor(thread_name_prefix="files")
        executor.submit(time.sleep, 1.0)  # nobody awaits it: still waited for
        """,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "offload: exit waits for 1 call(s) running or queued on pool 'files': sleep\n"
