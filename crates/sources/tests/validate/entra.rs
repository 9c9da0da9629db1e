use std::time::Duration;

use ctxsync_fakes::FakeEntra;
use tokio::time::Instant;

use super::*;

fn entra_sources(fake: &FakeEntra) -> Sources {
    sources(Endpoints::overridden(fake.base_urls()))
}

async fn validate_with(
    fake: &FakeEntra,
    domain: &str,
    settings: &Settings,
    id: &str,
    secret: &str,
) -> Result<(), SourceError> {
    let creds = credentials(IntegrationType::EntraId, json!({ "client_id": id, "client_secret": secret }));
    entra_sources(fake).validate(domain, settings, &creds).await
}

async fn validate(fake: &FakeEntra, id: &str, secret: &str) -> Result<(), SourceError> {
    validate_with(fake, &fake.domain(), &no_settings(), id, secret).await
}

#[tokio::test]
async fn consented_app_is_valid_by_domain_or_tenant_id() {
    let fake = FakeEntra::start().await.unwrap();
    validate(&fake, &fake.client_id(), &fake.client_secret()).await.unwrap();
    let mut settings = no_settings();
    settings.insert("tenant_id".into(), json!(fake.tenant_id()));
    validate_with(&fake, "contoso.com", &settings, &fake.client_id(), &fake.client_secret()).await.unwrap();
}

#[tokio::test]
async fn wrong_secret_is_rejected() {
    let fake = FakeEntra::start().await.unwrap();
    let secret = "Wrong~SecretValueThatIsLongEnough1234567";
    let message = rejected(validate(&fake, &fake.client_id(), secret).await);
    assert!(message.contains("AADSTS7000215: Invalid client secret provided."), "{message}");
    assert!(message.contains("(invalid_client)"), "{message}");
    assert!(!message.contains("Trace ID"), "{message}");
    assert_no_secret(&message, &[secret, &fake.client_secret()]);
}

#[tokio::test]
async fn unknown_app_and_tenant_are_rejected() {
    let fake = FakeEntra::start().await.unwrap();
    let message =
        rejected(validate(&fake, "00000000-0000-0000-0000-000000000000", &fake.client_secret()).await);
    assert!(message.contains("AADSTS700016"), "{message}");
    assert!(message.contains("check client_id"), "{message}");
    let message = rejected(
        validate_with(
            &fake,
            "nope.onmicrosoft.com",
            &no_settings(),
            &fake.client_id(),
            &fake.client_secret(),
        )
        .await,
    );
    assert!(message.contains("AADSTS90002"), "{message}");
    assert!(message.contains("settings.tenant_id"), "{message}");
    assert_no_secret(&message, &[&fake.client_secret()]);
}

#[tokio::test]
async fn app_without_consent_is_rejected() {
    let fake = FakeEntra::start().await.unwrap();
    let (id, secret) = fake.app_without_consent();
    let message = rejected(validate(&fake, &id, &secret).await);
    assert!(
        message.contains("Insufficient privileges to complete the operation. (Authorization_RequestDenied)"),
        "{message}"
    );
    assert!(message.contains("admin consent"), "{message}");
    assert_no_secret(&message, &[&secret]);
}

#[tokio::test(start_paused = true)]
async fn throttling_is_waited_out() {
    let fake = FakeEntra::start().await.unwrap();
    fake.throttle_next(1, 1);
    let started = Instant::now();
    validate(&fake, &fake.client_id(), &fake.client_secret()).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(1), "one wait, of the Retry-After Graph sent");
}

#[tokio::test(start_paused = true)]
async fn throttling_beyond_the_budget_is_unreachable() {
    let fake = FakeEntra::start().await.unwrap();
    fake.throttle_next(100, 30);
    let started = Instant::now();
    match validate(&fake, &fake.client_id(), &fake.client_secret()).await {
        Err(SourceError::Unreachable(message)) => {
            assert!(message.contains("kept rate-limiting requests (HTTP 429"), "{message}");
            assert!(message.contains("try again in 30 s"), "{message}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(started.elapsed(), Duration::ZERO, "a wait beyond the validation budget is not begun");
}

#[tokio::test]
async fn a_tenant_that_would_change_the_path_is_rejected() {
    let fake = FakeEntra::start().await.unwrap();
    let mut settings = no_settings();
    settings.insert("tenant_id".into(), json!("../common"));
    let message = rejected(
        validate_with(&fake, &fake.domain(), &settings, &fake.client_id(), &fake.client_secret()).await,
    );
    assert!(message.contains("is not an Entra ID tenant"), "{message}");
}
