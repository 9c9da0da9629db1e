"""The demo's sources as create attributes: integration type, domain and working secrets,
read from the demo folder's `demo.json` (FUZZ_DEMO_JSON)."""

import json
import os

with open(os.environ["FUZZ_DEMO_JSON"], encoding="utf-8") as f:
    _DEMO = json.load(f)["credentials"]

SOURCES = [
    ("OKTA", "acme.okta.com", {"api_token": _DEMO["okta_api_token"]}),
    (
        "GOOGLE_WORKSPACE",
        "example.com",
        {"service_account_json": _DEMO["google_service_account"], "admin_email": "barbara.allen@example.com"},
    ),
    (
        "ENTRA_ID",
        "contoso.onmicrosoft.com",
        {"client_id": _DEMO["entra_client_id"], "client_secret": _DEMO["entra_client_secret"]},
    ),
    (
        "CROWDSTRIKE",
        "api.crowdstrike.com",
        {"client_id": _DEMO["crowdstrike_client_id"], "client_secret": _DEMO["crowdstrike_client_secret"]},
    ),
    ("SENTINELONE", "usea1-acme.sentinelone.net", {"api_token": _DEMO["sentinelone_api_token"]}),
]
