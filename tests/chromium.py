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

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")
# screenshots and rendered pages of a test run: git-ignored; PEE_TEST_ARTIFACTS moves it
ARTIFACTS = Path(os.environ.get("PEE_TEST_ARTIFACTS")
                 or Path(__file__).resolve().parent.parent / "test-artifacts")


def chromium() -> str:
    """The browser's path; without one the test fails on CI (make test installs it) and is
    skipped elsewhere, saying how to get it."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if found:
        return found
    message = ("Debian chromium is not installed: `make test` installs it as root "
               "(.ci/install-chromium), or apt-get install chromium")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _run(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="pee-chromium-") as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120, check=False)


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
