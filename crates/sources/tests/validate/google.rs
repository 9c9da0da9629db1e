use ctxsync_fakes::FakeGoogle;

use super::*;

fn google_sources(fake: &FakeGoogle) -> Sources {
    sources(Endpoints::overridden(fake.base_urls()))
}

fn key_secrets(key_file: &Value) -> Vec<String> {
    let key = key_file["private_key"].as_str().unwrap();
    // The PEM's base64 lines, each long enough to be recognisable.
    key.lines().filter(|l| !l.starts_with("-----")).map(str::to_owned).collect()
}

async fn validate(fake: &FakeGoogle, key_file: Value, admin: &str) -> Result<(), SourceError> {
    let creds = credentials(
        IntegrationType::GoogleWorkspace,
        json!({ "service_account_json": key_file, "admin_email": admin }),
    );
    google_sources(fake).validate(&fake.domain(), &no_settings(), &creds).await
}

fn assert_no_key(message: &str, key_file: &Value) {
    let lines = key_secrets(key_file);
    assert_no_secret(message, &lines.iter().map(String::as_str).collect::<Vec<_>>());
}

#[tokio::test]
async fn delegated_service_account_is_valid() {
    let fake = FakeGoogle::start().await.unwrap();
    validate(&fake, fake.service_account_json(), &fake.admin_email()).await.unwrap();
}

#[tokio::test]
async fn a_key_the_account_never_registered_is_rejected() {
    let fake = FakeGoogle::start().await.unwrap();
    let key_file = fake.service_account_with_wrong_key();
    let message = rejected(validate(&fake, key_file.clone(), &fake.admin_email()).await);
    assert!(message.contains("Invalid JWT Signature. (invalid_grant)"), "{message}");
    assert!(message.contains("create a new JSON key"), "{message}");
    assert_no_key(&message, &key_file);
}

#[tokio::test]
async fn missing_delegation_is_rejected() {
    let fake = FakeGoogle::start().await.unwrap();
    let key_file = fake.service_account_without_delegation();
    let message = rejected(validate(&fake, key_file.clone(), &fake.admin_email()).await);
    assert!(message.contains("(unauthorized_client)"), "{message}");
    assert!(message.contains("domain-wide delegation"), "{message}");
    assert_no_key(&message, &key_file);
}

#[tokio::test]
async fn impersonating_a_non_admin_is_rejected() {
    let fake = FakeGoogle::start().await.unwrap();
    let message = rejected(validate(&fake, fake.service_account_json(), &fake.non_admin_email()).await);
    assert!(message.contains("Not Authorized to access this resource/api (forbidden)"), "{message}");
    assert!(message.contains("must be a Workspace administrator"), "{message}");
}

#[tokio::test]
async fn impersonating_an_unknown_user_is_rejected() {
    let fake = FakeGoogle::start().await.unwrap();
    let admin = format!("nobody@{}", fake.domain());
    let message = rejected(validate(&fake, fake.service_account_json(), &admin).await);
    assert!(message.contains("Invalid email or User ID (invalid_grant)"), "{message}");
    assert!(message.contains("admin_email must be an existing user"), "{message}");
}

#[tokio::test]
async fn an_unparsable_private_key_is_invalid_credentials() {
    let fake = FakeGoogle::start().await.unwrap();
    let mut key_file = fake.service_account_json();
    key_file["private_key"] =
        json!("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n");
    match validate(&fake, key_file, &fake.admin_email()).await {
        Err(SourceError::InvalidCredentials(message)) => {
            assert!(message.contains("private_key"), "{message}");
            assert!(!message.contains("bm90IGEga2V5"), "{message}");
        }
        other => panic!("expected InvalidCredentials, got {other:?}"),
    }
}

#[tokio::test]
async fn the_key_files_token_uri_is_never_contacted() {
    let fake = FakeGoogle::start().await.unwrap();
    let (port, counter) = counting_listener().await;
    let mut key_file = fake.service_account_json();
    key_file["token_uri"] = json!(format!("http://127.0.0.1:{port}/token"));
    validate(&fake, key_file.clone(), &fake.admin_email()).await.unwrap();
    // Failures must not fall back to it either.
    let _ = validate(&fake, key_file, &fake.non_admin_email()).await;
    assert_eq!(hits(&counter), 0);
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_token_endpoint_is_unreachable() {
    let fake = FakeGoogle::start().await.unwrap();
    let port = closed_port().await;
    let sources = sources(Endpoints::overridden([
        ("CTXSYNC_GOOGLE_TOKEN_URL", format!("http://127.0.0.1:{port}/token")),
        ("CTXSYNC_GOOGLE_DIRECTORY_BASE_URL", fake.directory_base_url()),
    ]));
    let key_file = fake.service_account_json();
    let creds = credentials(
        IntegrationType::GoogleWorkspace,
        json!({ "service_account_json": key_file, "admin_email": fake.admin_email() }),
    );
    match sources.validate(&fake.domain(), &no_settings(), &creds).await {
        Err(SourceError::Unreachable(message)) => {
            assert!(message.contains("could not reach Google's token endpoint"), "{message}");
            assert_no_key(&message, &key_file);
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}
