//! The served OpenAPI document against the contract (`docs/contract/…openapi.yaml`): the same
//! operations at the same paths and methods, parameters, declared statuses, scopes, required
//! fields and enums. ctxsync's documented deviations are listed here, each with its reason.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app;

const CONTRACT: &str = include_str!("../../../../docs/contract/datadog-integration-config.openapi.yaml");

/// Required attributes ctxsync adds, by schema: Entra ID needs an app registration's client
/// credentials because ctxsync has no Datadog-side Azure integration to borrow them from.
const EXTRA_REQUIRED: &[(&str, &str)] = &[
    ("SecurityMonitoringEntraIdIntegrationConfigCreateAttributes", "secrets"),
    ("SecurityMonitoringEntraIdIntegrationCredentialsValidateAttributes", "secrets"),
    // Domain-wide delegation needs a user to impersonate; without it every call fails.
    ("SecurityMonitoringIntegrationConfigGoogleWorkspaceSecrets", "admin_email"),
];

/// Required attributes ctxsync does not require, by schema: the original contract says of an
/// update's attributes that "All fields are optional"; the newer schema requires the type, which
/// the newer clients always send and ctxsync accepts.
const FEWER_REQUIRED: &[(&str, &str)] = &[
    ("SecurityMonitoringGoogleWorkspaceIntegrationConfigUpdateAttributes", "integration_type"),
    ("SecurityMonitoringOktaIntegrationConfigUpdateAttributes", "integration_type"),
    ("SecurityMonitoringEntraIdIntegrationConfigUpdateAttributes", "integration_type"),
    ("SecurityMonitoringCrowdStrikeIntegrationConfigUpdateAttributes", "integration_type"),
];

/// Schemas whose `oneOf` ctxsync serves as an `anyOf` of the same members: an update without
/// `integration_type` matches every type's attributes, and no discriminator can pick one.
const ANY_OF: &[&str] = &["SecurityMonitoringIntegrationConfigUpdateAttributes"];

/// Every operation of the family.
const OPERATIONS: &[&str] = &[
    "ListSecurityMonitoringIntegrationConfigs",
    "CreateSecurityMonitoringIntegrationConfig",
    "GetSecurityMonitoringIntegrationConfig",
    "UpdateSecurityMonitoringIntegrationConfig",
    "DeleteSecurityMonitoringIntegrationConfig",
    "ValidateSecurityMonitoringIntegrationCredentials",
    "ValidateSecurityMonitoringIntegrationConfig",
    "ActivateIntegration",
    "DeactivateIntegration",
    "GetEntraIdAzureAppRegistrations",
];

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("operationId").is_some() {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
    }
    out
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let mut parts = r.trim_start_matches("#/components/").split('/');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap());
            resolve(doc, &doc["components"][kind][name])
        }
        None => v,
    }
}

fn set(v: &Value) -> BTreeSet<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

