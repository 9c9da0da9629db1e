"""Schemathesis hooks that aim part of the generated requests at real things.

Requests generated from the schema alone never hold a token a source accepts nor the id of a
config that exists, so creates would all stop at validation with a 400 and every operation on one
config would answer 404: the code behind (storing, encrypting, syncing, the runs and entities of a
config) would go unfuzzed. Here half of the create and validate bodies carry the demo's working
credentials (updates leave the credentials alone, rotations have a grace the server reads), and half of the path parameters name the configs, runs, entities and keys that
prepare.py made; names, flags, settings and every other part still vary as hypothesis likes.
"""

import os
import sys

import schemathesis
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(__file__))
from sources import SOURCES  # noqa: E402

CONFIGS = "/api/v2/security_monitoring/configuration/integration_config"
CREATE = ("POST", CONFIGS)
ROTATE = ("POST", "/api/v2/ctxsync/keys/{key_id}/rotate")
VALIDATE = ("POST", CONFIGS + "/validate")
UPDATE = ("PATCH", CONFIGS + "/{integration_config_id}")


def ids(name):
    return [value for value in os.environ.get(name, "").split(",") if value]


def known_path_values(method, path):
    """Strategies for the path parameters of `path` that name something that exists. DELETE gets
    a config of its own, so the others stay for the rest of the run; a run is named with its own
    config, and confirm and discard each get a held run of their own."""
    configs = ids("FUZZ_DOOMED_ID") if method == "DELETE" else ids("FUZZ_CONFIG_IDS")
    if "{run_id}" in path:
        held = {"confirm_deletions": "FUZZ_HELD_TO_CONFIRM", "discard_deletions": "FUZZ_HELD_TO_DISCARD"}
        own = next((ids(name) for action, name in held.items() if path.endswith(action)), [])
        pairs = [run.split(":") for run in ids("FUZZ_RUNS") + own]
        return st.sampled_from(pairs).map(lambda pair: {"config_id": pair[0], "run_id": pair[1]})
    values = {
        "integration_config_id": configs,
        "config_id": configs,
        "source_id": ids("FUZZ_SOURCE_IDS"),
        "kind": ["user", "group", "device"],
        "key_id": ids("FUZZ_KEYS_TO_ROTATE" if path.endswith("/rotate") else "FUZZ_KEYS_TO_REVOKE"),
        "integration_type": [integration_type for integration_type, _, _ in SOURCES],
    }
    known = {name: st.sampled_from(v) for name, v in values.items() if v and "{" + name + "}" in path}
    return st.fixed_dictionaries(known) if known else None


SETTINGS = st.one_of(
    st.just({}),
    st.fixed_dictionaries({}, optional={"sync_interval": st.sampled_from(["15m", "1h", "1d"])}),
)


def with_credentials(source, creating):
    """A create body (a validation's, without name and enabled) with a source's working secrets."""
    integration_type, domain, secrets = source
    required = {"integration_type": st.just(integration_type), "domain": st.just(domain), "secrets": st.just(secrets)}
    optional = {"settings": SETTINGS}
    if creating:
        required["name"] = st.text(min_size=1, max_size=40).filter(str.strip)
        optional["enabled"] = st.booleans()
    attributes = st.fixed_dictionaries(required, optional=optional)
    return attributes.map(lambda a: {"data": {"type": "integration_config", "attributes": a}})


# Partial updates that leave the credentials alone (every attribute is optional), so an update of
# a real config gets past validation; with five types in the schema's `anyOf`, its own bodies
# nearly always name one whose secrets they lack.
UPDATES = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(min_size=1, max_size=40).filter(str.strip),
        "enabled": st.booleans(),
        "settings": SETTINGS,
    },
).map(lambda a: {"data": {"type": "integration_config", "attributes": a}})

# Rotation bodies with a grace the server reads; the rest of the time the schema's own.
ROTATIONS = st.fixed_dictionaries(
    {"grace": st.sampled_from(["0s", "1h", "24h"])}, optional={"expires_in": st.sampled_from(["1d", "90d"])}
).map(lambda a: {"data": {"type": "key_rotation", "attributes": a}})


@schemathesis.hook
def before_generate_body(context, strategy):
    operation = context.operation
    route = None if operation is None else (operation.method.upper(), operation.path)
    if route == ROTATE:
        return st.one_of(ROTATIONS, strategy)
    if route == UPDATE:
        return st.one_of(UPDATES, strategy)
    if route not in (CREATE, VALIDATE):
        return strategy
    valid = st.sampled_from(SOURCES).flatmap(lambda source: with_credentials(source, route == CREATE))
    return st.one_of(valid, strategy)


@schemathesis.hook
def before_generate_path_parameters(context, strategy):
    operation = context.operation
    if operation is None:
        return strategy
    known = known_path_values(operation.method.upper(), operation.path)
    if known is None:
        return strategy
    return st.tuples(strategy, st.booleans(), known).map(
        lambda drawn: {**drawn[0], **drawn[2]} if drawn[1] else drawn[0]
    )
