//! Property tests of the request documents (`body.rs`) and the body extractor (`json.rs`):
//! whatever a caller sends, reading it never panics, every rejection names the field it is
//! about, and no rejection quotes a value sent under `secrets`.
//!
//! Documents are drawn mostly in the real envelope's shape, `{"data": {"type", "attributes"}}`,
//! with known and unknown attributes of every JSON type, since a purely random value rarely gets
//! past the envelope. Secret values are distinctive tokens (`tok-` and twelve characters), so
//! finding one in a message is an echo, not a coincidence.

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::Request;
use axum::http::header::CONTENT_TYPE;
use ctxsync_core::{ConfigId, DeletionGuard, FieldErrors, Schedule};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::body::{parse_activate, parse_create, parse_update, parse_validate};
use crate::error::ApiError;
use crate::json::JsonBody;

const TOKEN_PREFIX: &str = "tok-";
const TOKEN_LEN: usize = TOKEN_PREFIX.len() + 12;

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Member names: mostly plain, sometimes empty, dotted or odd.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[a-z_]{1,10}", 1 => "\\PC{0,6}"]
}

/// A secret value as a caller would paste it: a token no message may contain.
fn token() -> impl Strategy<Value = String> {
    "[a-z0-9]{12}".prop_map(|s| format!("{TOKEN_PREFIX}{s}"))
}

/// A value under `secrets`: mostly a token, sometimes blank-padded, an address, or of another
/// type.
fn secret_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => token().prop_map(Value::from),
        1 => token().prop_map(|t| Value::from(format!("  {t}  "))),
        1 => token().prop_map(|t| Value::from(format!("{t}@example.com"))),
        1 => any_json(),
        1 => prop::collection::vec(token().prop_map(Value::from), 0..3).prop_map(Value::from),
    ]
}

/// `keys`, each present most of the time with a value from `value`, and sometimes an unknown key.
fn object_of(keys: &'static [&'static str], value: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    let known = keys.iter().map(|k| prop::option::weighted(0.8, value.clone()).prop_map(move |v| (*k, v)));
    (known.collect::<Vec<_>>(), prop::option::weighted(0.2, (key(), value)))
        .prop_map(|(known, extra)| {
            let mut object: Map<String, Value> =
                known.into_iter().filter_map(|(k, v)| Some((k.to_string(), v?))).collect();
            object.extend(extra);
            Value::Object(object)
        })
        .boxed()
}

/// A service account key file as an object or as its text, its values tokens that sometimes
/// look like what the check wants (a PEM header, an address) and sometimes not.
fn key_file() -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        3 => token().prop_map(Value::from),
        2 => token().prop_map(|t| Value::from(format!("-----BEGIN PRIVATE KEY-----{t}"))),
        2 => token().prop_map(|t| Value::from(format!("{t}@example.com"))),
        1 => Just(Value::from("service_account")),
        1 => any_json(),
    ];
    let file =
        object_of(&["type", "client_email", "private_key", "project_id", "private_key_id"], value.boxed());
    prop_oneof![file.clone(), file.prop_map(|f| Value::from(f.to_string()))]
}

/// `secrets` shaped for one of the types (so the credential checks are reached), or anything.
fn secrets() -> impl Strategy<Value = Value> {
    let google =
        (object_of(&["admin_email"], secret_value().boxed()), prop::option::weighted(0.9, key_file()))
            .prop_map(|(mut s, file)| {
                if let Some(file) = file {
                    s["service_account_json"] = file;
                }
                s
            });
    prop_oneof![
        3 => object_of(&["api_token"], secret_value().boxed()),
        3 => object_of(&["client_id", "client_secret"], secret_value().boxed()),
        4 => google,
        1 => secret_value(),
    ]
}

fn integration_type() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(vec!["OKTA", "GOOGLE_WORKSPACE", "ENTRA_ID", "CROWDSTRIKE", "SENTINELONE"])
            .prop_map(Value::from),
        1 => any_json(),
    ]
}

