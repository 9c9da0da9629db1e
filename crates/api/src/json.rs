//! The request-body extractor: content type, size limit, read deadline, JSON syntax and
//! duplicate keys, each failing with a `{"errors": [...]}` body rather than axum's plain-text
//! rejections.

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::ApiError;

/// Requests larger than this are refused with 413; a service account key file is about 2.5 KiB.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// The whole body must arrive within this time, or the request gets 408: a client trickling
/// bytes would otherwise hold a connection (and its file descriptor) for as long as it likes.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed JSON request body.
pub struct JsonBody(pub Value);

/// A JSON request body the route may do without (activate's overrides).
pub struct OptionalJsonBody(pub Option<Value>);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        read(request, state).await?.map(JsonBody).ok_or_else(|| {
            ApiError::bad_request(
                "request body is required: a JSON object with data.type and data.attributes",
            )
        })
    }
}

impl<S: Send + Sync> FromRequest<S> for OptionalJsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        read(request, state).await.map(OptionalJsonBody)
    }
}

/// The body as JSON, or `None` when it is empty.
async fn read<S: Send + Sync>(request: Request, state: &S) -> Result<Option<Value>, ApiError> {
    let content_type =
        request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let reading = tokio::time::timeout(BODY_READ_TIMEOUT, Bytes::from_request(request, state));
    let read = reading.await.map_err(|_| {
        ApiError::RequestTimeout(format!(
            "the request body did not arrive within {} seconds",
            BODY_READ_TIMEOUT.as_secs()
        ))
    })?;
    let bytes = read.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(_)
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            ApiError::PayloadTooLarge(format!("request body is larger than {} KiB", BODY_LIMIT_BYTES / 1024))
        }
        other => ApiError::bad_request(format!("could not read the request body: {}", other.body_text())),
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !is_json(&content_type) {
        return Err(ApiError::UnsupportedMediaType("Content-Type must be application/json".into()));
    }
    parse_unique(&bytes).map(Some)
}

/// Parses JSON like `serde_json::from_slice`, but refuses an object that names a key twice:
/// parsers disagree on which one wins (the first, the last, an error), so such a body is
/// ambiguous. The error names the key's path, never a value, as values may be secrets.
fn parse_unique(bytes: &[u8]) -> Result<Value, ApiError> {
    let duplicate = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = UniqueKeys { at: &Path::Root, duplicate: &duplicate }
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    parsed.map_err(|e| match duplicate.into_inner() {
        Some(path) => ApiError::bad_request(format!(
            "request body has the key {path} more than once; each key may appear only once"
        )),
        None => ApiError::bad_request(format!("request body is not valid JSON: {e}")),
    })
}

/// Where a value sits in the document, rendered only when a duplicate is found.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("$"),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Builds a [`Value`] as serde_json does, recording the path of the first duplicate key.
struct UniqueKeys<'a> {
    at: &'a Path<'a>,
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(UniqueKeys {
            at: &Path::Index(self.at, items.len()),
            duplicate: self.duplicate,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let path = Path::Key(self.at, &key).to_string();
                let error = de::Error::custom(format!("duplicate key {path}"));
                *self.duplicate.borrow_mut() = Some(path);
                return Err(error);
            }
            let value =
                map.next_value_seed(UniqueKeys { at: &Path::Key(self.at, &key), duplicate: self.duplicate })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{is_json, parse_unique};

    fn message(body: &str) -> String {
        parse_unique(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn parses_like_serde_json() {
        let body = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": {"d": 18446744073709551615}}"#;
        assert_eq!(
            parse_unique(body.as_bytes()).unwrap(),
            serde_json::from_str::<serde_json::Value>(body).unwrap()
        );
        assert_eq!(parse_unique(b" 7 ").unwrap(), json!(7));
    }

    #[test]
    fn duplicate_keys_are_named_by_path_without_their_values() {
        let top = message(r#"{"data": 1, "data": 2}"#);
        assert!(top.contains("the key $.data more than once"), "{top}");
        let deep = message(
            r#"{"data": {"attributes": {"secrets": {"api_token": "s3cr3t", "api_token": "other"}}}}"#,
        );
        assert!(deep.contains("$.data.attributes.secrets.api_token"), "{deep}");
        assert!(!deep.contains("s3cr3t") && !deep.contains("other"), "{deep}");
        let in_array = message(r#"{"a": [{}, {"k": 1, "k": 1}]}"#);
        assert!(in_array.contains("$.a[1].k"), "{in_array}");
    }

    #[test]
    fn syntax_errors_stay_syntax_errors() {
        assert!(message(r#"{"a": 1,}"#).contains("not valid JSON"));
        assert!(message(r#"{"a": 1} x"#).contains("not valid JSON"));
    }

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.api+json",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in ["", "text/plain", "application/x-www-form-urlencoded", "application/jsonp"] {
            assert!(!is_json(bad), "{bad}");
        }
    }
}
