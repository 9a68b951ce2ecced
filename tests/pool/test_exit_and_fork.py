"""Whole-process behaviour, in child interpreters: interpreter exit (fork: test_races)."""

from __future__ import annotations

from ..support.scripts import run_script


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
        import threading, time
        import offload
        from offload._pool import exit

        exit.EXIT_PATIENCE = 0.1  # the seam of exit's patience, in the child
        started = threading.Event()

        def write():
            started.set()
            time.sleep(1.0)
            print("written", flush=True)

        executor = offload.Executor(thread_name_prefix="files")
        executor.submit(write)  # nobody awaits it: still waited for
        started.wait()
        """,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "written\n"
    assert result.stderr == "offload: exit waits for 1 call(s) running or queued on pool 'files': write\n"


def test_a_call_submitted_as_the_program_ends_still_runs() -> None:
    # No thread of the pool has started for it when the main thread reaches exit, and
    # from Python 3.12 none can start then: exit runs it itself.
    result = run_script(
        """
        import offload

        def write():
            print("written", flush=True)

        offload.Executor(thread_name_prefix="files").submit(write)
        """,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("written\n", "")
