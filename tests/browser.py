"""Headless Chromium (Debian's `chromium` package) driven by Playwright, for the dashboard's tests.

Never `playwright install`: it downloads a browser build, which cannot work on the project's
machines. A missing browser FAILS the tests that need it, with how to install it: a skip would let
CI pass without ever opening the page (`make test` installs it when run as root).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("LAKE_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium's own connections are refused on a closed network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
HOW_TO_INSTALL = ("the dashboard's browser tests need Debian's Chromium at {path}: run `make test` as root "
                  "(it installs it), or `sudo apt-get install -y chromium`; LAKE_CHROMIUM names another binary")


def artefacts_dir() -> Path:
    """Where screenshots go: LAKE_TEST_ARTEFACTS, else <tmp>/lake-test-artefacts."""
    path = Path(os.environ.get("LAKE_TEST_ARTEFACTS") or Path(tempfile.gettempdir()) / "lake-test-artefacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def chromium_page() -> Iterator[tuple[Any, list[str], list[str]]]:
    """A page of a fresh headless Chromium, with the console errors and failed requests it collects."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(HOW_TO_INSTALL.format(path=CHROMIUM))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[dev]' (the Python package only, never "
                    "`playwright install`)")
    profile = tempfile.mkdtemp(prefix="lake-chromium-")
    errors: list[str] = []
    failed: list[str] = []
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                viewport={"width": 1400, "height": 1000},
            )
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
            try:
                yield page, errors, failed
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
