"""Where the tests find things: the source tree, the build and the programs they run.

TWINFS_SOURCE (default: the tree this file is in) and TWINFS_BUILD (default SOURCE/build)
name them; the reference twin and every Python child run with Debian's interpreter, which
sees python3-avro and python3-pytest whatever python3 is first on PATH."""

import os

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_ROOT = os.environ.get("TWINFS_SOURCE") or os.path.dirname(TESTS_DIR)
PYTHON = "/usr/bin/python3"
TWIN_PY = os.path.join(SOURCE_ROOT, "tests", "twin", "twin.py")
# What pytest.ini's pythonpath puts on sys.path: testlib, faketwin and chaosproxy, demo.
IMPORT_DIRS = [TESTS_DIR] + [os.path.join(TESTS_DIR, d) for d in ("reliability", "twin")]


def build_dir():
    """The meson build directory (holds mount/twinfs, docs/examples/follower_example)."""
    return os.environ.get("TWINFS_BUILD") or os.path.join(SOURCE_ROOT, "build")


def twinfs_binary():
    return os.path.join(build_dir(), "mount", "twinfs")


def example_path():
    return os.path.join(build_dir(), "docs", "examples", "follower_example")


def child_env(env=None):
    """env (default os.environ) with PYTHONPATH set so that a Python child imports testlib
    and the reliability tools as the tests do."""
    env = dict(os.environ if env is None else env)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join(IMPORT_DIRS + ([old] if old else []))
    return env
