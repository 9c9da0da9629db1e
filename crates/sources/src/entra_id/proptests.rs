//! Property tests of what an Entra ID run reads from Graph delta pages (users, groups with
//! `members@delta`, devices, `@removed` entries) and from its stored cursor: whatever arrives,
//! reading it never panics; a well-formed page gives one record per object, one removal per
//! `@removed` entry and one membership per member; a page cut short is refused.

use bytes::Bytes;
use proptest::prelude::*;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;

use super::*;
use crate::SinkError;
use crate::arbitrary::{any_json, damaged};

const PAGE_KEYS: &[&str] = &[
    "value",
    "@odata.nextLink",
    "@odata.deltaLink",
    "id",
    "@removed",
    "members@delta",
    "@odata.type",
    "userPrincipalName",
    "accountEnabled",
    "proxyAddresses",
    "displayName",
    "deviceId",
];

/// `Run::page` only hands pages back; nothing is sent to a sink here.
struct NoSink;

#[async_trait::async_trait]
impl PageSink for NoSink {
    async fn accept(&mut self, _: Page) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A page of `listing` read as `Run::round` reads it; `None` when it does not decode (the client
/// then reports it unreadable).
fn read(listing: Listing, body: &[u8]) -> Option<Page> {
    let reply =
        Reply { status: StatusCode::OK, headers: HeaderMap::new(), body: Bytes::copy_from_slice(body) };
    let page = decode(listing)(&reply)?;
    let mut sink = NoSink;
    let run = Run {
        sink: tokio::sync::Mutex::new(&mut sink),
        incremental: true,
        marking: false,
        resumed: false,
        roles: BTreeMap::new(),
        role_changes: Mutex::default(),
        last_group: Mutex::default(),
        owners_denied: AtomicBool::default(),
        retries: AtomicU32::default(),
    };
    Some(run.page(page.value))
}

fn listing() -> impl Strategy<Value = Listing> {
    prop::sample::select(vec![Listing::Users, Listing::Groups, Listing::Devices])
}

/// A member entry of `members@delta`; `(is a user, group or device, is removed)`.
fn member() -> impl Strategy<Value = (Value, bool, bool)> {
    let kinds = vec![
        ("#microsoft.graph.user", true),
        ("#microsoft.graph.group", true),
        ("#microsoft.graph.device", true),
        ("#microsoft.graph.orgContact", false),
        ("#microsoft.graph.servicePrincipal", false),
    ];
    (prop::sample::select(kinds), "[0-9a-f]{1,12}", any::<bool>()).prop_map(
        |((kind, modelled), id, removed)| {
            let mut entry = json!({"@odata.type": kind, "id": id});
            if removed {
                entry["@removed"] = json!({"reason": "deleted"});
            }
            (entry, modelled, removed)
        },
    )
}

/// What a well-formed page should read as.
#[derive(Debug, Default)]
struct Counts {
    records: usize,
    removals: usize,
    memberships: usize,
}

/// A well-formed delta page of `listing`: objects with distinct ids, some `@removed`, groups with
/// members, and fields of unexpected types; with a next or a delta link.
fn page(listing: Listing) -> impl Strategy<Value = (Vec<u8>, Counts)> {
    let object = (
        any::<bool>(),
        prop::collection::vec(member(), 0..5),
        prop::collection::btree_map(prop::sample::select(&PAGE_KEYS[7..]), any_json(PAGE_KEYS), 0..3),
    );
    (prop::collection::btree_set("[0-9a-f]{1,12}", 0..8), prop::collection::vec(object, 8), any::<bool>())
        .prop_map(move |(ids, objects, more)| {
            let mut counts = Counts::default();
            let mut value = Vec::new();
            // The set's ids are distinct; each takes one of the drawn objects.
            for (id, (removed, members, odd)) in ids.into_iter().zip(objects) {
                let mut object = json!({"id": id, "displayName": "x"});
                for (key, v) in odd {
                    object[key] = v;
                }
                if removed {
                    object["@removed"] = json!({"reason": "changed"});
                    counts.removals += 1;
                } else {
                    counts.records += 1;
                    if listing == Listing::Groups {
                        for (_, _, gone) in members.iter().filter(|(_, modelled, _)| *modelled) {
                            if *gone { counts.removals += 1 } else { counts.memberships += 1 }
                        }
                    }
                }
                if listing == Listing::Groups {
                    object["members@delta"] = members.into_iter().map(|m| m.0).collect();
                }
                value.push(object);
            }
            let link = if more { "@odata.nextLink" } else { "@odata.deltaLink" };
            let page =
                json!({"value": value, link: "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=x"});
            (serde_json::to_vec(&page).unwrap(), counts)
        })
}

fn any_page() -> impl Strategy<Value = (Listing, (Vec<u8>, Counts))> {
    listing().prop_flat_map(|l| (Just(l), page(l)))
}

proptest! {
    #[test]
    fn a_delta_page_reads_as_its_objects_removals_and_members((listing, (body, counts)) in any_page()) {
        let page = read(listing, &body).expect("a well-formed page reads");
        prop_assert_eq!(page.records.len(), counts.records);
        prop_assert_eq!(page.removals.len(), counts.removals);
        prop_assert_eq!(page.memberships.len(), counts.memberships);
    }

    #[test]
    fn a_damaged_delta_page_never_panics(
        (listing, body) in any_page().prop_flat_map(|(l, (body, _))| (Just(l), damaged(body))),
    ) {
        read(listing, &body);
    }

    /// A page cut short is unreadable as a whole (the client retries it), never read in part.
    #[test]
    fn a_truncated_delta_page_is_refused((listing, (body, _)) in any_page(), at in any::<prop::sample::Index>()) {
        let at = at.index(body.len());
        prop_assert!(read(listing, &body[..at]).is_none(), "{} of {} bytes read", at, body.len());
    }

    #[test]
    fn any_delta_reply_never_panics(listing in listing(), reply in any_json(PAGE_KEYS)) {
        read(listing, &serde_json::to_vec(&reply).unwrap());
    }

    /// The stored cursor is read as `sync` reads it: a cursor this connector wrote reads back
    /// as written, anything else is refused (a full run), never a panic.
    #[test]
    fn a_written_cursor_reads_back_and_any_other_is_refused(
        links in prop::array::uniform3("\\PC{0,40}"),
        roles in prop::option::of(prop::collection::btree_map("[0-9a-f]{1,8}", prop::collection::vec("\\PC{0,12}", 0..3), 0..3)),
        stored in any_json(&["users", "groups", "devices", "admin_roles"]),
    ) {
        let [users, groups, devices] = links;
        let written = DeltaCursor { users, groups, devices, admin_roles: roles };
        let stored_written = serde_json::to_value(&written).unwrap();
        let read: DeltaCursor = serde_json::from_value(stored_written).unwrap();
        prop_assert_eq!(
            (read.users, read.groups, read.devices, read.admin_roles),
            (written.users, written.groups, written.devices, written.admin_roles)
        );
        let _ = serde_json::from_value::<DeltaCursor>(stored);
    }
}
