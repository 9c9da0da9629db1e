//! `ctxsync demo`: the service wired to local fake sources whose tenants keep changing, with
//! keys, credentials and the `export` lines for a second terminal printed, so a newcomer can try
//! every call and command without an identity provider.
//!
//! Everything lives in one folder (`--data-dir`, see [`crate::demo_folder`]), so a second run
//! carries on with the same database, keys and fake credentials.

use std::io::Write;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use ctxsync_api::RateLimitSettings;
use ctxsync_core::Schedule;
use ctxsync_fakes::{Churn, Fakes, TenantSpec};
use ctxsync_sources::Endpoints;
use ctxsync_store::MasterKey;
use ctxsync_sync::SyncSettings;

use crate::connections::ConnectionLimits;
use crate::demo_folder::DemoFolder;
use crate::settings::{DATABASE_FILE, DemoArgs, ServeSettings};
use crate::startup::{Application, shutdown_signal};
use crate::{private, telemetry};

/// How often the churn changes the tenants.
const CHURN_EVERY: Duration = Duration::from_secs(3);

/// Often enough that a change shows within a minute: incremental runs every 10 s, and a full run
/// (which finds deletions and checks completeness) every 2 minutes.
const DEMO_SCHEDULE: Schedule =
    Schedule { interval: Duration::from_secs(10), full_interval: Duration::from_secs(120) };

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    telemetry::init(&args.log, args.log_format)?;
    let dir = args.data_dir.as_path();
    let previous = open_folder(dir)?;
    let spec = TenantSpec {
        users: args.users,
        groups: (args.users / 50).max(5),
        devices: args.users / 5,
        ..TenantSpec::default()
    };
    let fakes = match &previous {
        Some(p) => Fakes::start_on(spec, p.ports(), Some(&p.credentials)).await,
        None => Fakes::start_with(spec).await,
    };
    let fakes = Arc::new(fakes.context("could not start the fake sources")?);
    let (api_key, app_key) = match previous {
        Some(p) => (p.api_key, p.app_key),
        None => (random_hex(32), random_hex(40)),
    };
    let folder = DemoFolder {
        endpoints: DemoFolder::endpoints_of(&fakes),
        credentials: fakes.credentials(),
        api_key,
        app_key,
    };
    folder.write(dir)?;
    let service_account = dir.join("google-service-account.json");
    private::write(&service_account, &serde_json::to_vec_pretty(&fakes.google.service_account_json())?)
        .with_context(|| format!("could not write {}", service_account.display()))?;
    // Bound first, so the fakes that push (Graph, Google) are told this address.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("could not listen on {} (CTXSYNC_LISTEN)", args.listen))?;
    let address = listener.local_addr()?;
    let database = dir.join(DATABASE_FILE);
    private::touch(&database).with_context(|| format!("could not create {}", database.display()))?;
    let settings = ServeSettings {
        listen: args.listen,
        metrics_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        database_url: format!("sqlite://{}", database.display()),
        master_key: MasterKey::load_or_generate(dir)?.into(),
        endpoints: fake_endpoints(&fakes),
        bootstrap: Some((folder.api_key.clone(), folder.app_key.clone())),
        rate_limit: RateLimitSettings {
            limit: NonZeroU32::new(6000).expect("non-zero"),
            period: Duration::from_secs(60),
        },
        sync: SyncSettings {
            tick: Duration::from_secs(1),
            schedule: DEMO_SCHEDULE,
            ..SyncSettings::default()
        },
        event_retention: Duration::from_secs(90 * 86400),
        connections: ConnectionLimits::default(),
        public_url: Some(format!("http://{address}")),
    };
    let app = Application::build_on(settings, listener).await?;
    let metrics = app.metrics_addr().context("the demo serves metrics")?;
    print_banner(&app.local_addr().to_string(), dir, &folder, &fakes, &service_account, &args, metrics)?;
    let churn = args.churn.then(|| tokio::spawn(Churn::new(spec.seed).run(fakes.clone(), CHURN_EVERY)));
    let served = app.run_until_stopped(shutdown_signal()).await;
    if let Some(churn) = churn {
        churn.abort();
    }
    served
}

/// Creates the folder (mode 0700) or checks that an existing one is a demo's; its marker when a
/// demo ran there before.
fn open_folder(dir: &Path) -> anyhow::Result<Option<DemoFolder>> {
    private::create_dir(dir)
        .with_context(|| format!("could not create the demo folder {}", dir.display()))?;
    let previous = DemoFolder::read(dir)?;
    if previous.is_none() && dir.join(DATABASE_FILE).exists() {
        bail!(
            "{} holds a ctxsync database that `ctxsync demo` did not create; give the demo a folder of \
             its own with --data-dir",
            dir.display()
        );
    }
    Ok(previous)
}

