"""Helpers shared by the test_fs_* modules: a tiny schema and publishing in bulk."""

import json
import os

PING = {"type": "record", "name": "Ping", "fields": [{"name": "n", "type": "long"}]}


def setup_ping(twin, assets=()):
    """Registers schema Ping v1 and creates the assets."""
    twin.put_schema("Ping", 1, PING)
    for a in assets:
        twin.create_asset(a)


def publish_pings(twin, asset, count, start=0, batch=5000):
    """Publishes Ping events n=start..start+count-1 on asset, in batches."""
    n = start
    while n < start + count:
        k = min(batch, start + count - n)
        twin.publish_batch([{"asset": asset, "name": "Ping", "version": 1, "source": "test",
                             "data": {"n": i}} for i in range(n, n + k)])
        n += k


def read_json(path):
    with open(path, "rb") as f:
        return json.loads(f.read())


def event_files(m, asset):
    try:
        return os.listdir(m.events_dir(asset))
    except FileNotFoundError:
        return []
