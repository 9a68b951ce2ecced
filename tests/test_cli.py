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


def watch(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "offload", "watch", "--threshold", "50", "--", str(script), *args],
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


@pytest.mark.parametrize(
    ("source", "summary"),
    [
        (
            "import asyncio\nasyncio.run(asyncio.sleep(0))\n",
            "offload watch: the event loop was never blocked longer than 50 ms.\n",
        ),
        (
            "print('no loop')\n",
            "offload watch: the script ran no event loop through asyncio.run(), "
            "asyncio.Runner, uvloop.run() or offload.run(), so none was watched.\n",
        ),
    ],
    ids=["no block", "no loop"],
)
def test_the_summary_says_when_nothing_blocked(tmp_path: Path, source: str, summary: str) -> None:
    result = watch(tmp_path, source)
    assert (result.returncode, result.stderr) == (0, summary)
