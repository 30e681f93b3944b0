"""Headless Debian Chromium for the report tests: render a page to its DOM or to a PNG.

`make test` (.ci/install-chromium) installs the `chromium` package when it is missing. Each call
gets a new empty profile and the flags that work in a container without a display, GPU or
network: no sandbox (we run as root), no first-run, background networking, component updates or
sync, so nothing is fetched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
# screenshots and rendered pages of a test run: git-ignored; PEE_TEST_ARTIFACTS moves it
ARTIFACTS = Path(
    os.environ.get("PEE_TEST_ARTIFACTS")
    or Path(__file__).resolve().parent.parent / "test-artifacts"
)


def chromium() -> str:
    """The browser's path; without one the test fails on CI (make test installs it) and is
    skipped elsewhere, saying how to get it."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if found:
        return found
    message = (
        "Debian chromium is not installed: `make test` installs it as root "
        "(.ci/install-chromium), or apt-get install chromium"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _run(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="pee-chromium-") as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def dump_dom(page: Path) -> str:
    """The DOM Chromium built from the page, serialised."""
    done = _run(page, "--dump-dom")
    assert 0 == done.returncode and done.stdout, done.stderr[-2000:]
    return done.stdout


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 2000) -> Path:
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    done = _run(page, f"--screenshot={png.resolve()}", f"--window-size={width},{height}")
    assert 0 == done.returncode and png.exists(), done.stderr[-2000:]
    return png


# mermaid.js from the npm registry, installed by .ci/install-mermaid (make test)
MERMAID_JS = (
    Path(__file__).resolve().parent.parent
    / ".cache"
    / "mermaid"
    / "node_modules"
    / "mermaid"
    / "dist"
    / "mermaid.min.js"
)


def mermaid_js() -> Path:
    """mermaid.min.js; without it the test fails on CI where npm exists, else is skipped."""
    if MERMAID_JS.exists():
        return MERMAID_JS
    message = "mermaid.js is not installed: `make test` installs it (.ci/install-mermaid, npm)"
    if os.environ.get("CI") and shutil.which("npm"):
        pytest.fail(message)
    pytest.skip(message)


def mermaid_page(text: str, page: Path) -> Path:
    """A page that renders `text` with mermaid.js and records the outcome on <body>:
    data-result="ok" (the SVG replaces the source) or "error: <message>"."""
    from html import escape

    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        f'<pre id="source">{escape(text)}</pre>'
        f'<script src="{mermaid_js().as_uri()}"></script>'
        "<script>mermaid.initialize({startOnLoad: false, securityLevel: 'strict'});"
        "mermaid.render('chart', document.getElementById('source').textContent).then("
        "r => { document.getElementById('source').outerHTML = r.svg;"
        " document.body.dataset.result = 'ok'; },"
        "e => { document.body.dataset.result = 'error: ' + ((e && (e.message || e.str)) || e); });"
        "</script></body></html>",
        encoding="utf-8",
    )
    return page


def dump_dom_after_scripts(page: Path) -> str:
    """The DOM once the page's scripts ran (virtual time, so nothing waits for the clock)."""
    done = _run(page, "--virtual-time-budget=10000", "--dump-dom")
    assert 0 == done.returncode and done.stdout, done.stderr[-2000:]
    return done.stdout


def screenshot_after_scripts(page: Path, png: Path, width: int = 1280, height: int = 800) -> Path:
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    done = _run(
        page,
        "--virtual-time-budget=10000",
        f"--screenshot={png.resolve()}",
        f"--window-size={width},{height}",
    )
    assert 0 == done.returncode and png.exists(), done.stderr[-2000:]
    return png
