//! Delta rounds over the change log: each page is a range of a collection's log after the
//! round's position, so a page costs the page, never the tenant. An initial round lists every
//! live object; a later one what changed after its token's tick, deleted objects as `@removed`
//! and groups with only their changed members.

use std::ops::Bound;

use serde_json::{Value, json};
use uuid::Uuid;

use super::{EntraTenant, Member, device_property, group_property, render, user_property};

/// Which delta collection a round walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Users,
    Groups,
    Devices,
}

/// Where a delta round stands: changes after tick `since` are wanted (0: the initial round,
/// which lists every live object), and the log was read up to tick `after`. `member` is set when
/// the group at tick `after` was cut short after that member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub since: u64,
    pub after: u64,
    pub member: Option<Member>,
}

/// What one delta request asks for.
pub(crate) struct DeltaQuery<'a> {
    /// Plain properties to include.
    pub properties: &'a [String],
    /// Whether `manager` (users) or `members` (groups) was selected.
    pub relation: bool,
    pub limit: usize,
    /// How many `members@delta` entries one page carries at most.
    pub member_limit: usize,
}

pub(crate) struct DeltaPage {
    pub value: Vec<Value>,
    /// Where the round continues; `None` when it is complete.
    pub next: Option<Position>,
    /// The clock when the page was made: a round that ends here continues from it.
    pub clock: u64,
}

fn removed(id: &Uuid) -> Value {
    json!({"id": id.to_string(), "@removed": {"reason": "deleted"}})
}

impl EntraTenant {
    /// The current state of the given users (at most 50), as a filtered delta round lists it.
    pub(crate) fn delta_users_by_id(&self, ids: &[String], query: &DeltaQuery) -> Vec<Value> {
        ids.iter().filter_map(|id| self.users.find(id)).map(|slot| self.user_item(slot, query)).collect()
    }

    fn user_item(&self, slot: u32, query: &DeltaQuery) -> Value {
        let s = &self.users.slots[slot as usize];
        let mut json = render(query.properties, false, |p| user_property(&s.id, &s.value, p));
        if query.relation
            && let Some(manager) = &s.value.manager
        {
            json.insert(
                "manager@delta".into(),
                json!([{"@odata.type": "#microsoft.graph.user", "id": manager}]),
            );
        }
        Value::Object(json)
    }

    /// One page of a delta round from `at`.
    pub(crate) fn delta(&self, kind: Kind, at: Position, query: &DeltaQuery) -> DeltaPage {
        let initial = at.since == 0;
        let mut value = Vec::new();
        let mut members_left = query.member_limit.max(1);
        let page = |value, next| DeltaPage { value, next, clock: self.clock };

        // A group cut short by the previous page comes first, unless it changed since (it then
        // comes again, whole, at its new tick).
        if let (Kind::Groups, Some(after_member)) = (kind, at.member)
            && let Some(&slot) = self.groups.log.get(&at.after)
            && !self.groups.slots[slot as usize].deleted
        {
            let (item, cut) = self.group_item(slot, at.since, Some(after_member), query, &mut members_left);
            value.push(item);
            if let Some(member) = cut {
                return page(value, Some(Position { member: Some(member), ..at }));
            }
        }

        let log = match kind {
            Kind::Users => &self.users.log,
            Kind::Groups => &self.groups.log,
            Kind::Devices => &self.devices.log,
        };
        let mut last = at.after.max(at.since);
        for (&version, &slot) in log.range((Bound::Excluded(last), Bound::Unbounded)) {
            if value.len() >= query.limit || members_left == 0 {
                return page(value, Some(Position { since: at.since, after: last, member: None }));
            }
            last = version;
            let (deleted, id) = match kind {
                Kind::Users => (self.users.slots[slot as usize].deleted, self.users.slots[slot as usize].id),
                Kind::Groups => {
                    (self.groups.slots[slot as usize].deleted, self.groups.slots[slot as usize].id)
                }
                Kind::Devices => {
                    (self.devices.slots[slot as usize].deleted, self.devices.slots[slot as usize].id)
                }
            };
            if deleted {
                if !initial {
                    value.push(removed(&id));
                }
                continue;
            }
            match kind {
                Kind::Users => value.push(self.user_item(slot, query)),
                Kind::Devices => {
                    let s = &self.devices.slots[slot as usize];
                    value.push(Value::Object(render(query.properties, false, |p| {
                        device_property(&s.id, &s.value, p)
                    })));
                }
                Kind::Groups => {
                    let (item, cut) = self.group_item(slot, at.since, None, query, &mut members_left);
                    value.push(item);
                    if let Some(member) = cut {
                        let at = Position { since: at.since, after: version, member: Some(member) };
                        return page(value, Some(at));
                    }
                }
            }
        }
        page(value, None)
    }

