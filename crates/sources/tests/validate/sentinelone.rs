use std::time::Duration;

use ctxsync_fakes::{FakeSentinelOne, SentinelOneScope};
use tokio::time::Instant;

use super::*;

fn sentinelone_sources(fake: &FakeSentinelOne) -> Sources {
    sources(Endpoints::overridden(fake.base_urls()))
}

async fn validate(fake: &FakeSentinelOne, token: &str) -> Result<(), SourceError> {
    let creds = credentials(IntegrationType::SentinelOne, json!({ "api_token": token }));
    sentinelone_sources(fake).validate(&fake.domain(), &no_settings(), &creds).await
}

#[tokio::test]
async fn an_account_token_is_valid() {
    let fake = FakeSentinelOne::start().await.unwrap();
    validate(&fake, &fake.api_token()).await.unwrap();
    validate(&fake, &fake.add_token(SentinelOneScope::Account)).await.unwrap();
}

#[tokio::test]
async fn an_unknown_token_is_rejected_without_echoing_it() {
    let fake = FakeSentinelOne::start().await.unwrap();
    let token = "NotARealSentinelOneTokenButLongEnoughToLookLikeOne";
    let message = rejected(validate(&fake, token).await);
    assert!(
        message.starts_with("SentinelOne rejected the API token: Authentication Failed (4010010)"),
        "{message}"
    );
    assert!(message.contains("generate a new API token"), "{message}");
    assert_no_secret(&message, &[token]);
}

#[tokio::test]
async fn a_revoked_token_is_rejected() {
    let fake = FakeSentinelOne::start().await.unwrap();
    let token = fake.add_token(SentinelOneScope::Account);
    validate(&fake, &token).await.unwrap();
    fake.revoke_token(&token);
    let message = rejected(validate(&fake, &token).await);
    assert!(message.contains("4010010"), "{message}");
    assert_no_secret(&message, &[&token]);
}

#[tokio::test]
async fn a_site_scoped_token_is_rejected_saying_so() {
    let fake = FakeSentinelOne::start().await.unwrap();
    let token = fake.add_token(SentinelOneScope::Site);
    let message = rejected(validate(&fake, &token).await);
    assert!(message.starts_with("SentinelOne refused to list agents"), "{message}");
    assert!(message.contains("(4030010)"), "{message}");
    assert!(message.contains("scoped to a site, so it cannot list the account's agents"), "{message}");
    assert_no_secret(&message, &[&token]);
}

#[tokio::test(start_paused = true)]
async fn a_closed_port_is_unreachable() {
    let port = closed_port().await;
    let sources = sources(Endpoints::overridden([(
        "CTXSYNC_SENTINELONE_BASE_URL",
        format!("http://127.0.0.1:{port}"),
    )]));
    let token = "abcdefghijklmnopqrstuvwxyz0123456789";
    let creds = credentials(IntegrationType::SentinelOne, json!({ "api_token": token }));
    match sources.validate("usea1-acme.sentinelone.net", &no_settings(), &creds).await {
        Err(SourceError::Unreachable(message)) => {
            assert!(
                message.starts_with(&format!("could not reach SentinelOne at http://127.0.0.1:{port}")),
                "{message}"
            );
            assert_no_secret(&message, &[token]);
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_is_waited_out_as_retry_after_asks() {
    let fake = FakeSentinelOne::start().await.unwrap();
    fake.rate_limit_next(1, Duration::from_secs(3));
    let started = Instant::now();
    validate(&fake, &fake.api_token()).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(3), "one wait, of the Retry-After sent");
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_beyond_the_budget_is_unreachable() {
    let fake = FakeSentinelOne::start().await.unwrap();
    fake.rate_limit_next(100, Duration::from_secs(30));
    match validate(&fake, &fake.api_token()).await {
        Err(SourceError::Unreachable(message)) => {
            assert!(message.contains("kept rate-limiting requests (HTTP 429"), "{message}");
            assert!(message.contains("try again in 30 s"), "{message}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}
