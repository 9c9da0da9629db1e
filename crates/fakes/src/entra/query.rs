//! Reading Graph's query options as Graph does (`$top`, `$skiptoken`, `$select`, `$filter`,
//! `$expand`, `Prefer: odata.maxpagesize`), refusing what it refuses with its error envelope.

use std::collections::HashMap;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::tenant::{USER_DEFAULT, USER_PROPERTIES};
use crate::common::{Refusal, absolute, now, seconds};

/// Graph's default page size for directory objects, and the largest it allows.
pub(super) const DEFAULT_PAGE: usize = 100;
pub(super) const MAX_PAGE: usize = 999;
/// The most values an `in` of a list's `$filter` may hold.
pub(super) const MAX_IN_VALUES: usize = 15;
/// Graph's error envelope: `{"error": {"code", "message", "innerError": {…}}}`.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Refusal {
    let body = json!({"error": {
        "code": code,
        "message": message,
        "innerError": {
            "date": seconds(now()),
            "request-id": uuid::Uuid::new_v4(),
            "client-request-id": uuid::Uuid::new_v4(),
        },
    }});
    Refusal::new((status, Json(body)))
}

pub(super) fn bad_request(code: &str, message: &str) -> Refusal {
    error(StatusCode::BAD_REQUEST, code, message)
}

pub(super) fn page_size(query: &HashMap<String, String>) -> Result<usize, Refusal> {
    match query.get("$top") {
        None => Ok(DEFAULT_PAGE),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(bad_request(
                "Request_UnsupportedQuery",
                &format!("Invalid page size specified: '{v}'. Must be between 1 and 999 inclusive."),
            )),
        },
    }
}

pub(super) fn skip_token<T: std::str::FromStr>(
    query: &HashMap<String, String>,
) -> Result<Option<T>, Refusal> {
    let Some(token) = query.get("$skiptoken") else { return Ok(None) };
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .map(Some)
        .ok_or_else(|| bad_request("Request_BadRequest", "The specified page token value is invalid."))
}

pub(super) fn selection(query: &HashMap<String, String>) -> Option<Vec<String>> {
    query
        .get("$select")
        .map(|s| s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect())
}

/// A plain list's `@odata.nextLink`: `$top`, the options that shaped the page, then the
/// `$skiptoken` of the page after `after`.
pub(super) fn next_link(
    base: &str,
    path: &str,
    top: usize,
    shaped: &[(&str, &str)],
    after: impl ToString,
) -> String {
    let (top, token) = (top.to_string(), URL_SAFE_NO_PAD.encode(after.to_string()));
    let mut params: Vec<(&str, &str)> = vec![("$top", &top)];
    params.extend_from_slice(shaped);
    params.push(("$skiptoken", &token));
    absolute(base, path, &params)
}

pub(super) fn unknown_property(entity_type: &str, name: &str) -> Refusal {
    bad_request(
        "Request_BadRequest",
        &format!("Could not find a property named '{name}' on type 'microsoft.graph.{entity_type}'."),
    )
}

pub(super) fn owned(properties: &[&str]) -> Vec<String> {
    properties.iter().map(|p| p.to_string()).collect()
}

/// `registeredOwners` or `registeredOwners($select=…)`, the one navigation property a device
/// list expands here: the owners' properties to serve (`id` always among them).
pub(super) fn owner_expansion(expand: &str) -> Result<Vec<String>, Refusal> {
    let (name, nested) = match expand.split_once('(') {
        Some((name, rest)) => (name.trim(), Some(rest.strip_suffix(')').unwrap_or(rest))),
        None => (expand.trim(), None),
    };
    if name != "registeredOwners" {
        return Err(unknown_property("device", name));
    }
    let mut properties = match nested {
        None => owned(USER_DEFAULT),
        Some(nested) => {
            let select = nested.strip_prefix("$select=").ok_or_else(|| {
                bad_request("Request_UnsupportedQuery", "Only $select is supported inside $expand.")
            })?;
            select.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
        }
    };
    if let Some(unknown) = properties.iter().find(|p| !USER_PROPERTIES.contains(&p.as_str())) {
        return Err(unknown_property("user", unknown));
    }
    if !properties.iter().any(|p| p == "id") {
        properties.insert(0, "id".to_string());
    }
    Ok(properties)
}

/// `id eq '…'` or `id in ('…', …)`: the ids a list's `$filter` names.
pub(super) fn listed_ids(filter: &str) -> Result<Vec<String>, Refusal> {
    let unsupported =
        || bad_request("Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified.");
    let quoted = |value: &str| -> Option<String> {
        Some(value.trim().strip_prefix('\'')?.strip_suffix('\'')?.replace("''", "'"))
    };
    let filter = filter.trim();
    if let Some(value) = filter.strip_prefix("id eq ") {
        return Ok(vec![quoted(value).ok_or_else(unsupported)?]);
    }
    let list =
        filter.strip_prefix("id in (").and_then(|rest| rest.strip_suffix(')')).ok_or_else(unsupported)?;
    let ids: Vec<String> = list.split(',').map(quoted).collect::<Option<_>>().ok_or_else(unsupported)?;
    if ids.len() > MAX_IN_VALUES {
        return Err(bad_request(
            "Request_UnsupportedQuery",
            &format!(
                "Too many child clauses specified in search filter expression containing 'OR' operators: {}. \
                 Max allowed: {MAX_IN_VALUES}.",
                ids.len()
            ),
        ));
    }
    Ok(ids)
}

/// `Prefer: odata.maxpagesize=N`, among the other preferences the header may carry.
pub(super) fn max_page_size(headers: &HeaderMap) -> Option<usize> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix("odata.maxpagesize=")?.trim().parse().ok())
}

/// `id eq '…' or id eq '…'`, the only filter delta queries accept.
pub(super) fn filter_ids(filter: &str) -> Option<Vec<String>> {
    filter
        .split(" or ")
        .map(|clause| Some(clause.trim().strip_prefix("id eq '")?.strip_suffix('\'')?.to_string()))
        .collect()
}