    /// A group as a delta page shows it, with as many of its member changes as fit; and the
    /// member it was cut short after, when more remain.
    fn group_item(
        &self,
        slot: u32,
        since: u64,
        after_member: Option<Member>,
        query: &DeltaQuery,
        members_left: &mut usize,
    ) -> (Value, Option<Member>) {
        let s = &self.groups.slots[slot as usize];
        let mut json = render(query.properties, false, |p| group_property(&s.id, &s.value, p));
        let mut cut = None;
        if query.relation {
            let start = after_member.map_or(Bound::Unbounded, Bound::Excluded);
            let wanted = s
                .value
                .members
                .range((start, Bound::Unbounded))
                .filter(|(_, c)| if since == 0 { c.present } else { c.version > since });
            let mut list = Vec::new();
            let mut last = None;
            for (member, change) in wanted {
                if list.len() == *members_left {
                    cut = last;
                    break;
                }
                let mut entry = json!({
                    "@odata.type": member.kind.odata_type(),
                    "id": self.member_id(*member).to_string(),
                });
                if !change.present {
                    entry["@removed"] = json!({"reason": "deleted"});
                }
                list.push(entry);
                last = Some(*member);
            }
            *members_left -= list.len();
            if !list.is_empty() {
                json.insert("members@delta".into(), Value::Array(list));
            }
        }
        (Value::Object(json), cut)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::directory::{Directory, TenantSpec};

    fn tenant(users: usize, groups: usize, devices: usize) -> EntraTenant {
        let spec = TenantSpec { seed: 7, users, groups, devices };
        EntraTenant::generate(&Directory::generate(&spec), &spec)
    }

    fn query(properties: &[String], limit: usize, member_limit: usize) -> DeltaQuery<'_> {
        DeltaQuery { properties, relation: true, limit, member_limit }
    }

    /// Every item of a whole delta round, following positions as a client follows nextLinks.
    fn round(
        t: &EntraTenant,
        kind: Kind,
        since: u64,
        limit: usize,
        member_limit: usize,
    ) -> (Vec<Value>, u64) {
        let properties = vec!["id".to_string(), "displayName".to_string()];
        let mut at = Position { since, after: since, member: None };
        let mut items = Vec::new();
        loop {
            let page = t.delta(kind, at, &query(&properties, limit, member_limit));
            assert!(page.value.len() <= limit);
            items.extend(page.value);
            match page.next {
                Some(next) => at = next,
                None => return (items, page.clock),
            }
        }
    }

    fn members_of(items: &[Value]) -> BTreeSet<(String, String, bool)> {
        items
            .iter()
            .flat_map(|g| {
                let group = g["id"].as_str().unwrap().to_string();
                g["members@delta"].as_array().cloned().unwrap_or_default().into_iter().map(move |m| {
                    (group.clone(), m["id"].as_str().unwrap().to_string(), m.get("@removed").is_some())
                })
            })
            .collect()
    }

    #[test]
    fn an_initial_round_lists_everything_once_across_pages() {
        let t = tenant(300, 7, 20);
        let (users, _) = round(&t, Kind::Users, 0, 17, 10);
        let ids: BTreeSet<&str> = users.iter().map(|u| u["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), users.len());
        assert_eq!(ids, t.snapshot().users.keys().map(String::as_str).collect());

        // Groups are cut into member slices of at most 10 and repeated across pages.
        let (groups, _) = round(&t, Kind::Groups, 0, 5, 10);
        assert!(groups.len() > 7, "{}", groups.len());
        let members: BTreeSet<(String, String)> = members_of(&groups)
            .into_iter()
            .map(|(g, m, removed)| {
                assert!(!removed);
                (g, m)
            })
            .collect();
        let expected: BTreeSet<(String, String)> =
            t.snapshot().memberships.into_iter().map(|(g, _, m)| (g, m)).collect();
        assert_eq!(members, expected);
    }

    #[test]
    fn a_later_round_lists_only_changes_with_removals() {
        let mut t = tenant(60, 4, 5);
        let (_, token) = round(&t, Kind::Users, 0, 1000, 1000);
        let (_, group_token) = round(&t, Kind::Groups, 0, 1000, 1000);
        let ids: Vec<String> = t.users().map(|(id, _)| id).collect();
        let group = t.groups().next().unwrap().0;
        let reports: Vec<String> = t
            .users()
            .filter(|(_, u)| u.manager.as_deref() == Some(ids[6].as_str()))
            .map(|(id, _)| id)
            .collect();
        let added = t.add_user("Barbara", "Liskov");
        t.disable_user(&ids[5]);
        t.delete_user(&ids[6]);
        t.update_user(&ids[7], |u| u.department = None);
        let unchanged = t.user(&ids[8]).unwrap().department.clone();
        t.update_user(&ids[8], |u| u.department = unchanged);
        t.add_member(&group, &added);

        let (users, _) = round(&t, Kind::Users, token, 2, 1000);
        let changed: BTreeSet<(&str, bool)> =
            users.iter().map(|u| (u["id"].as_str().unwrap(), u.get("@removed").is_some())).collect();
        // The deleted user's reports lost their manager: they changed too.
        let mut expected: BTreeSet<(&str, bool)> = reports.iter().map(|r| (r.as_str(), false)).collect();
        expected.extend([
            (added.as_str(), false),
            (ids[5].as_str(), false),
            (ids[6].as_str(), true),
            (ids[7].as_str(), false),
        ]);
        assert_eq!(changed, expected);

        let (groups, _) = round(&t, Kind::Groups, group_token, 1000, 1000);
        let members = members_of(&groups);
        assert!(members.contains(&(group.clone(), added.clone(), false)));
        assert!(
            members.iter().all(|(g, m, removed)| (g == &group && m == &added && !removed)
                || (m == &ids[6] && *removed)),
            "{members:?}"
        );
    }
}
