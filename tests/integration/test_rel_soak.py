"""The soak test in its quick form (tests/reliability/soak.py --quick): 20k events published
while a fault-injecting proxy cuts, stalls, delays and refuses twinfs's connections, the twin
is killed -9 and restarted 5 times, twinfs is killed -9 and remounted 5 times, and 4 consumer
processes read and unlink concurrently. soak.py checks every guarantee and fails the run
with the list of what broke; the long form (200k events) is run by hand, see
docs/reliability.md."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOAK = os.path.join(os.path.dirname(HERE), "reliability", "soak.py")


def test_soak_quick(tmp_path):
    out = tmp_path / "soak.json"
    work = tmp_path / "work"
    p = subprocess.run([sys.executable, SOAK, "--quick", "--json", str(out),
                        "--workdir", str(work)], capture_output=True, text=True, timeout=600)
    sys.stdout.write(p.stdout[-6000:])
    sys.stderr.write(p.stderr[-6000:])
    assert out.exists(), "soak.py did not finish:\n" + p.stdout[-3000:] + p.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["failures"] == [], r["failures"]
    assert p.returncode == 0
    assert r["events_in_twin_log"] >= 20000
    assert r["events_consumed_unique"] == r["events_in_twin_log"]
    # no acked event can be opened again; a listing showing one for a few microseconds is a
    # known fs/ finding (docs/reliability.md), reported in the counts
    assert r["shown_after_ack_by_open"] == 0
    assert r["twin_restarts"] == 5 and r["twinfs_kills"] == 5
    assert r["twinfs_crashes"] == 0
    assert r["proxy"]["cuts"] > 0
    # nothing left behind: no mount, no process of the run
    mounts = open("/proc/mounts").read()
    assert str(work) not in mounts
