"""The integration tests' helpers, one module per concern (tests/pytest.ini puts tests/ on
sys.path, so a test says `from testlib.mount import Mount`):

    paths    where the source tree, the build and the programs are
    wait     wait_for (until something holds), wait_quiet (until something stops changing)
    proc     Proc, the base of every process a test starts (spawn, log, stop, kill);
             progress() for tools that run long
    twin     Twin: the reference twin (tests/twin/twin.py) and its HTTP API
    mount    Mount: a twinfs daemon on a fresh mount point, always unmounted
    cli      Runner: twinfs run as a user runs it; what it leaves behind
    example  Example: docs/examples/follower_example and its output
    inotify  Inotify: inotifywait -m -r -e create, its lines
    events   the Ping schema, publishing, stream records, reading event files

tests/conftest.py turns them into fixtures (twin, demo_twin, token_twin, runner, fake,
mount_of, inotify). The hostile-input tools stay in tests/reliability (faketwin, chaosproxy)
and are imported as `from faketwin import FakeTwin`.
"""