fn settings() -> impl Strategy<Value = Value> {
    let entry = prop_oneof![
        prop::sample::select(vec![
            Schedule::INTERVAL_KEY,
            Schedule::FULL_INTERVAL_KEY,
            DeletionGuard::PERCENT_KEY,
            DeletionGuard::FLOOR_KEY,
        ])
        .prop_map(str::to_string),
        key(),
    ];
    let value = prop_oneof![
        any::<i64>().prop_map(Value::from),
        "[0-9]{1,3}[smhd]?".prop_map(Value::from),
        any_json(),
    ];
    prop_oneof![
        6 => prop::collection::btree_map(entry, value, 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => any_json(),
    ]
}

fn attributes() -> impl Strategy<Value = Value> {
    let attribute = prop_oneof![
        (Just("integration_type"), integration_type()),
        (Just("name"), prop_oneof!["[A-Za-z ]{0,12}".prop_map(Value::from), any_json()]),
        (
            Just("domain"),
            prop_oneof!["[a-z]{1,8}\\.(okta\\.com|example\\.com)".prop_map(Value::from), any_json()]
        ),
        (Just("enabled"), prop_oneof![any::<bool>().prop_map(Value::from), any_json()]),
        (Just("secrets"), secrets()),
        (Just("settings"), settings()),
    ];
    (prop::collection::vec(attribute, 0..7), prop::collection::btree_map(key(), any_json(), 0..2)).prop_map(
        |(known, unknown)| {
            let mut attrs: Map<String, Value> = unknown.into_iter().collect();
            attrs.extend(known.into_iter().map(|(k, v)| (k.to_string(), v)));
            Value::Object(attrs)
        },
    )
}

/// Documents in the envelope's shape, with each part sometimes missing or of the wrong type.
fn document() -> impl Strategy<Value = Value> {
    let resource_type = prop_oneof![
        4 => Just(json!("integration_config")),
        1 => Just(json!("activate_entra_id_request")),
        1 => any_json(),
    ];
    let id = prop_oneof![
        Just(None),
        any::<[u8; 16]>().prop_map(|b| Some(Value::from(Uuid::from_bytes(b).to_string()))),
        any_json().prop_map(Some),
    ];
    let data = (
        prop::option::weighted(0.9, resource_type),
        prop_oneof![8 => attributes().prop_map(Some), 1 => Just(None), 1 => any_json().prop_map(Some)],
        id,
        prop::collection::btree_map(key(), any_json(), 0..2),
    )
        .prop_map(|(resource_type, attributes, id, extra)| {
            let mut data: Map<String, Value> = extra.into_iter().collect();
            data.extend(resource_type.map(|t| ("type".to_string(), t)));
            data.extend(attributes.map(|a| ("attributes".to_string(), a)));
            data.extend(id.map(|i| ("id".to_string(), i)));
            Value::Object(data)
        });
    let envelope =
        (prop_oneof![8 => data, 1 => any_json()], prop::collection::btree_map(key(), any_json(), 0..2))
            .prop_map(|(data, extra)| {
                let mut doc: Map<String, Value> = extra.into_iter().collect();
                doc.insert("data".to_string(), data);
                Value::Object(doc)
            });
    prop_oneof![9 => envelope, 1 => any_json()]
}

/// Every `tok-…` token sent under `data.attributes.secrets`, including those inside a key file
/// sent as text.
fn sent_secrets(doc: &Value) -> Vec<String> {
    let Some(secrets) = doc.pointer("/data/attributes/secrets") else { return Vec::new() };
    let text = secrets.to_string();
    text.match_indices(TOKEN_PREFIX)
        .filter_map(|(at, _)| text.get(at..at + TOKEN_LEN))
        .map(str::to_string)
        .collect()
}

/// A rejection is well formed when each error names where it is: the whole body, `data` or a
/// path under it, or an unknown top-level member by its name; and none quotes a secret.
fn check_rejection(doc: &Value, errors: &FieldErrors) -> Result<(), TestCaseError> {
    prop_assert!(!errors.is_empty(), "a rejection lists at least one problem");
    let top_level = doc.as_object();
    let secrets = sent_secrets(doc);
    for error in &errors.0 {
        let named = error.path == "request body"
            || error.path == "data"
            || error.path.starts_with("data.")
            || top_level.is_some_and(|d| d.contains_key(&error.path));
        prop_assert!(named, "{error} does not start with a JSON path of {doc}");
        prop_assert!(!error.message.is_empty(), "{error} says nothing");
        let message = error.to_string();
        for secret in &secrets {
            prop_assert!(!message.contains(secret.as_str()), "{message} echoes the secret {secret}");
        }
    }
    Ok(())
}

/// The body as the routes' extractor reads it: JSON, or a 400 saying why not.
fn extract(body: Vec<u8>) -> Result<Value, ApiError> {
    let request = Request::builder().header(CONTENT_TYPE, "application/json").body(Body::from(body)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(JsonBody::from_request(request, &())).map(|JsonBody(value)| value)
}

/// A document's bytes as sent: whole, cut short, or with one byte changed.
fn sent(doc: Value) -> impl Strategy<Value = (Value, Vec<u8>)> {
    let bytes = serde_json::to_vec(&doc).unwrap();
    let len = bytes.len();
    let whole = bytes.clone();
    let cut = bytes.clone();
    prop_oneof![
        Just(whole),
        (0..len).prop_map(move |at| cut[..at].to_vec()),
        (0..len, any::<u8>()).prop_map(move |(at, byte)| {
            let mut changed = bytes.clone();
            changed[at] = byte;
            changed
        }),
    ]
    .prop_map(move |b| (doc.clone(), b))
}

proptest! {
    /// Bytes that are not JSON, such as a document cut short inside a secret, are refused with
    /// a 400 about the request body that quotes none of it.
    #[test]
    fn a_broken_body_is_refused_without_quoting_it((doc, bytes) in document().prop_flat_map(sent)) {
        match extract(bytes) {
            Ok(_) => {}
            Err(ApiError::BadRequest(messages)) => {
                for message in messages {
                    prop_assert!(message.starts_with("request body"), "{message}");
                    for secret in sent_secrets(&doc) {
                        prop_assert!(!message.contains(secret.as_str()), "{message} echoes the secret {secret}");
                    }
                }
            }
            Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
        }
    }

    #[test]
    fn create_never_panics_and_names_every_problem(doc in document()) {
        if let Err(errors) = parse_create(&doc) {
            check_rejection(&doc, &errors)?;
        }
    }

    #[test]
    fn update_never_panics_and_names_every_problem(doc in document(), id in any::<[u8; 16]>()) {
        if let Err(errors) = parse_update(&doc, ConfigId(Uuid::from_bytes(id))) {
            check_rejection(&doc, &errors)?;
        }
    }

    #[test]
    fn validate_never_panics_and_names_every_problem(doc in document()) {
        if let Err(errors) = parse_validate(&doc) {
            check_rejection(&doc, &errors)?;
        }
    }

    #[test]
    fn activate_never_panics_and_names_every_problem(doc in document()) {
        if let Err(errors) = parse_activate(&doc) {
            check_rejection(&doc, &errors)?;
        }
    }
}
