use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use ctxsync_fakes::{FakeGoogle, TenantSpec};
use serde_json::json;

use super::*;
use ctxsync_fakes::FaultKnobs;

const SCOPES: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly \
                      https://www.googleapis.com/auth/admin.directory.group.readonly";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// An RS256 JWT signed with the key file's private key.
fn sign(key_file: &Value, claims: &Value, padded: bool) -> String {
    let pem = key_file["private_key"].as_str().unwrap();
    let der = STANDARD.decode(pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>()).unwrap();
    let key = RsaKeyPair::from_pkcs8(&der).unwrap();
    let b64 = |bytes: &[u8]| if padded { URL_SAFE.encode(bytes) } else { URL_SAFE_NO_PAD.encode(bytes) };
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": key_file["private_key_id"]});
    let message = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message.as_bytes(), &mut signature).unwrap();
    format!("{message}.{}", b64(&signature))
}

fn claims(key_file: &Value, sub: &str) -> Value {
    let iat = now();
    json!({
        "iss": key_file["client_email"], "sub": sub, "scope": SCOPES,
        "aud": "https://oauth2.googleapis.com/token", "iat": iat, "exp": iat + 3600,
    })
}

async fn exchange(fake: &FakeGoogle, assertion: &str) -> reqwest::Response {
    client()
        .post(fake.token_url())
        .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion)])
        .send()
        .await
        .unwrap()
}

