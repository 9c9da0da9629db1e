//! Property tests of what an Okta run reads from Okta's replies: users pages, `Link` headers and
//! the stored cursor. Whatever arrives, reading it never panics; a well-formed page gives one
//! record per user with an id, and a cursor this connector wrote reads back as written.

use ctxsync_core::User;
use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderValue, LINK};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::super::client::next_link;
use super::*;
use crate::arbitrary::{any_json, damaged};

const USER_KEYS: &[&str] = &["status", "created", "lastLogin", "lastUpdated", "profile"];
const PROFILE_KEYS: &[&str] =
    &["login", "email", "secondEmail", "firstName", "lastName", "displayName", "managerId", "title"];

/// A users page read as `Run::users` reads it: the items kept as text, each read leniently and
/// mapped; `None` when the body is not a JSON array (the client then reports it unreadable).
fn users_page(body: &[u8]) -> Option<Vec<User>> {
    let items: Vec<Box<RawValue>> = serde_json::from_slice(body).ok()?;
    Some(
        items
            .iter()
            .filter_map(|raw| {
                let mut held = None;
                let user: OktaUser = lenient::read(raw, &mut held);
                map::user(&user, Vec::new(), None)
            })
            .collect(),
    )
}

/// A user as Okta writes one, with some of its fields (not the id) holding any value.
fn user(id: String) -> impl Strategy<Value = Value> {
    let odd = |keys| prop::collection::btree_map(prop::sample::select(keys), any_json(keys), 0..3);
    (odd(PROFILE_KEYS), odd(USER_KEYS), "[A-Z_]{0,12}").prop_map(move |(profile, top, status)| {
        let mut user = json!({
            "id": id,
            "status": status,
            "lastUpdated": "2024-05-05T18:15:44.000Z",
            "profile": {"login": "a@example.com", "email": "A@example.com", "firstName": "A"},
        });
        for (key, value) in profile {
            user["profile"][key] = value;
        }
        for (key, value) in top {
            user[key] = value;
        }
        user
    })
}

/// A well-formed users page and how many records it holds.
fn page() -> impl Strategy<Value = (Vec<u8>, usize)> {
    prop::collection::btree_set("00u[0-9a-zA-Z]{1,17}", 0..8)
        .prop_flat_map(|ids| ids.into_iter().map(user).collect::<Vec<_>>())
        .prop_map(|users| (serde_json::to_vec(&users).unwrap(), users.len()))
}

/// Link header values: real ones and junk, joined or not.
fn link_value() -> impl Strategy<Value = String> {
    let link =
        ("[a-z0-9/?=&,]{0,20}", prop::sample::select(vec!["next", "self", "\"next\"", "\"last next\""]))
            .prop_map(|(path, rel)| format!("<https://acme.okta.com/{path}>; rel={rel}"));
    prop_oneof![
        prop::collection::vec(link, 0..4).prop_map(|l| l.join(", ")),
        "[ -~]{0,60}",
        "[<>\";=, a-z]{0,30}",
    ]
}

fn okta_instant() -> impl Strategy<Value = OffsetDateTime> {
    // Okta writes years 0000-9999 with milliseconds; the cursor keeps that precision.
    (0i64..253_402_300_799, 0i64..1000).prop_map(|(secs, millis)| {
        OffsetDateTime::from_unix_timestamp(secs).unwrap() + time::Duration::milliseconds(millis)
    })
}

proptest! {
    #[test]
    fn a_users_page_gives_one_record_per_user((body, users) in page()) {
        let read = users_page(&body).expect("a well-formed page reads");
        prop_assert_eq!(read.len(), users);
    }

    #[test]
    fn a_damaged_users_page_never_panics(body in page().prop_flat_map(|(body, _)| damaged(body))) {
        users_page(&body);
    }

    /// A page cut short is unreadable as a whole (the client retries it), never read in part.
    #[test]
    fn a_truncated_users_page_is_refused((body, _) in page(), at in any::<prop::sample::Index>()) {
        let at = at.index(body.len());
        prop_assert!(users_page(&body[..at]).is_none(), "{} of {} bytes read", at, body.len());
    }

    #[test]
    fn any_link_header_reads_without_panicking(values in prop::collection::vec(link_value(), 0..3)) {
        let mut headers = HeaderMap::new();
        for value in &values {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(LINK, value);
            }
        }
        if let Some(next) = next_link(&headers) {
            prop_assert!(values.iter().any(|v| v.contains(&format!("<{next}>"))), "{next} is not a link sent");
        }
    }

    #[test]
    fn the_next_link_is_found_however_links_are_sent(
        paths in prop::collection::vec("[a-z0-9/?=&,]{0,20}", 1..4),
        next in any::<prop::sample::Index>(),
        joined in any::<bool>(),
    ) {
        let next = next.index(paths.len());
        let links: Vec<String> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| format!("<https://acme.okta.com/{p}>; rel=\"{}\"", if i == next { "next" } else { "self" }))
            .collect();
        let mut headers = HeaderMap::new();
        let values = if joined { vec![links.join(", ")] } else { links };
        for value in values {
            headers.append(LINK, HeaderValue::from_str(&value).unwrap());
        }
        let expected = format!("https://acme.okta.com/{}", paths[next]);
        prop_assert_eq!(next_link(&headers), Some(expected));
    }

    #[test]
    fn a_written_cursor_reads_back(users in okta_instant(), groups in okta_instant(), memberships in okta_instant()) {
        let roles = Some(BTreeMap::from([("00u1".to_string(), vec!["SUPER_ADMIN".to_string()])]));
        let newest = [users, groups, memberships].map(|t| {
            let mut newest = Newest::default();
            newest.see(Some(t));
            newest
        });
        let cursor = cursor::write(newest, None, None, roles.clone());
        let (read, times) = read_cursor(&cursor).expect("a written cursor reads");
        prop_assert_eq!(times, [users, groups, memberships]);
        prop_assert_eq!(read.roles, roles);
    }

    #[test]
    fn any_stored_cursor_reads_or_means_a_full_run(
        stored in prop_oneof![any_json(&["users", "groups", "memberships", "roles"]), any_json(&["users"]).prop_map(|v| json!({
            "users": v, "groups": "2024-01-01T00:00:00.000Z", "memberships": "2024-01-01T00:00:00.000Z"
        }))],
    ) {
        if let Err(e) = read_cursor(&Cursor(stored)) {
            prop_assert_eq!(e, SyncError::CursorExpired);
        }
    }
}
