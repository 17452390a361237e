"""The materializer's cost, build against build: the same backlog materialized by each
configuration in turn, round after round (interleaved, so that the machine's drift hits them
alike), best round each. Not part of the suite; docs/performance.md quotes its figures.

    mat_compare.py [--events N] [--rounds R] LABEL=BUILD[:OPTION,...] ...

e.g. old=/tmp/old/build-rel new-no-events-dir=build-bench:no_events_dir new=build-bench

The twin holds N Ping events on two assets. Each round mounts each configuration with a
fresh tracker (max_pending above N) and polls `.twinfs/status` until every event is visible.
Reported: events/s materialized once the follower has delivered everything (the suite's
"materialize" figure), and the FUSE requests per event of the whole ingest (every opcode of
the status counters, the polling's own few included).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(1, os.path.dirname(HERE))
sys.path.insert(1, HERE)

from bench import follow_ingest, ingest_rates, load_events  # noqa: E402
from testlib.events import PING  # noqa: E402
from testlib.mount import Mount  # noqa: E402
from testlib.proc import progress  # noqa: E402
from testlib.twin import Twin  # noqa: E402


class BuildMount(Mount):
    """A Mount of the twinfs of a given build dir."""

    def __init__(self, binary, *a, **kw):
        self.binary = binary
        super().__init__(*a, **kw)

    def argv(self):
        return [self.binary] + super().argv()[1:]


def parse_config(text):
    label, _, rest = text.partition("=")
    build, _, opts = rest.partition(":")
    binary = os.path.join(os.path.abspath(build), "mount", "twinfs")
    if not label or not os.access(binary, os.X_OK):
        raise SystemExit("bad configuration %r (no %s)" % (text, binary))
    return label, binary, {o: True for o in opts.split(",") if o}


def one_round(tw, tmp, n, binary, opts):
    m = BuildMount(binary, tw, tmp, max_pending=n + 100, **opts)
    m.start(timeout=60)
    try:
        samples, _ = follow_ingest(m, n)
        st = m.status()
    finally:
        m.stop()
    reqs = {k: v for k, v in st["requests"].items() if v}
    return {"mat": ingest_rates(samples, n)[2], "errors": st["materialize_errors"],
            "requests": reqs, "per_event": sum(reqs.values()) / n}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("configs", nargs="+")
    args = ap.parse_args()
    configs = [parse_config(c) for c in args.configs]
    tmp = tempfile.mkdtemp(prefix="twinfs-matcmp-")
    tw = Twin(tmp)
    tw.start()
    try:
        tw.put_schema("Ping", 1, PING)
        tw.create_asset("a")
        tw.create_asset("b")
        half = args.events // 2
        load_events(tw, "a", half)
        load_events(tw, "b", args.events - half)
        results = {label: [] for label, _, _ in configs}
        for i in range(args.rounds):
            for label, binary, opts in configs:
                r = one_round(tw, tmp, args.events, binary, opts)
                progress("matcmp", "round %d %s: %.0f events/s, %.2f requests/event"
                         % (i + 1, label, r["mat"], r["per_event"]))
                results[label].append(r)
    finally:
        tw.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("| configuration | events/s materialized (best of %d) | rounds | FUSE requests per "
          "event |" % args.rounds)
    print("|---|---|---|---|")
    for label, _, opts in configs:
        rs = results[label]
        print("| %s | %.0f | %s | %.2f |" % (
            label, max(r["mat"] for r in rs), " ".join("%.0f" % r["mat"] for r in rs),
            rs[0]["per_event"]))
    print(json.dumps({label: rs[0]["requests"] for label, rs in results.items()}, indent=1,
                     sort_keys=True))
    if any(r["errors"] for rs in results.values() for r in rs):
        print("materialize errors: %r" % {label: [r["errors"] for r in rs]
                                          for label, rs in results.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