pub(super) async fn admin_token(fake: &FakeGoogle) -> String {
    let key_file = fake.service_account_json();
    let response = exchange(fake, &sign(&key_file, &claims(&key_file, &fake.admin_email()), false)).await;
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    assert_eq!((body["expires_in"].as_u64(), body["token_type"].as_str()), (Some(3599), Some("Bearer")));
    body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn key_files_look_like_googles() {
    let fake = FakeGoogle::start().await.unwrap();
    let key_file = fake.service_account_json();
    for key in
        ["type", "project_id", "private_key_id", "private_key", "client_email", "client_id", "token_uri"]
    {
        assert!(key_file[key].is_string(), "{key}");
    }
    assert!(key_file["private_key"].as_str().unwrap().starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert_eq!(key_file["token_uri"], "https://oauth2.googleapis.com/token");
    let wrong = fake.service_account_with_wrong_key();
    assert_eq!(wrong["client_email"], key_file["client_email"]);
    assert_ne!(wrong["private_key"], key_file["private_key"]);
}

#[tokio::test]
async fn users_are_paged_with_page_tokens() {
    let fake = FakeGoogle::start_with(TenantSpec { seed: 9, users: 23, groups: 0, ..TenantSpec::default() })
        .await
        .unwrap();
    let token = admin_token(&fake).await;
    let url = format!("{}/admin/directory/v1/users", fake.directory_base_url());
    let (mut seen, mut page_token) = (0, None::<String>);
    loop {
        let mut query = vec![("customer", "my_customer".to_string()), ("maxResults", "10".to_string())];
        if let Some(t) = &page_token {
            query.push(("pageToken", t.clone()));
        }
        let body = json(client().get(&url).query(&query).bearer_auth(&token).send().await.unwrap()).await;
        assert_eq!(body["kind"], "admin#directory#users");
        seen += body["users"].as_array().unwrap().len();
        match body.get("nextPageToken") {
            Some(t) => page_token = Some(t.as_str().unwrap().to_string()),
            None => break,
        }
    }
    assert!((20..=23).contains(&seen), "{seen}");
    let groups = client()
        .get(format!("{}/admin/directory/v1/groups?customer=my_customer", fake.directory_base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let body = json(groups).await;
    assert!(body.get("groups").is_none() && body.get("nextPageToken").is_none(), "{body}");
}

#[tokio::test]
async fn the_token_endpoint_checks_like_google() {
    let fake = FakeGoogle::start().await.unwrap();
    let key_file = fake.service_account_json();
    let padded = exchange(&fake, &sign(&key_file, &claims(&key_file, &fake.admin_email()), true)).await;
    assert_eq!(padded.status(), 200);

    let mut wrong_aud = claims(&key_file, &fake.admin_email());
    wrong_aud["aud"] = json!(fake.token_url());
    let response = exchange(&fake, &sign(&key_file, &wrong_aud, false)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"], "invalid_grant");

    let mut too_long = claims(&key_file, &fake.admin_email());
    too_long["exp"] = json!(too_long["iat"].as_u64().unwrap() + 3601);
    let body = json(exchange(&fake, &sign(&key_file, &too_long, false)).await).await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JWT: Token must be a short-lived token")
    );

    let wrong_key = fake.service_account_with_wrong_key();
    let body =
        json(exchange(&fake, &sign(&wrong_key, &claims(&wrong_key, &fake.admin_email()), false)).await).await;
    assert_eq!(body, json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}));

    let undelegated = fake.service_account_without_delegation();
    let response =
        exchange(&fake, &sign(&undelegated, &claims(&undelegated, &fake.admin_email()), false)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(json(response).await["error"], "unauthorized_client");

    let response = exchange(&fake, &sign(&key_file, &claims(&key_file, "ghost@example.com"), false)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error_description"], "Invalid email or User ID");
}

#[tokio::test]
async fn the_directory_checks_token_admin_and_page_size() {
    let fake = FakeGoogle::start().await.unwrap();
    let users = format!("{}/admin/directory/v1/users", fake.directory_base_url());
    let response = client()
        .get(&users)
        .query(&[("customer", "my_customer")])
        .bearer_auth("ya29.nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(json(response).await["error"]["status"], "UNAUTHENTICATED");

    let token = admin_token(&fake).await;
    let response = client()
        .get(&users)
        .query(&[("customer", "my_customer"), ("maxResults", "501")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = client().get(&users).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 400);

    let key_file = fake.service_account_json();
    let response =
        exchange(&fake, &sign(&key_file, &claims(&key_file, &fake.non_admin_email()), false)).await;
    let non_admin = json(response).await["access_token"].as_str().unwrap().to_string();
    let response = client()
        .get(&users)
        .query(&[("customer", "my_customer")])
        .bearer_auth(&non_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        json(response).await,
        json!({"error": {
            "errors": [{"domain": "global", "reason": "forbidden", "message": "Not Authorized to access this resource/api"}],
            "code": 403,
            "message": "Not Authorized to access this resource/api",
        }})
    );
}

pub(super) async fn directory(
    fake: &FakeGoogle,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
) -> reqwest::Response {
    let url = format!("{}/admin/directory/v1/{path}", fake.directory_base_url());
    client().get(url).query(query).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn members_name_users_nested_groups_and_the_account() {
    let fake = FakeGoogle::start_with(TenantSpec { seed: 6, users: 40, groups: 10, ..TenantSpec::default() })
        .await
        .unwrap();
    let token = admin_token(&fake).await;
    let snapshot = fake.snapshot();
    let mut seen = std::collections::BTreeMap::<String, Vec<String>>::new();
    for group in snapshot.groups.keys() {
        let mut page_token = String::new();
        loop {
            let query = [("maxResults", "3"), ("pageToken", page_token.as_str())];
            let body = json(directory(&fake, &token, &format!("groups/{group}/members"), &query).await).await;
            assert_eq!(body["kind"], "admin#directory#members");
            for member in body["members"].as_array().unwrap() {
                seen.entry(member["type"].as_str().unwrap().to_string())
                    .or_default()
                    .push(format!("{group}/{}", member["id"].as_str().unwrap()));
            }
            match body.get("nextPageToken") {
                Some(t) => page_token = t.as_str().unwrap().to_string(),
                None => break,
            }
        }
    }
    let pairs = |set: &std::collections::BTreeSet<(String, String)>| {
        set.iter().map(|(g, m)| format!("{g}/{m}")).collect::<Vec<_>>()
    };
    assert_eq!(seen["USER"], pairs(&snapshot.user_members));
    assert_eq!(seen["GROUP"], pairs(&snapshot.group_members));
    assert_eq!(seen["CUSTOMER"].len(), 1);
    // `directMembersCount` is an int64 in a string, counting every direct member listed.
    for (id, group) in &snapshot.groups {
        let listed = seen.values().flatten().filter(|m| m.starts_with(&format!("{id}/"))).count();
        assert_eq!(group["directMembersCount"], listed.to_string(), "{id}");
    }
    let listed = json(directory(&fake, &token, "groups", &[("customer", "my_customer")]).await).await;
    for group in listed["groups"].as_array().unwrap() {
        assert_eq!(group, &snapshot.groups[group["id"].as_str().unwrap()]);
    }
    // By email as well as by id; an unknown group is a 404.
    let email = snapshot.groups.values().next().unwrap()["email"].as_str().unwrap().to_string();
    assert_eq!(directory(&fake, &token, &format!("groups/{email}/members"), &[]).await.status(), 200);
    assert_eq!(directory(&fake, &token, "groups/nope/members", &[]).await.status(), 404);
}

#[tokio::test]
async fn deleted_users_are_listed_only_when_asked() {
    let fake = FakeGoogle::start().await.unwrap();
    let token = admin_token(&fake).await;
    let victim = fake.mutate(|t| {
        let id = t.users().nth(5).unwrap().id().to_string();
        t.delete_user(&id);
        id
    });
    let customer = [("customer", "my_customer")];
    let listed = json(directory(&fake, &token, "users", &customer).await).await;
    assert!(listed["users"].as_array().unwrap().iter().all(|u| u["id"] != victim.as_str()));
    let query = [("customer", "my_customer"), ("showDeleted", "true")];
    let deleted = json(directory(&fake, &token, "users", &query).await).await;
    assert_eq!(deleted["users"][0]["id"], victim.as_str());
    assert!(deleted["users"][0]["deletionTime"].is_string());
    assert!(!fake.snapshot().users.contains_key(&victim));
}

#[tokio::test]
async fn faults_are_answered_like_google() {
    let fake = FakeGoogle::start().await.unwrap();
    let token = admin_token(&fake).await;
    let customer = [("customer", "my_customer")];
    for (reason, status) in [
        (ctxsync_fakes::GoogleRateLimit::UserRateLimitExceeded, 403),
        (ctxsync_fakes::GoogleRateLimit::RateLimitExceeded, 429),
        (ctxsync_fakes::GoogleRateLimit::QuotaExceeded, 403),
    ] {
        fake.rate_limit_next(1, reason);
        let response = directory(&fake, &token, "users", &customer).await;
        assert_eq!(response.status(), status);
        assert_eq!(json(response).await["error"]["errors"][0]["domain"], "usageLimits");
    }
    fake.fail_next(1, 500);
    assert_eq!(directory(&fake, &token, "users", &customer).await.status(), 500);
    fake.truncate_next(1);
    let cut = directory(&fake, &token, "users", &customer).await.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&cut).is_err());

    fake.expire_access_tokens();
    assert_eq!(directory(&fake, &token, "users", &customer).await.status(), 401);
    let token = admin_token(&fake).await;
    assert_eq!(directory(&fake, &token, "users", &customer).await.status(), 200);
    assert_eq!(fake.tokens_issued(), 2);

    fake.revoke_service_account();
    assert_eq!(directory(&fake, &token, "users", &customer).await.status(), 401);
    let key_file = fake.service_account_json();
    let body =
        json(exchange(&fake, &sign(&key_file, &claims(&key_file, &fake.admin_email()), false)).await).await;
    assert_eq!(body["error_description"], "Invalid JWT Signature.");
}

/// Past the per-user quota Google answers 403 `userRateLimitExceeded` in its v1 envelope, with
/// no `Retry-After`; another admin of the same project has a quota of its own.
#[tokio::test]
async fn the_directory_answers_over_its_quota_as_google_does() {
    let fake = FakeGoogle::start().await.unwrap();
    fake.set_directory_quota(2, std::time::Duration::from_secs(60));
    let token = admin_token(&fake).await;
    let customer = [("customer", "my_customer")];
    assert_eq!(directory(&fake, &token, "users", &customer).await.status(), 200);
    assert_eq!(directory(&fake, &token, "groups", &customer).await.status(), 200);
    let refused = directory(&fake, &token, "users", &customer).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get("retry-after").is_none());
    assert_eq!(
        json(refused).await,
        json!({"error": {
            "errors": [{"domain": "usageLimits", "reason": "userRateLimitExceeded", "message": "User Rate Limit Exceeded"}],
            "code": 403,
            "message": "User Rate Limit Exceeded",
        }})
    );
    let key_file = fake.service_account_json();
    let other = exchange(&fake, &sign(&key_file, &claims(&key_file, &fake.non_admin_email()), false)).await;
    let other = json(other).await["access_token"].as_str().unwrap().to_string();
    let not_admin = json(directory(&fake, &other, "users", &customer).await).await;
    assert_eq!(
        not_admin["error"]["errors"][0]["reason"], "forbidden",
        "counted apart, refused as a non-admin"
    );
    assert_eq!((fake.busiest_window(), fake.rate_limited(), fake.queries_served()), (2, 1, 3));
}

#[tokio::test]
async fn changes_move_etags_and_show_in_the_snapshot() {
    let fake = FakeGoogle::start().await.unwrap();
    let before = fake.snapshot();
    let (user, group, added) = fake.mutate(|t| {
        let user = t.users().nth(3).unwrap().id().to_string();
        let group = t.groups().next().unwrap().id().to_string();
        t.update_user(&user, |u| u.title = Some("Chief Scientist".into()));
        let added = t.add_user("Grace", "Hopper");
        t.add_member(&group, &added);
        (user, group, added)
    });
    let after = fake.snapshot();
    assert_ne!(before.users[&user]["etag"], after.users[&user]["etag"]);
    assert_eq!(after.users[&user]["organizations"][0]["title"], "Chief Scientist");
    assert_eq!(after.users[&added]["primaryEmail"], format!("grace.hopper@{}", fake.domain()));
    assert!(after.user_members.contains(&(group.clone(), added)));
    assert_ne!(before.groups[&group]["directMembersCount"], after.groups[&group]["directMembersCount"]);
}