async fn served_document(app: &crate::helpers::TestApp) -> Value {
    let url = format!("{}/api/v2/openapi.json", app.address);
    app.client.get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn served_document_matches_the_contract() {
    let app = spawn_app().await;
    let ours = served_document(&app).await;
    let contract: Value = serde_norway::from_str(CONTRACT).unwrap();

    let our_ops = operations(&ours);
    for (path, method, theirs) in operations(&contract) {
        let id = theirs["operationId"].as_str().unwrap();
        if !OPERATIONS.contains(&id) {
            continue;
        }
        let (our_path, our_method, op) = our_ops
            .iter()
            .find(|(_, _, o)| o["operationId"] == id)
            .unwrap_or_else(|| panic!("{id} is not served"));
        assert_eq!((our_path, our_method), (&path, &method), "{id}");

        let params = |doc: &Value, op: &Value| -> BTreeSet<(String, String, bool)> {
            op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let p = resolve(doc, p);
                    (
                        p["name"].as_str().unwrap().to_string(),
                        p["in"].as_str().unwrap().to_string(),
                        p["required"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        };
        assert_eq!(params(&ours, op), params(&contract, &theirs), "{id} parameters");

        let statuses = keys(&theirs["responses"]);
        assert!(
            statuses.is_subset(&keys(&op["responses"])),
            "{id}: {statuses:?} vs {:?}",
            keys(&op["responses"])
        );
        for status in &statuses {
            let has_body =
                |doc: &Value, o: &Value| resolve(doc, &o["responses"][status]).get("content").is_some();
            assert_eq!(has_body(&ours, op), has_body(&contract, &theirs), "{id} {status} body");
        }

        let scope = |o: &Value| {
            o["security"].as_array().unwrap().iter().find_map(|s| s.get("AuthZ").cloned()).unwrap()
        };
        assert_eq!(scope(op), scope(&theirs), "{id} scope");

        assert_eq!(op.get("requestBody").is_some(), theirs.get("requestBody").is_some(), "{id} request body");
        if let Some(body) = theirs.get("requestBody") {
            let schema =
                |doc: &Value, b: &Value| resolve(doc, &b["content"]["application/json"]["schema"]).clone();
            compare_schema(
                &ours,
                &schema(&ours, &op["requestBody"]),
                &contract,
                &schema(&contract, body),
                id,
            );
        }
        if let Some(ok) = theirs["responses"]["200"]["content"]["application/json"]["schema"].get("$ref") {
            let name = ok.as_str().unwrap().rsplit('/').next().unwrap();
            compare_schema(
                &ours,
                &ours["components"]["schemas"][name],
                &contract,
                &contract["components"]["schemas"][name],
                name,
            );
        }
    }
    for name in [
        "SecurityMonitoringIntegrationType",
        "SecurityMonitoringIntegrationConfigState",
        "SecurityMonitoringIntegrationConfigResourceType",
    ] {
        assert_eq!(
            set(&ours["components"]["schemas"][name]["enum"]),
            set(&contract["components"]["schemas"][name]["enum"]),
            "{name}"
        );
    }
}

/// Walks both schemas together: same required fields (plus the documented extras), every
/// contract property present, same enums; `oneOf` members matched by discriminator value.
fn compare_schema(ours_doc: &Value, ours: &Value, doc: &Value, theirs: &Value, at: &str) {
    let ours = resolve(ours_doc, ours);
    let theirs = resolve(doc, theirs);
    if let Some(one_of) = theirs.get("oneOf")
        && ANY_OF.contains(&at)
    {
        let refs = |v: &Value| v.as_array().map(|a| a.iter().map(|m| m["$ref"].clone()).collect::<Vec<_>>());
        let theirs_one = refs(one_of).unwrap();
        assert!(ours.get("discriminator").is_none(), "{at}: an optional property cannot discriminate");
        for member in refs(&ours["anyOf"]).unwrap_or_else(|| panic!("{at}: not an anyOf")) {
            assert!(theirs_one.contains(&member), "{at}: {member} is not in the contract");
            let target = member.as_str().unwrap();
            let name = target.rsplit('/').next().unwrap();
            compare_schema(ours_doc, &member, doc, &member, name);
        }
        return;
    }
    if let Some(one_of) = theirs.get("oneOf") {
        let mapping = &theirs["discriminator"]["mapping"];
        let our_mapping = &ours["discriminator"]["mapping"];
        assert_eq!(ours["discriminator"]["propertyName"], theirs["discriminator"]["propertyName"], "{at}");
        assert!(one_of.is_array());
        for (value, target) in our_mapping.as_object().unwrap_or_else(|| panic!("{at}: no discriminator")) {
            let contract_target =
                mapping[value].as_str().unwrap_or_else(|| panic!("{at}: {value} not in the contract"));
            assert_eq!(target, contract_target, "{at}: same schema name for {value}");
            let name = contract_target.rsplit('/').next().unwrap();
            compare_schema(ours_doc, &json_ref(contract_target), doc, &json_ref(contract_target), name);
        }
        return;
    }
    let mut expected = set(&theirs["required"]);
    expected.extend(EXTRA_REQUIRED.iter().filter(|(s, _)| *s == at).map(|(_, f)| f.to_string()));
    for (_, field) in FEWER_REQUIRED.iter().filter(|(s, _)| *s == at) {
        expected.remove(*field);
    }
    assert_eq!(set(&ours["required"]), expected, "{at}: required");
    if theirs.get("enum").is_some() {
        assert_eq!(set(&ours["enum"]), set(&theirs["enum"]), "{at}: enum");
    }
    let their_props = keys(&theirs["properties"]);
    assert!(
        their_props.is_subset(&keys(&ours["properties"])),
        "{at}: properties {their_props:?} vs {:?}",
        keys(&ours["properties"])
    );
    for prop in their_props {
        let their_prop = &theirs["properties"][&prop];
        let name =
            their_prop.get("$ref").and_then(Value::as_str).map(|r| r.rsplit('/').next().unwrap().to_string());
        compare_schema(
            ours_doc,
            &ours["properties"][&prop],
            doc,
            their_prop,
            name.as_deref().unwrap_or(&format!("{at}.{prop}")),
        );
    }
}

fn json_ref(target: &str) -> Value {
    serde_json::json!({ "$ref": target })
}

/// ctxsync's own operations, each under its own path beside the Datadog-compatible family.
const OWN_OPERATIONS: &[(&str, &str, &str)] = &[
    ("get", "/api/v2/ctxsync/entities", "ListEntities"),
    ("get", "/api/v2/ctxsync/events", "ListChangeEvents"),
    ("get", "/api/v2/ctxsync/integration_configs/{config_id}/sync_runs", "ListSyncRuns"),
    ("post", "/api/v2/ctxsync/integration_configs/{config_id}/sync", "SyncNow"),
    ("get", "/api/v2/ctxsync/integration_configs/{config_id}/health", "GetSyncHealth"),
    (
        "get",
        "/api/v2/ctxsync/integration_configs/{config_id}/sync_runs/{run_id}/held_deletions",
        "ListHeldDeletions",
    ),
    (
        "post",
        "/api/v2/ctxsync/integration_configs/{config_id}/sync_runs/{run_id}/confirm_deletions",
        "ConfirmHeldDeletions",
    ),
    (
        "post",
        "/api/v2/ctxsync/integration_configs/{config_id}/sync_runs/{run_id}/discard_deletions",
        "DiscardHeldDeletions",
    ),
];

#[tokio::test]
async fn own_routes_are_documented_under_their_own_paths() {
    let doc = served_document(&spawn_app().await).await;
    for (method, path, id) in OWN_OPERATIONS {
        let op = &doc["paths"][path][method];
        assert_eq!(op["operationId"], *id, "{method} {path}");
        assert_eq!(op["tags"], serde_json::json!(["ctxsync"]), "{method} {path}");
        assert!(op["responses"]["403"].is_object(), "{method} {path} documents its scope refusal");
    }
}

/// Every `page[size]` the document describes has the bounds the server enforces.
#[tokio::test]
async fn page_sizes_are_documented_with_the_bounds_the_server_enforces() {
    let app = spawn_app().await;
    let doc = served_document(&app).await;
    let mut documented = 0;
    for (path, method, op) in operations(&doc) {
        for param in op["parameters"].as_array().into_iter().flatten() {
            if param["name"] == "page[size]" {
                documented += 1;
                let schema = &param["schema"];
                assert_eq!(
                    (schema["minimum"].as_f64(), schema["maximum"].as_f64()),
                    (Some(1.0), Some(1000.0)),
                    "{method} {path}"
                );
            }
        }
    }
    assert!(documented >= 3, "{documented}");
    for (size, status) in [
        ("1000", reqwest::StatusCode::OK),
        ("1001", reqwest::StatusCode::BAD_REQUEST),
        ("0", reqwest::StatusCode::BAD_REQUEST),
    ] {
        let response = app
            .request(reqwest::Method::GET, &format!("/api/v2/ctxsync/entities?page[size]={size}"), None)
            .await;
        assert_eq!(response.status(), status, "page[size]={size}");
    }
}

/// The lookups' bodies are described as they are read: 1 to N non-empty identifiers.
#[tokio::test]
async fn lookup_bodies_are_described_as_the_server_reads_them() {
    let app = spawn_app().await;
    let doc = served_document(&app).await;
    for (path, max) in [("/api/v2/ctxsync/entities/lookup", 1000), ("/api/v2/ctxsync/persons/lookup", 100)] {
        let body = &doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"];
        let schema = resolve(&doc, body);
        assert_eq!(schema["required"], serde_json::json!(["identifiers"]), "{path}");
        let list = &schema["properties"]["identifiers"];
        assert_eq!((list["minItems"].as_u64(), list["maxItems"].as_u64()), (Some(1), Some(max)), "{path}");
        assert_eq!(list["items"]["minLength"], 1, "{path}");
        let at_most = serde_json::json!({"identifiers": vec!["a@example.com"; max as usize]});
        let too_many = serde_json::json!({"identifiers": vec!["a@example.com"; max as usize + 1]});
        let post = |b| app.request(reqwest::Method::POST, path, Some(b));
        assert_eq!(post(at_most).await.status(), reqwest::StatusCode::OK, "{path}");
        assert_eq!(post(too_many).await.status(), reqwest::StatusCode::BAD_REQUEST, "{path}");
    }
}

/// Each operation's documented statuses include the errors the layers in front of its handler
/// answer: a URI too long, headers too large, and for a body a content type other than JSON.
#[tokio::test]
async fn every_operation_documents_the_errors_any_request_can_meet() {
    let app = spawn_app().await;
    let doc = served_document(&app).await;
    let ops = operations(&doc);
    assert!(ops.len() >= 20, "{}", ops.len());
    let credentials = format!("DD-API-KEY: {}\r\nDD-APPLICATION-KEY: {}\r\n", app.api_key, app.app_key);
    for (path, method, op) in ops {
        let documented = keys(&op["responses"]);
        let path_without_braces = path.replace(['{', '}'], "");
        let method = method.to_uppercase();
        let long = format!(
            "{method} {path_without_braces}?filter={} HTTP/1.1\r\nHost: ctxsync\r\n{credentials}\r\n",
            "a".repeat(70 * 1024)
        );
        let padded = format!(
            "{method} {path_without_braces} HTTP/1.1\r\nHost: ctxsync\r\n{credentials}X-Padding: {}\r\n\r\n",
            "a".repeat(600 * 1024)
        );
        let mut requests = vec![long, padded];
        if op.get("requestBody").is_some() {
            requests.push(format!(
                "{method} {path_without_braces} HTTP/1.1\r\nHost: ctxsync\r\n{credentials}Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            ));
        }
        for request in requests {
            let answer = answer_to(&app.address, &request).await;
            let status = answer.split(' ').nth(1).unwrap_or_default().to_owned();
            assert!(
                documented.contains(&status),
                "{method} {path} answered {status}, documented {documented:?}"
            );
        }
    }
}

/// The answer to `request` on a connection of its own. The server may answer and close before it
/// has read all of an oversized request, so a failed write or a reset after the answer is not an
/// error here: what arrived before it is the answer. A reset can also discard the answer before it
/// is read, so an empty one is asked for again, a few times.
async fn answer_to(address: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _ in 0..5 {
        let mut stream = tokio::net::TcpStream::connect(address.trim_start_matches("http://")).await.unwrap();
        let _ = stream.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut buffer).await {
            answer.extend_from_slice(&buffer[..n]);
        }
        if !answer.is_empty() {
            return String::from_utf8_lossy(&answer).into_owned();
        }
    }
    panic!("no answer to a {}-byte request in five tries", request.len());
}
