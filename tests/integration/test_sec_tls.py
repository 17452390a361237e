"""Security: TLS is verified by default.

The reference twin serves HTTPS with a self-signed certificate made here with openssl. twinfs
must refuse it without cacert= (one clear line, non-zero exit, no mount, no process left), must
refuse it when the certificate names another host even with cacert=, and must follow it with
cacert=. Every mount made here is unmounted at teardown, also when a test fails."""

import os
import subprocess

import pytest

from testlib.cli import FAILURE, assert_fails, mounted_fs, twinfs_pids, wait_asset
from testlib.twin import Twin
from testlib.wait import wait_for


def make_cert(dirpath, name, san):
    """A self-signed certificate and its key for subjectAltName san; returns (cert, key)."""
    cert = os.path.join(str(dirpath), name + ".pem")
    key = os.path.join(str(dirpath), name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=twinfs-test",
                    "-addext", "subjectAltName=" + san],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_twin(tmp_path):
    cert, key = make_cert(tmp_path, "twin", "IP:127.0.0.1,DNS:localhost")
    tw = Twin(tmp_path, demo=True, tls=(cert, key))
    tw.start()
    try:
        yield tw
    finally:
        tw.stop()


def test_twin_speaks_https(tls_twin):
    assert tls_twin.url.startswith("https://127.0.0.1:")
    assert tls_twin.get_json("/v1/assets")["assets"]


@pytest.mark.parametrize("foreground", [False, True], ids=["daemon", "foreground"])
def test_self_signed_refused_without_cacert(runner, tls_twin, foreground):
    mnt = runner.mountpoint()
    fg = ["-f"] if foreground else []
    r = runner.run(tls_twin.url, mnt, *fg)
    assert_fails(runner, r, mnt, FAILURE, tls_twin.url)
    line = r.stderr.strip()
    # The line has to point at the cause and the cure, not at the twin's protocol.
    assert "certificate" in line or "TLS" in line, line
    assert "cacert=" in line, line
    assert not os.listdir(mnt)


def test_self_signed_refused_with_another_ca(runner, tls_twin, tmp_path):
    """A CA bundle that does not hold the twin's certificate changes nothing."""
    other, _ = make_cert(tmp_path, "other", "IP:127.0.0.1")
    mnt = runner.mountpoint()
    r = runner.run(tls_twin.url, mnt, "-f", "-o", "cacert=" + other)
    assert_fails(runner, r, mnt, FAILURE, tls_twin.url, "cacert=")


def test_wrong_host_refused_even_with_cacert(runner, tmp_path):
    """The name is checked, not just the signature: a certificate for another host is refused
    although its CA is given."""
    cert, key = make_cert(tmp_path, "elsewhere", "DNS:twin.example.org")
    tw = Twin(tmp_path, demo=True, tls=(cert, key))
    tw.start()
    try:
        mnt = runner.mountpoint()
        r = runner.run(tw.url, mnt, "-f", "-o", "cacert=" + cert)
        assert_fails(runner, r, mnt, FAILURE, tw.url)
        assert "certificate" in r.stderr or "TLS" in r.stderr, r.stderr
    finally:
        tw.stop()


def test_cacert_is_trusted(runner, tls_twin):
    mnt = runner.mountpoint()
    r = runner.run(tls_twin.url, mnt, "-o", "cacert=" + tls_twin.tls[0])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert mounted_fs(mnt)[0] == tls_twin.url
    assert twinfs_pids(mnt)
    wait_asset(mnt)
    names = wait_for(lambda: os.listdir(os.path.join(mnt, "assets", "acme-pump-01", "events")),
                     10, "the demo events over https")
    with open(os.path.join(mnt, "assets", "acme-pump-01", "events", sorted(names)[0])) as f:
        assert '"asset": "acme-pump-01"' in f.read()
    with open(os.path.join(mnt, ".twinfs", "status")) as f:
        status = f.read()
    assert '"link": "up"' in status


def test_cacert_missing_file(runner, tls_twin, tmp_path):
    mnt = runner.mountpoint()
    r = runner.run(tls_twin.url, mnt, "-f", "-o", "cacert=%s/none.pem" % tmp_path)
    assert_fails(runner, r, mnt, FAILURE, "cacert=")
