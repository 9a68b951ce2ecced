"""The Python snippets of the README (and of every page under docs/), pasted into one
file in order, as a reader would: the file runs, and type-checks under mypy --strict.

Snippets share one import style (the names they use, from ``offload``), so pasting
them together never rebinds a name to something else. A snippet that needs what a test
machine has not (a Dask scheduler, a server to serve) defines its code and leaves the
call to the reader; everything else runs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parent.parent
PAGES = [CHECKOUT / "README.md", *sorted((CHECKOUT / "docs").glob("**/*.md"))]
SNIPPET = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def pasted() -> str:
    """Every snippet, in page order, each under a comment saying where it comes from."""
    parts = []
    for page in PAGES:
        for number, found in enumerate(SNIPPET.finditer(page.read_text()), 1):
            parts.append(f"# --- {page.relative_to(CHECKOUT)}, snippet {number}\n{found.group(1)}")
    return "\n\n".join(parts)


@pytest.fixture
def snippets(tmp_path: Path) -> Path:
    path = tmp_path / "snippets.py"
    path.write_text(pasted())
    return path


def test_every_page_has_snippets_in_one_style() -> None:
    text = pasted()
    assert text.count("# --- README.md") >= 3
    # One style: the names, from offload; a bare "import offload" would rebind offload().
    assert not re.search(r"^import offload\b", text, re.MULTILINE)


def test_the_snippets_run_pasted_together(snippets: Path) -> None:
    pytest.importorskip("fastapi")  # the FastAPI snippet builds an app
    done = subprocess.run(
        [sys.executable, str(snippets)], cwd=CHECKOUT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_the_snippets_type_check_pasted_together(snippets: Path) -> None:
    api = pytest.importorskip("mypy.api")
    pytest.importorskip("fastapi")
    out, err, status = api.run(["--strict", "--no-incremental", "--python-version", "3.11", str(snippets)])
    assert status == 0, out + err
