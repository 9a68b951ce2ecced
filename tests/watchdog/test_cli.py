"""python -m offload watch -- script.py args: the script runs as it would alone, with its
event loops watched, and a summary of the blocks follows it on stderr."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BLOCKING_SCRIPT = """\
import asyncio, sys, time

async def main():
    time.sleep(0.2)  # line 4: blocks the loop
    await asyncio.sleep(0.01)  # the loop turns
    time.sleep(0.2)  # line 6: blocks it again

print("argv:", sys.argv[1:])
if sys.argv[1] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
sys.exit(3)
"""


def watch(tmp_path: Path, source: str, *args: str, threshold: str = "50") -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(source)
    return python("-m", "offload", "watch", "--threshold", threshold, "--", str(script), *args)


def python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_summary_names_each_place_that_blocked(tmp_path: Path, loop_name: str) -> None:
    result = watch(tmp_path, BLOCKING_SCRIPT, loop_name, "--flag")
    assert result.returncode == 3, result.stderr
    assert result.stdout == f"argv: ['{loop_name}', '--flag']\n"
    assert re.match(
        r"offload watch: the event loop was blocked longer than 50 ms 2 times, at 2 places; "
        r"the worst: \d+ ms\.\n",
        result.stderr,
    ), result.stderr
    script = tmp_path / "script.py"
    for line in (4, 6):
        assert f"{script}:{line}, in main\n      time.sleep(0.2)" in result.stderr
    assert result.stderr.count("Once here:") == 2


NO_LOOP = (
    "offload watch: the script ran no event loop through asyncio.run(), "
    "asyncio.Runner, uvloop.run() or offload.run(), so none was watched.\n"
)


@pytest.mark.parametrize(
    ("source", "summary"),
    [
        (
            "import asyncio\nasyncio.run(asyncio.sleep(0))\n",
            "offload watch: the event loop was never blocked longer than 50 ms.\n",
        ),
        ("print('no loop')\n", NO_LOOP),
    ],
    ids=["no block", "no loop"],
)
def test_the_summary_says_when_nothing_blocked(tmp_path: Path, source: str, summary: str) -> None:
    result = watch(tmp_path, source)
    assert (result.returncode, result.stderr) == (0, summary)


WAITS_FOR_THE_WATCHDOG = """\
import asyncio, sys, threading, time

async def main():
    # Until the watchdog's thread is in its first wait, past the point where a timeout
    # too long for threading fails, or has died trying: either way, the outcome is known.
    [watchdog] = [t for t in threading.enumerate() if t.name == "offload-watchdog"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(watchdog.ident)
        if frame is None or frame.f_code is threading.Condition.wait.__code__:
            break
        await asyncio.sleep(0.001)

asyncio.run(main())
"""


def test_a_threshold_longer_than_a_thread_can_wait_means_never(tmp_path: Path) -> None:
    result = watch(tmp_path, WAITS_FOR_THE_WATCHDOG, threshold="1e14")  # 3 million years
    assert (result.returncode, result.stderr) == (
        0,
        "offload watch: the event loop was never blocked longer than 1e+14 ms.\n",
    )


def test_a_bad_threshold_says_what_is_accepted(tmp_path: Path) -> None:
    result = watch(tmp_path, "print('never run')\n", threshold="nan")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.endswith(
        "python -m offload watch: error: argument --threshold: "
        "a threshold must be a positive number of milliseconds, not 'nan'\n"
    ), result.stderr


def test_a_missing_script_is_one_line_as_with_python(tmp_path: Path) -> None:
    missing = tmp_path / "missing.py"
    result = python("-m", "offload", "watch", "--", str(missing))
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        f"python -m offload watch: can't open file '{missing}': [Errno 2] No such file or directory\n",
    )
    alone = python(str(missing))
    assert alone.returncode == 2
    assert alone.stderr.endswith(f": can't open file '{missing}': [Errno 2] No such file or directory\n")


RAISES = """\
import asyncio

def fail():
    raise ValueError("from the script")

async def main():
    await asyncio.sleep(0)
    fail()

try:
    {}[1]
except KeyError:
    asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("source", "summary"),
    [
        (
            RAISES,
            "offload watch: the event loop was never blocked longer than 50 ms.\n",
        ),
        ("def broken(:\n", ""),  # the script never runs: no summary
        ("raise SystemExit(4)\n", NO_LOOP),
        ("import sys\nsys.exit('the end')\n", NO_LOOP),
        ("raise KeyboardInterrupt\n", NO_LOOP),  # python then dies of SIGINT
    ],
    ids=["raises", "syntax error", "exit status", "exit message", "interrupted"],
)
def test_a_script_ends_as_it_would_alone(tmp_path: Path, source: str, summary: str) -> None:
    watched = watch(tmp_path, source)
    alone = python(str(tmp_path / "script.py"))
    assert watched.returncode == alone.returncode
    # The script's output, then the summary; python prints a SystemExit's message as it
    # exits, after the summary.
    if "sys.exit" in source:
        assert watched.stderr == summary + alone.stderr
    else:
        assert watched.stderr == alone.stderr + summary
