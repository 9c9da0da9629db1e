//! Property tests of what a Google Workspace run reads from Directory API pages (users, groups,
//! members): whatever arrives, reading it never panics, a well-formed users page gives one
//! record per user with an id, and a page cut short is refused rather than read in part.

use ctxsync_core::User;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::arbitrary::{any_json, damaged};

const USER_KEYS: &[&str] = &[
    "primaryEmail",
    "emails",
    "aliases",
    "name",
    "organizations",
    "relations",
    "externalIds",
    "isAdmin",
    "suspended",
    "archived",
    "creationTime",
    "isEnrolledIn2Sv",
];
const LIST_KEYS: &[&str] =
    &["users", "groups", "members", "nextPageToken", "id", "type", "email", "name", "directMembersCount"];

/// A users page read as `Run::users` reads it; `None` when the body is not a list reply (the
/// client then reports it unreadable).
fn users_page(body: &[u8]) -> Option<(Vec<User>, Option<String>)> {
    let list: List<Box<RawValue>> = serde_json::from_slice(body).ok()?;
    let users = list
        .items
        .iter()
        .filter_map(|raw| {
            let mut held = None;
            map::user(&lenient::read(raw, &mut held))
        })
        .collect();
    Some((users, list.next_page_token))
}

/// A groups page and a members page read as `Run::groups` and `Run::members` read them.
fn groups_and_members(body: &[u8]) -> Option<(Vec<Record>, Vec<Membership>, Option<u64>)> {
    let list: List = serde_json::from_slice(body).ok()?;
    let counts = list.items.iter().filter_map(direct_members_count).max();
    let members = list.items.iter().filter_map(|m| map::member("g1", m)).collect();
    Some((list.items.into_iter().filter_map(map::group).collect(), members, counts))
}

/// A well-formed users page, its users' fields sometimes of other types, and how many records
/// it holds.
fn page() -> impl Strategy<Value = (Vec<u8>, usize)> {
    let user = |id: String| {
        prop::collection::btree_map(prop::sample::select(USER_KEYS), any_json(USER_KEYS), 0..4).prop_map(
            move |odd| {
                let mut user = json!({"id": id, "primaryEmail": "a@example.com", "name": {"fullName": "A"}});
                for (key, value) in odd {
                    user[key] = value;
                }
                user
            },
        )
    };
    (prop::collection::btree_set("[0-9]{1,21}", 0..8), prop::option::of("[A-Za-z0-9]{1,16}"))
        .prop_flat_map(move |(ids, token)| (ids.into_iter().map(user).collect::<Vec<_>>(), Just(token)))
        .prop_map(|(users, token)| {
            let mut page = json!({"kind": "admin#directory#users", "users": users});
            if let Some(token) = token {
                page["nextPageToken"] = token.into();
            }
            (serde_json::to_vec(&page).unwrap(), users.len())
        })
}

proptest! {
    #[test]
    fn a_users_page_gives_one_record_per_user((body, users) in page()) {
        let (read, _) = users_page(&body).expect("a well-formed page reads");
        prop_assert_eq!(read.len(), users);
    }

    #[test]
    fn a_damaged_users_page_never_panics(body in page().prop_flat_map(|(body, _)| damaged(body))) {
        users_page(&body);
        groups_and_members(&body);
    }

    /// A page cut short is unreadable as a whole (the client retries it), never read in part.
    #[test]
    fn a_truncated_users_page_is_refused((body, _) in page(), at in any::<prop::sample::Index>()) {
        let at = at.index(body.len());
        prop_assert!(users_page(&body[..at]).is_none(), "{} of {} bytes read", at, body.len());
    }

    #[test]
    fn any_list_reply_never_panics(reply in any_json(LIST_KEYS)) {
        let body = serde_json::to_vec(&reply).unwrap();
        users_page(&body);
        groups_and_members(&body);
    }

    /// The same token twice would loop forever, so it is an error; an empty one ends the list.
    #[test]
    fn page_tokens_end_or_advance(previous in prop::option::of("\\PC{0,8}"), token in prop::option::of("\\PC{0,8}")) {
        match next(previous.clone(), token.clone()) {
            Ok(Some(t)) => prop_assert!(Some(&t) == token.as_ref() && previous.as_ref() != Some(&t)),
            Ok(None) => prop_assert!(token.is_none_or(|t| t.is_empty())),
            Err(_) => prop_assert!(token.is_some_and(|t| !t.is_empty() && previous == Some(t))),
        }
    }
}
