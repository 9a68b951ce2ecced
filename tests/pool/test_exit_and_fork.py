"""Whole-process behaviour, in child interpreters: interpreter exit (fork: test_races)."""

from __future__ import annotations

from ..support.scripts import run_exiting, run_script


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


def test_exit_completes_a_started_write_whose_awaiter_was_cancelled() -> None:
    # asyncio.run() cancels the background task at its end; the write has started, so
    # it runs to its end, as under asyncio.to_thread.
    assert run_exiting(
        """
        import asyncio

        async def background():
            await offload.offload(write)

        async def main():
            asyncio.create_task(background())
            await asyncio.to_thread(started.wait)

        asyncio.run(main())
        """
    ) == ("cancelled: True - written\n", "")


def test_exit_says_which_cancelled_call_it_waits_for() -> None:
    # The call ends only once exit has said it waits for it: a call blocked for ever
    # holds exit, with the message naming it, rather than being lost in silence.
    assert run_exiting(
        """
        import asyncio, logging, sys
        from offload._pool import exit

        exit.EXIT_PATIENCE = 0.1  # the seam of exit's patience, in the child
        said = threading.Event()

        class Tell(logging.Handler):
            def emit(self, record):
                print(record.getMessage(), file=sys.stderr, flush=True)
                said.set()

        logging.getLogger("offload").addHandler(Tell())

        def write_when_told():
            started.set()
            said.wait()
            print("written", flush=True)

        async def main():
            call = offload.offload(write_when_told)
            await asyncio.to_thread(started.wait)
            call.cancel()

        asyncio.run(main())
        """
    ) == (
        "written\n",
        "offload: exit waits for 1 call(s) running or held on pool 'offload': write_when_told\n",
    )


def test_exit_leaves_an_abandonable_call_whose_awaiter_was_cancelled() -> None:
    # Said explicitly to be abandonable, and given up on: its thread ends with the
    # interpreter, though it waits for ever.
    assert run_exiting(
        """
        import asyncio

        def wait_for_ever():
            started.set()
            threading.Event().wait()

        async def main():
            call = offload.offload(offload.abandonable(wait_for_ever))
            await asyncio.to_thread(started.wait)
            call.cancel()
            print("cancelled", flush=True)

        asyncio.run(main())
        """
    ) == ("cancelled\n", "")


def test_exit_waits_for_an_abandonable_call_still_awaited() -> None:
    assert run_exiting(
        """
        import asyncio

        async def main():
            offload.offload(offload.abandonable(write))  # not awaited, never cancelled
            await asyncio.to_thread(started.wait)

        asyncio.run(main())
        """
    ) == ("cancelled: False - written\n", "")


def test_exit_runs_the_calls_a_limiter_holds_within_its_bound() -> None:
    # The first call holds the Limiter's one place until exit has begun; the others,
    # held until then, run one at a time, though the pool is shut down.
    assert run_exiting(
        """
        import asyncio

        limiter = offload.Limiter(1)
        running = 0

        def write(n):
            global running
            running += 1
            if n == 0:
                exiting.wait()
            print("written", n, "alone" if running == 1 else "beside another", flush=True)
            running -= 1

        async def main():
            for n in range(3):
                limiter.run(write, n)  # not awaited: exit sees them through
            await asyncio.sleep(0)

        asyncio.run(main())
        """
    ) == ("written 0 alone\nwritten 1 alone\nwritten 2 alone\n", "")


def test_calls_run_by_the_exiting_thread_see_their_call() -> None:
    # The pool's one thread is busy until the second call has started, so only the
    # exiting thread can run it; inside it, offload.cancelled() and call_on_loop()
    # answer as in a pool thread (the loop has closed by then).
    assert run_exiting(
        """
        import asyncio

        pool = offload.Pool(max_threads=1)
        first_started, second_started = threading.Event(), threading.Event()

        def first():
            first_started.set()
            second_started.wait()

        def second():
            second_started.set()
            on_main = threading.current_thread() is threading.main_thread()
            print("on the main thread:", on_main, "cancelled:", offload.cancelled(), flush=True)
            try:
                offload.call_on_loop(print, "never")
            except RuntimeError as error:
                print(error, flush=True)

        async def main():
            pool.run(first)
            await asyncio.to_thread(first_started.wait)
            pool.run(second)

        asyncio.run(main())
        """
    ) == (
        "on the main thread: True cancelled: False\ncall_on_loop(): the event loop is not running\n",
        "",
    )


def test_a_call_submitted_after_exit_began_is_refused_saying_so() -> None:
    # A non-daemon thread still working as the interpreter exits: the pools take no new
    # call then, and the error says why.
    assert run_exiting(
        """
        import asyncio

        async def call():
            await offload.offload(int)

        def late():
            exiting.wait()
            try:
                asyncio.run(call())
            except offload.PoolClosedError as error:
                print(error, flush=True)

        threading.Thread(target=late).start()
        """
    ) == (
        "pool 'offload' takes no new call: the interpreter is exiting, and it runs only the calls "
        "submitted before\n",
        "",
    )


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
    assert result.stderr == "offload: exit waits for 1 call(s) running or held on pool 'files': write\n"


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
