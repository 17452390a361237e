"""The fixtures every test module may use; the helpers behind them are in testlib/. A fixture
of one module's own stays in that module."""

import json
import os
import shutil
import tempfile

import pytest

from faketwin import Answer, FakeTwin
from testlib.cli import Runner
from testlib.events import PING
from testlib.inotify import Inotify
from testlib.mount import Mount
from testlib.twin import Twin


def _running(proc):
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def twin(tmp_path):
    """A fresh, empty reference twin with test hooks on; stopped at teardown."""
    yield from _running(Twin(tmp_path, test_hooks=True))


@pytest.fixture
def demo_twin(tmp_path):
    """A reference twin loaded with the demo data set (--demo), test hooks on."""
    yield from _running(Twin(tmp_path, demo=True, test_hooks=True))


@pytest.fixture
def token_twin(tmp_path):
    """A demo twin that wants a bearer token (token_twin.token)."""
    yield from _running(Twin(tmp_path, demo=True, token="s3cr3t-Tok3n-7f1d2a"))


@pytest.fixture
def runner(tmp_path):
    """Runs the twinfs program (testlib.cli.Runner); every mount and process goes at
    teardown."""
    r = Runner(tmp_path)
    try:
        yield r
    finally:
        r.cleanup()


@pytest.fixture
def fake():
    """A FakeTwin (tests/reliability/faketwin.py) that serves schema Ping v1."""
    ft = FakeTwin(heartbeat=1.0)
    ft.schemas[("Ping", 1)] = Answer(200, "application/json", json.dumps(PING))
    ft.start()
    try:
        yield ft
    finally:
        ft.stop()


def _starter(make):
    """The body of a factory fixture: the fixture is a function that builds a process with
    make(...) and starts it; every process it made is stopped at teardown."""
    made = []

    def start(*args, **kw):
        p = make(*args, **kw)
        made.append(p)
        return p.start()

    yield start
    for p in made:
        p.stop()


@pytest.fixture
def mount_of(tmp_path):
    """mount_of(fake_twin, **opts): a started Mount on a FakeTwin; unmounted at teardown."""
    yield from _starter(lambda ft, **opts: Mount(None, tmp_path, url=ft.url, **opts))


@pytest.fixture
def inotify(tmp_path):
    """inotify(root): a started Inotify on root; stopped at teardown."""
    yield from _starter(lambda root: Inotify(root, tmp_path))


@pytest.fixture
def shared_dir():
    """A scratch directory that uid 65534 can traverse (pytest's tmp_path is private to
    root); removed at teardown."""
    d = tempfile.mkdtemp(prefix="twinfs-shared-")
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
