use ctxsync_fakes::{FakeOkta, OktaPermission, TenantSpec};
use reqwest::header::LINK;

use super::*;

fn links(response: &reqwest::Response) -> Vec<String> {
    response.headers().get_all(LINK).iter().map(|v| v.to_str().unwrap().to_string()).collect()
}

fn next_url(links: &[String]) -> Option<String> {
    links.iter().find(|l| l.ends_with("rel=\"next\"")).map(|l| l[1..l.find('>').unwrap()].to_string())
}

#[tokio::test]
async fn users_are_paged_with_separate_link_headers() {
    let fake = FakeOkta::start_with(TenantSpec { seed: 3, users: 45, groups: 2 }).await.unwrap();
    let base = fake.base_url();
    let mut url = format!("{base}/api/v1/users?limit=10");
    let (mut seen, mut pages) = (Vec::new(), 0);
    loop {
        let response = client()
            .get(&url)
            .header("Authorization", format!("SSWS {}", fake.api_token()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        for header in ["x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"] {
            assert!(response.headers().contains_key(header), "{header}");
        }
        let links = links(&response);
        assert!(
            links[0].starts_with(&format!("<{base}/api/v1/users?")) && links[0].ends_with(">; rel=\"self\"")
        );
        let next = next_url(&links);
        let users = json(response).await;
        seen.extend(users.as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()));
        pages += 1;
        match next {
            Some(n) => {
                assert!(
                    n.starts_with(&format!("{base}/api/v1/users?after=00u")) && n.ends_with("&limit=10"),
                    "{n}"
                );
                assert_eq!(links.len(), 2);
                url = n;
            }
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a user was listed twice");
    assert!(seen.len() <= 45 && seen.len() >= 40, "{}", seen.len());
    assert_eq!(pages, seen.len().div_ceil(10));
    assert!(seen.iter().all(|id| id.len() == 20 && id.starts_with("00u")));
}

#[tokio::test]
async fn errors_are_full_okta_error_objects() {
    let fake = FakeOkta::start().await.unwrap();
    let base = fake.base_url();
    let response = client().get(format!("{base}/api/v1/users/me")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("x-rate-limit-remaining"));
    let body = json(response).await;
    assert_eq!(body["errorCode"], "E0000011");
    assert_eq!(body["errorSummary"], "Invalid token provided");
    assert_eq!(body["errorLink"], "E0000011");
    assert!(body["errorId"].as_str().unwrap().starts_with("oae"));
    assert_eq!(body["errorCauses"], serde_json::json!([]));

    let token = fake.add_token(OktaPermission::NoPermission);
    let auth = format!("SSWS {token}");
    let me =
        client().get(format!("{base}/api/v1/users/me")).header("Authorization", &auth).send().await.unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(json(me).await["status"], "ACTIVE");
    for path in ["users", "groups"] {
        let response = client()
            .get(format!("{base}/api/v1/{path}?limit=1"))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        assert_eq!(json(response).await["errorCode"], "E0000006");
    }
}

#[tokio::test]
async fn groups_carry_stats_when_asked() {
    let fake = FakeOkta::start().await.unwrap();
    let response = client()
        .get(format!("{}/api/v1/groups?expand=stats", fake.base_url()))
        .header("Authorization", format!("SSWS {}", fake.api_token()))
        .send()
        .await
        .unwrap();
    let groups = json(response).await;
    assert_eq!(groups.as_array().unwrap().len(), 5);
    assert!(groups[0]["_embedded"]["stats"]["usersCount"].as_u64().unwrap() > 0);
    assert_eq!(groups[0]["type"], "OKTA_GROUP");
}
