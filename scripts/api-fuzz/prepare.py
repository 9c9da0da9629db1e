"""Gives the fuzzing run real things to aim at: one config of each type (and one more for DELETE to
remove), created with the demo's credentials, each synced once, and runs whose deletions are held
(a tenant emptied, then synced again) for the confirm and discard routes, and a key pair. Prints `export`
lines naming their ids, their runs (as config:run pairs) and a few entities' source ids, for hooks.py to mix into
the path parameters it generates; ids drawn from the schema alone almost always answer 404.
"""

import json
import os
import sys
import time
import urllib.request

BASE = sys.argv[1]
HEADERS = {
    "DD-API-KEY": os.environ["DD_API_KEY"],
    "DD-APPLICATION-KEY": os.environ["DD_APP_KEY"],
    "Content-Type": "application/json",
}
CONFIGS = "/api/v2/security_monitoring/configuration/integration_config"

sys.path.insert(0, os.path.dirname(__file__))
from sources import SOURCES  # noqa: E402


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method, headers=HEADERS)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def create(integration_type, domain, secrets, name):
    attributes = {"integration_type": integration_type, "name": name, "domain": domain, "secrets": secrets}
    body = {"data": {"type": "integration_config", "attributes": attributes}}
    return call("POST", CONFIGS, body)["data"]["id"]


def finished_runs(config_id, at_least=1):
    """The config's finished runs, waiting up to 60 s for `at_least` of them."""
    for _ in range(600):
        runs = call("GET", f"/api/v2/ctxsync/integration_configs/{config_id}/sync_runs")["data"]
        done = [r for r in runs if r["attributes"]["status"] != "running"]
        if len(done) >= at_least:
            return done
        time.sleep(0.1)
    sys.exit(f"{config_id} did not finish {at_least} sync run(s) within 60 s")


def held_run(config_id, endpoint, fake):
    """Empties a fake tenant and syncs its config again: the guard holds every deletion back. The
    held run may be the one asked for or one the scheduler started first."""
    finished_runs(config_id)
    with open(os.environ["FUZZ_DEMO_JSON"], encoding="utf-8") as f:
        base = json.load(f)["endpoints"][endpoint]
    urllib.request.urlopen(urllib.request.Request(f"{base}/_fake/{fake}/clear_users", method="POST"), timeout=30)
    call("POST", f"/api/v2/ctxsync/integration_configs/{config_id}/sync")
    for _ in range(600):
        runs = call("GET", f"/api/v2/ctxsync/integration_configs/{config_id}/sync_runs")["data"]
        held = [r for r in runs if r["attributes"]["status"] == "held"]
        if held:
            return held[0]
        time.sleep(0.1)
    sys.exit(f"no run of {config_id} held its deletions within 60 s of emptying the tenant")


configs = [create(t, d, s, f"fuzz target {t.lower()}") for t, d, s in SOURCES]
doomed = create(*SOURCES[0], "fuzz target for DELETE")
runs = [f"{config}:{run['id']}" for config in configs for run in finished_runs(config)]
users = call("GET", "/api/v2/ctxsync/entities?filter%5Bkind%5D=user&page%5Bsize%5D=3")["data"]
# A held run each for confirm and discard, of configs no other operation is aimed at: confirming,
# discarding or a newer run all leave a run no longer held.
held = [
    f"{config}:{held_run(config, endpoint, fake)['id']}"
    for config, endpoint, fake in [
        (create(*SOURCES[1], "fuzz target for confirm"), "CTXSYNC_GOOGLE_DIRECTORY_BASE_URL", "google"),
        (create(*SOURCES[2], "fuzz target for discard"), "CTXSYNC_GRAPH_BASE_URL", "entra"),
    ]
]
# Key pairs of their own for the revoke and rotate routes to aim at: one each, since a revoked key
# can no longer be rotated.
for route in ("REVOKE", "ROTATE"):
    pair = call("POST", "/api/v2/ctxsync/keys", {"data": {"type": "key_pair", "attributes": {}}})["data"]
    print(f"export FUZZ_KEYS_TO_{route}={pair['attributes']['api_key_id']},{pair['attributes']['app_key_id']}")
print(f"export FUZZ_CONFIG_IDS={','.join(configs)}")
print(f"export FUZZ_DOOMED_ID={doomed}")
print(f"export FUZZ_HELD_TO_CONFIRM={held[0]}")
print(f"export FUZZ_HELD_TO_DISCARD={held[1]}")
print(f"export FUZZ_RUNS={','.join(runs)}")
print(f"export FUZZ_SOURCE_IDS={','.join(u['attributes']['source_id'] for u in users)}")
