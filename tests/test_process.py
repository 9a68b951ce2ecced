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
