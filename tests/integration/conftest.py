"""Shared pytest fixtures of the integration tests. Keep this small: add fixtures of your own
area in your own test module. twinctl.py (next to this file) drives the reference twin."""

import os

import pytest

from cliutil import Runner
from twinctl import SOURCE_ROOT, Twin


def build_dir():
    """The meson build directory holding build/mount/twinfs etc. (env TWINFS_BUILD, default
    <repo>/build)."""
    return os.environ.get("TWINFS_BUILD") or os.path.join(SOURCE_ROOT, "build")


@pytest.fixture
def twin(tmp_path):
    """A fresh, empty reference twin with test hooks on; stopped at teardown."""
    tw = Twin(tmp_path, test_hooks=True)
    tw.start()
    try:
        yield tw
    finally:
        tw.stop()


@pytest.fixture
def demo_twin(tmp_path):
    """A reference twin loaded with the demo data set (--demo), test hooks on."""
    tw = Twin(tmp_path, demo=True, test_hooks=True)
    tw.start()
    try:
        yield tw
    finally:
        tw.stop()


@pytest.fixture
def runner(tmp_path):
    """Runs the twinfs program (cliutil.Runner); every mount and process goes at teardown."""
    r = Runner(tmp_path)
    try:
        yield r
    finally:
        r.cleanup()
