//! The fakes seen as a client sees them: auth, pagination and error shapes of each source.
//! One module per fake.

mod admin;
mod churn;
mod crowdstrike;
mod entra;
mod google;
mod google_channels;
mod graph_subscriptions;
mod okta;
mod okta_hooks;
mod sentinelone;

use reqwest::Client;
use serde_json::Value;

fn client() -> Client {
    Client::new()
}

async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

#[tokio::test]
async fn all_three_start_together_and_stop_on_shutdown() {
    let fakes = ctxsync_fakes::Fakes::start().await.unwrap();
    let base = fakes.okta.base_url();
    assert!(base.starts_with("http://127.0.0.1:"));
    assert_ne!(fakes.google.directory_base_url(), fakes.entra.graph_base_url());
    fakes.okta.shutdown().await;
    assert!(client().get(format!("{base}/api/v1/users/me")).send().await.is_err());
}