fn print_banner(
    addr: &str,
    dir: &Path,
    folder: &DemoFolder,
    fakes: &Fakes,
    service_account: &Path,
    args: &DemoArgs,
    metrics: std::net::SocketAddr,
) -> std::io::Result<()> {
    let base = format!("http://{addr}/api/v2/security_monitoring/configuration/integration_config");
    let churn = if args.churn {
        format!(
            "Every {}s someone in each tenant is suspended, reactivated, hired, renamed or moved to another \
             group, and a host in each fleet is contained, released, set up, logged on to or updated (--churn \
             off stops it).",
            CHURN_EVERY.as_secs()
        )
    } else {
        "The tenants stay as they are (--churn off); change them with the /_fake admin API.".to_string()
    };
    // Written, not printed: `println!` panics when the reader has gone.
    writeln!(
        std::io::stdout(),
        r#"
ctxsync demo is running on http://{addr}, with fake Okta, Google Workspace and Entra ID tenants of
{users} users each, and the CrowdStrike and SentinelOne fleets of their machines. {churn}
Its database, master key, keys and fake credentials are in {dir}: run the demo again with that
folder to carry on. Ctrl-C stops it.

In a second terminal, paste these lines first: they send every source to the fakes (ctxsync sync
and serve refuse this folder without them) and hold the keys for curl.

{exports}
export DD_API_KEY={api_key}
export DD_APP_KEY={app_key}

Fake sources (their credentials work only against these local fakes):
  Okta              domain {okta_domain}   api_token {okta_token}
  Google Workspace  domain {google_domain}   admin_email {google_admin}
                    service_account_json in {service_account}
  Entra ID          domain {entra_domain}   client_id {entra_client}   client_secret {entra_secret}
  CrowdStrike       domain {cs_domain}   client_id {cs_client}   client_secret {cs_secret}
  SentinelOne       domain {s1_domain}   api_token {s1_token}

Create an Okta config (a new config syncs at once), and keep its id:
  ID=$(curl -sS -X POST {base} \
    -H "DD-API-KEY: $DD_API_KEY" -H "DD-APPLICATION-KEY: $DD_APP_KEY" -H "Content-Type: application/json" \
    -d '{{"data":{{"type":"integration_config","attributes":{{"integration_type":"OKTA","name":"Demo Okta","domain":"{okta_domain}","secrets":{{"api_token":"{okta_token}"}}}}}}}}' \
    | sed -E 's/.*"id":"([^"]+)".*/\1/'); echo $ID

Then, from the command line:
  ctxsync sync --config $ID      ctxsync export --config $ID      ctxsync events --config $ID --follow
  ctxsync holds list --config $ID      ctxsync keys list      ctxsync keys rotate <key id> --grace 1h

Watch its runs and entities arrive:
  curl -sS http://{addr}/api/v2/ctxsync/integration_configs/$ID/sync_runs -H "DD-API-KEY: $DD_API_KEY" -H "DD-APPLICATION-KEY: $DD_APP_KEY"
  curl -sS 'http://{addr}/api/v2/ctxsync/entities?filter%5Bkind%5D=user&page%5Bsize%5D=5' -H "DD-API-KEY: $DD_API_KEY" -H "DD-APPLICATION-KEY: $DD_APP_KEY"

Change a tenant yourself (README, "The demo's tenants"), e.g. suspend an Okta user by its id:
  curl -sS -X POST $CTXSYNC_OKTA_BASE_URL/_fake/okta/users/<user id>/suspend

Make Okta changes arrive in seconds (README, "Push"): turn push on, then register the endpoint
and secret it answers with as an Event Hook of the fake Okta:
  curl -sS -X PUT http://{addr}/api/v2/ctxsync/integration_configs/$ID/push -H "DD-API-KEY: $DD_API_KEY" -H "DD-APPLICATION-KEY: $DD_APP_KEY"
An Entra ID config's push needs no console: turning it on subscribes to the fake Graph's change
notifications for users and groups (it checks http://{addr} first), and a suspension there reaches
the store within seconds:
  curl -sS -X PUT http://{addr}/api/v2/ctxsync/integration_configs/$ENTRA_ID/push -H "DD-API-KEY: $DD_API_KEY" -H "DD-APPLICATION-KEY: $DD_APP_KEY"
  curl -sS -X POST $CTXSYNC_GRAPH_BASE_URL/_fake/entra/users/<user id>/suspend
A Google Workspace config's push opens users.watch channels at the fake Google the same way:
  curl -sS -X PUT http://{addr}/api/v2/ctxsync/integration_configs/$GOOGLE_ID/push -H "DD-API-KEY: $DD_API_KEY" -H "DD-APPLICATION-KEY: $DD_APP_KEY"
  curl -sS -X POST $CTXSYNC_GOOGLE_DIRECTORY_BASE_URL/_fake/google/users/<user id>/suspend

OpenAPI document: http://{addr}/api/v2/openapi.json
Prometheus metrics: http://{metrics}/metrics
"#,
        users = args.users,
        dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()).display(),
        exports = folder.exports(dir).join("\n"),
        api_key = folder.api_key,
        app_key = folder.app_key,
        service_account = service_account.display(),
        okta_domain = fakes.okta.domain(),
        okta_token = fakes.okta.api_token(),
        google_domain = fakes.google.domain(),
        google_admin = fakes.google.admin_email(),
        entra_domain = fakes.entra.domain(),
        entra_client = fakes.entra.client_id(),
        entra_secret = fakes.entra.client_secret(),
        cs_domain = fakes.crowdstrike.domain(),
        cs_client = fakes.crowdstrike.client_id(),
        cs_secret = fakes.crowdstrike.client_secret(),
        s1_domain = fakes.sentinelone.domain(),
        s1_token = fakes.sentinelone.api_token(),
    )
}

/// Demo keys in Datadog's shapes (hex). Two v4 UUIDs give 244 random bits, plenty for a demo.
fn random_hex(len: usize) -> String {
    let mut s = String::new();
    while s.len() < len {
        s.push_str(&uuid_hex());
    }
    s.truncate(len);
    s
}

fn uuid_hex() -> String {
    ctxsync_core::ConfigId::new().0.simple().to_string()
}

/// Every source routed to the local fakes: the demo's, and the tests' and benchmarks' that run the
/// service against them.
pub fn fake_endpoints(fakes: &Fakes) -> Endpoints {
    Endpoints::overridden(fakes.base_urls())
}
