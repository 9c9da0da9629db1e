use ctxsync_fakes::{FakeOkta, OktaPermission};

use super::*;

fn okta_sources(fake: &FakeOkta) -> Sources {
    sources(Endpoints::overridden(fake.base_urls()))
}

async fn validate(fake: &FakeOkta, token: &str) -> Result<(), SourceError> {
    let creds = credentials(IntegrationType::Okta, okta_secrets(token));
    okta_sources(fake).validate(&fake.domain(), &no_settings(), &creds).await
}

#[tokio::test]
async fn admin_token_is_valid() {
    let fake = FakeOkta::start().await.unwrap();
    validate(&fake, &fake.api_token()).await.unwrap();
    let read_all = fake.add_token(OktaPermission::ReadAll);
    validate(&fake, &read_all).await.unwrap();
}

#[tokio::test]
async fn unknown_token_is_rejected_with_oktas_words() {
    let fake = FakeOkta::start().await.unwrap();
    let token = "00NotARealTokenButLongEnoughToLookLikeOne";
    let message = rejected(validate(&fake, token).await);
    assert!(
        message.starts_with("Okta rejected the API token: Invalid token provided (E0000011)"),
        "{message}"
    );
    assert!(message.contains("create a new API token"), "{message}");
    assert_no_secret(&message, &[token]);
}

#[tokio::test]
async fn revoked_token_is_rejected() {
    let fake = FakeOkta::start().await.unwrap();
    let token = fake.add_token(OktaPermission::ReadAll);
    validate(&fake, &token).await.unwrap();
    fake.revoke_token(&token);
    let message = rejected(validate(&fake, &token).await);
    assert!(message.contains("E0000011"), "{message}");
    assert_no_secret(&message, &[&token]);
}

#[tokio::test]
async fn token_without_list_permission_is_rejected() {
    let fake = FakeOkta::start().await.unwrap();
    let token = fake.add_token(OktaPermission::NoPermission);
    let message = rejected(validate(&fake, &token).await);
    assert!(message.contains("list users"), "{message}");
    assert!(message.contains("permission"), "{message}");
    assert!(message.contains("E0000006"), "{message}");
    assert_no_secret(&message, &[&token]);
}

#[tokio::test(start_paused = true)]
async fn a_closed_port_is_unreachable() {
    let port = closed_port().await;
    let sources =
        sources(Endpoints::overridden([("CTXSYNC_OKTA_BASE_URL", format!("http://127.0.0.1:{port}"))]));
    let creds = credentials(IntegrationType::Okta, okta_secrets("00abcdefghijklmnop"));
    match sources.validate("acme.okta.com", &no_settings(), &creds).await {
        Err(SourceError::Unreachable(message)) => {
            assert!(
                message.starts_with(&format!("could not reach Okta at http://127.0.0.1:{port}")),
                "{message}"
            );
            assert_no_secret(&message, &["00abcdefghijklmnop"]);
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}
