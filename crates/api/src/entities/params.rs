//! Query-parameter pieces every listing of these routes reads the same way, so each reports
//! problems in the same words.

use std::collections::HashMap;

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// One problem for each parameter the route does not take.
pub(super) fn unknown(params: &HashMap<String, String>, known: &[&str]) -> Vec<String> {
    params
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|key| format!("{key}: unknown parameter; expected one of {}", known.join(", ")))
        .collect()
}

/// `page[size]`, 1 to 1000, 100 when absent.
pub(super) fn page_size(params: &HashMap<String, String>, errors: &mut Vec<String>) -> u32 {
    match params.get("page[size]").map(|s| s.parse::<u32>()) {
        None => DEFAULT_PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            errors.push(format!("page[size]: must be a number from 1 to {MAX_PAGE}"));
            DEFAULT_PAGE
        }
    }
}
