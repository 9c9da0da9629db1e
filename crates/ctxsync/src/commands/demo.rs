//! `ctxsync demo`: the service wired to local fake sources, with keys and credentials printed,
//! so a newcomer can try every call without an identity provider.

use std::num::NonZeroU32;
use std::time::Duration;

use anyhow::Context;
use ctxsync_api::RateLimitSettings;
use ctxsync_fakes::{Fakes, TenantSpec};
use ctxsync_sources::Endpoints;
use ctxsync_store::MasterKey;
use ctxsync_sync::SyncSettings;

use crate::settings::{DemoArgs, ServeSettings};
use crate::startup::{Application, shutdown_signal};
use crate::telemetry;

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    telemetry::init(&args.log)?;
    let spec = TenantSpec {
        users: args.users,
        groups: (args.users / 50).max(5),
        devices: args.users / 5,
        ..TenantSpec::default()
    };
    let fakes = Fakes::start_with(spec).await.context("could not start the fake sources")?;
    let data_dir = tempfile::Builder::new().prefix("ctxsync-demo-").tempdir()?;
    let api_key = random_hex(32);
    let app_key = random_hex(40);
    let settings = ServeSettings {
        listen: args.listen,
        database_url: format!("sqlite://{}", data_dir.path().join("ctxsync.db").display()),
        master_key: MasterKey::load_or_generate(data_dir.path())?,
        endpoints: fake_endpoints(&fakes),
        bootstrap: Some((api_key.clone(), app_key.clone())),
        rate_limit: RateLimitSettings {
            limit: NonZeroU32::new(6000).expect("non-zero"),
            period: Duration::from_secs(60),
        },
        sync: SyncSettings { tick: Duration::from_secs(1), ..SyncSettings::default() },
        event_retention: Duration::from_secs(90 * 86400),
    };
    let app = Application::build(settings).await?;
    let service_account = data_dir.path().join("google-service-account.json");
    std::fs::write(&service_account, serde_json::to_vec_pretty(&fakes.google.service_account_json())?)?;
    print_banner(
        &app.local_addr().to_string(),
        &api_key,
        &app_key,
        &fakes,
        &service_account.display().to_string(),
    );
    app.run_until_stopped(shutdown_signal()).await
}

fn print_banner(addr: &str, api_key: &str, app_key: &str, fakes: &Fakes, service_account: &str) {
    let base = format!("http://{addr}/api/v2/security_monitoring/configuration/integration_config");
    println!(
        r#"
ctxsync demo is running on http://{addr} (a throwaway database; Ctrl-C stops it)

Keys (default org, every permission):
  export DD_API_KEY={api_key}
  export DD_APP_KEY={app_key}

Fake sources (every request for them goes to local servers):
  Okta              domain {okta_domain}   api_token {okta_token}
  Google Workspace  domain {google_domain}   admin_email {google_admin}
                    service_account_json in {service_account}
  Entra ID          domain {entra_domain}   client_id {entra_client}   client_secret {entra_secret}

Create an Okta config:
  curl -sS -X POST {base} \
    -H "DD-API-KEY: $DD_API_KEY" -H "DD-APPLICATION-KEY: $DD_APP_KEY" -H "Content-Type: application/json" \
    -d '{{"data":{{"type":"integration_config","attributes":{{"integration_type":"OKTA","name":"Demo Okta","domain":"{okta_domain}","secrets":{{"api_token":"{okta_token}"}}}}}}}}'

List configs:
  curl -sS {base} -H "DD-API-KEY: $DD_API_KEY" -H "DD-APPLICATION-KEY: $DD_APP_KEY"

A new config syncs at once; watch its runs and entities arrive (use the id the create printed):
  curl -sS http://{addr}/api/v2/ctxsync/integration_configs/$ID/sync_runs -H "DD-API-KEY: $DD_API_KEY" -H "DD-APPLICATION-KEY: $DD_APP_KEY"
  curl -sS 'http://{addr}/api/v2/ctxsync/entities?filter%5Bkind%5D=user&page%5Bsize%5D=5' -H "DD-API-KEY: $DD_API_KEY" -H "DD-APPLICATION-KEY: $DD_APP_KEY"

OpenAPI document: http://{addr}/api/v2/openapi.json
"#,
        okta_domain = fakes.okta.domain(),
        okta_token = fakes.okta.api_token(),
        google_domain = fakes.google.domain(),
        google_admin = fakes.google.admin_email(),
        entra_domain = fakes.entra.domain(),
        entra_client = fakes.entra.client_id(),
        entra_secret = fakes.entra.client_secret(),
    );
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
    let url = |s: String| Some(s.parse().expect("a fake's address is a URL"));
    Endpoints {
        okta_base_url: url(fakes.okta.base_url()),
        google_token_url: url(fakes.google.token_url()),
        google_directory_base_url: url(fakes.google.directory_base_url()),
        entra_login_base_url: url(fakes.entra.login_base_url()),
        graph_base_url: url(fakes.entra.graph_base_url()),
        allow_private: false,
    }
}
