use std::time::Duration;

use ctxsync_fakes::FakeCrowdStrike;
use tokio::time::Instant;

use super::*;

fn crowdstrike_credentials(id: &str, secret: &str) -> Credentials {
    credentials(IntegrationType::CrowdStrike, json!({ "client_id": id, "client_secret": secret }))
}

async fn validate(fake: &FakeCrowdStrike, id: &str, secret: &str) -> Result<(), SourceError> {
    let sources = sources(Endpoints::overridden(fake.base_urls()));
    sources.validate(&fake.domain(), &no_settings(), &crowdstrike_credentials(id, secret)).await
}

#[tokio::test]
async fn an_api_client_with_hosts_read_is_valid() {
    let fake = FakeCrowdStrike::start().await.unwrap();
    validate(&fake, &fake.client_id(), &fake.client_secret()).await.unwrap();
    // A GovCloud without the combined endpoint is probed through the scroll query.
    fake.refuse_combined(true);
    validate(&fake, &fake.client_id(), &fake.client_secret()).await.unwrap();
}

#[tokio::test]
async fn a_region_named_by_the_token_endpoint_is_not_followed_past_an_override() {
    let fake = FakeCrowdStrike::start().await.unwrap();
    fake.set_region("eu-1");
    validate(&fake, &fake.client_id(), &fake.client_secret()).await.unwrap();
}

#[tokio::test]
async fn wrong_secret_is_rejected_without_the_secret() {
    let fake = FakeCrowdStrike::start().await.unwrap();
    let secret = "WrongSecretValueThatIsLongEnough12345678";
    let message = rejected(validate(&fake, &fake.client_id(), secret).await);
    assert!(message.contains("Failed to issue access token - Not Authorized (403)"), "{message}");
    assert!(message.contains("check client_id and client_secret"), "{message}");
    assert_no_secret(&message, &[secret, &fake.client_secret()]);
}

#[tokio::test]
async fn a_malformed_client_id_is_rejected_without_echoing_it() {
    let fake = FakeCrowdStrike::start().await.unwrap();
    let id = "not-a-client-id-but-a-secret-pasted-here";
    let message = rejected(validate(&fake, id, &fake.client_secret()).await);
    assert!(message.contains("Failed to generate access token"), "{message}");
    assert!(message.contains("check client_id"), "{message}");
    assert_no_secret(&message, &[id, &fake.client_secret()]);
}

#[tokio::test]
async fn a_client_without_hosts_read_is_told_so() {
    let fake = FakeCrowdStrike::start().await.unwrap();
    fake.set_hosts_read(false);
    let message = rejected(validate(&fake, &fake.client_id(), &fake.client_secret()).await);
    assert!(message.contains("access denied, authorization failed (403)"), "{message}");
    assert!(message.contains("Hosts: Read"), "{message}");
    assert_no_secret(&message, &[&fake.client_secret()]);
}

#[tokio::test]
async fn an_unreachable_host_is_unreachable() {
    let port = closed_port().await;
    let endpoints = Endpoints::default()
        .with("CTXSYNC_CROWDSTRIKE_BASE_URL", format!("http://127.0.0.1:{port}").parse().unwrap());
    let result = sources(endpoints)
        .validate("api.crowdstrike.com", &no_settings(), &crowdstrike_credentials(&"a".repeat(32), "secret"))
        .await;
    match result {
        Err(SourceError::Unreachable(message)) => {
            assert!(message.contains("could not reach CrowdStrike"), "{message}")
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_is_waited_out_until_the_epoch_it_names() {
    let fake = FakeCrowdStrike::start().await.unwrap();
    fake.rate_limit_next(1, Duration::from_secs(2));
    let started = Instant::now();
    validate(&fake, &fake.client_id(), &fake.client_secret()).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(2), "one wait, until X-RateLimit-RetryAfter");
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_beyond_the_budget_is_unreachable() {
    let fake = FakeCrowdStrike::start().await.unwrap();
    fake.rate_limit_next(100, Duration::from_secs(30));
    match validate(&fake, &fake.client_id(), &fake.client_secret()).await {
        Err(SourceError::Unreachable(message)) => {
            assert!(message.contains("kept rate-limiting requests (HTTP 429"), "{message}");
            assert!(message.contains("try again in 30 s"), "{message}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}
