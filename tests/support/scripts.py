"""The examples, and child interpreters for what a test process must not do itself."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(source: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs ``source`` in a child interpreter, for what a test process must not do itself."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# A child's prelude: ``exiting`` is set as the interpreter begins to exit, just before
# offload's own exit hook runs (the hooks run newest first), so that a call can go on
# running into exit without depending on how long anything takes. ``write`` is such a
# call: it says it wrote only if exit lets it finish (the sleep only makes a write cut
# short unmistakable; exit waits for it however long it takes).
EXITING = """
import threading, time
import offload

exiting = threading.Event()
threading._register_atexit(exiting.set)
started = threading.Event()

def write():
    started.set()
    exiting.wait()
    time.sleep(0.2)
    print("cancelled:", offload.cancelled(), "- written", flush=True)
"""


def run_exiting(source: str) -> tuple[str, str]:
    """Runs ``EXITING``, then ``source``, in a child interpreter that must exit with 0
    within 30 s (a hang fails the test); returns its (stdout, stderr)."""
    result = run_script(EXITING + textwrap.dedent(source), timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr
