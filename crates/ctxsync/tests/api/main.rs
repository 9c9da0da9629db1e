//! Integration tests of the service: each module drives the real server (in-process on a random
//! port, or the binary for `cli`) against a fresh database and the fake sources.
//!
//! - `configs`: create, get, list, update, delete of the integration_config family
//! - `activation`: activate, deactivate and the Entra ID app registrations
//! - `validation`: credential validation against each fake source, both validate routes
//! - `auth`: keys, scopes and org isolation
//! - `master_key`: the master-key rotation killed midway and resumed; the generated key replaced
//! - `keys`: the key lifecycle on the API and the command line: expiry, rotation, revocation
//! - `limits`: rate limits, malformed and oversized input
//! - `error_shape`: errors from the framework and hyper in the usual shape; duplicate JSON keys
//! - `slow_clients`: connections that never finish a request, idle ones, the connection cap
//! - `secrets`: plaintext secrets never leave the service
//! - `sync`: the engine end to end: scheduler, fakes, entity API, run history
//! - `events`: change events and entity history on the API, after the baseline run
//! - `holds`: runs that hold a mass deletion or an incomplete listing's deletions, and health
//! - `persons`: identity resolution across Okta, Google and Entra tenants of one organisation
//! - `push`: Okta event hooks delivering to the push endpoint: a suspension within seconds, the
//!   secret, forged and repeated deliveries; Entra ID's Graph subscriptions: the handshake, the
//!   clientState, renewal and lifecycle notifications
//! - `edr`: CrowdStrike and SentinelOne configs synced, their hosts joined to persons, device events
//! - `openapi`: the served document against the contract
//! - `datadog_client`: the official Rust client against the service
//! - `cli`: the binary itself (keys, serve, shutdown, logs)
//! - `cli_settings`: settings that do not parse, named as the operator wrote them; output cut short
//! - `demo`: `ctxsync demo` and the commands run beside it from its printed exports; commands that
//!   only read create nothing
//! - `crash`: `ctxsync sync` killed with SIGKILL again and again; the store stays intact and converges
//! - `replicas`: several `serve` processes on one PostgreSQL database, and a database restart
//! - `observability`: the metrics exposition after a sync, request ids, access log lines in both
//!   formats, and log lines no caller can forge

mod activation;
mod auth;
mod cli;
mod cli_settings;
mod configs;
mod crash;
mod datadog_client;
mod demo;
mod edr;
mod error_shape;
mod events;
mod helpers;
mod holds;
mod keys;
mod limits;
mod master_key;
mod observability;
mod openapi;
mod persons;
mod push;
mod replicas;
mod secrets;
mod slow_clients;
mod sync;
mod validation;
