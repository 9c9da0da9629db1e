//! What a run asks Graph for (the `$select` of each listing) and what Graph answers: delta
//! pages, their objects with `members@delta` apart, and role assignments.

use std::fmt;

use ctxsync_core::EntityKind;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::map;
use crate::http::Reply;

/// What the entity model needs of a user; `manager` makes the delta track the manager link.
pub(super) const USER_SELECT: &str = "id,userPrincipalName,displayName,givenName,surname,mail,otherMails,accountEnabled,\
                           jobTitle,department,employeeId,createdDateTime,userType,onPremisesImmutableId,\
                           onPremisesSamAccountName,onPremisesDomainName,onPremisesSecurityIdentifier,\
                           proxyAddresses,manager";
/// `members` makes the delta carry `members@delta`.
pub(super) const GROUP_SELECT: &str =
    "id,displayName,description,mail,mailEnabled,securityEnabled,groupTypes,members";
pub(super) const DEVICE_SELECT: &str = "id,deviceId,displayName,accountEnabled,operatingSystem,operatingSystemVersion,\
                             trustType,isCompliant,isManaged,approximateLastSignInDateTime,registrationDateTime,\
                             manufacturer,model";
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listing {
    Users,
    Groups,
    Devices,
}

impl Listing {
    pub(super) fn name(self) -> &'static str {
        match self {
            Listing::Users => "users",
            Listing::Groups => "groups",
            Listing::Devices => "devices",
        }
    }

    pub(super) fn select(self) -> &'static str {
        match self {
            Listing::Users => USER_SELECT,
            Listing::Groups => GROUP_SELECT,
            Listing::Devices => DEVICE_SELECT,
        }
    }

    pub(super) fn kind(self) -> EntityKind {
        match self {
            Listing::Users => EntityKind::User,
            Listing::Groups => EntityKind::Group,
            Listing::Devices => EntityKind::Device,
        }
    }
}

/// A page of a delta round, or of a plain list (which has no delta link).
#[derive(Deserialize)]
pub(super) struct DeltaPage<V = Vec<Item>> {
    #[serde(default)]
    pub(super) value: V,
    #[serde(rename = "@odata.nextLink")]
    pub(super) next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    pub(super) delta_link: Option<String>,
}

impl<V> DeltaPage<V> {
    pub(super) fn map<W>(self, f: impl FnOnce(V) -> W) -> DeltaPage<W> {
        DeltaPage { value: f(self.value), next_link: self.next_link, delta_link: self.delta_link }
    }
}

/// The objects of one delta page. Users are the bulk of a run, so each stays as the page's text
/// until it is read straight into what the mapping needs, and that text is its raw JSON; groups
/// and devices are taken apart (members) or added to (owners) first.
pub(super) enum Objects {
    Users(Vec<Box<RawValue>>),
    Groups(Vec<Item>),
    Devices(Vec<Item>),
}

/// Decodes a page of `listing`'s delta round.
pub(super) fn decode(listing: Listing) -> impl Fn(&Reply) -> Option<DeltaPage<Objects>> {
    move |r: &Reply| match listing {
        Listing::Users => {
            Some(serde_json::from_slice::<DeltaPage<Vec<Box<RawValue>>>>(&r.body).ok()?.map(Objects::Users))
        }
        Listing::Groups => Some(serde_json::from_slice::<DeltaPage>(&r.body).ok()?.map(Objects::Groups)),
        Listing::Devices => Some(serde_json::from_slice::<DeltaPage>(&r.body).ok()?.map(Objects::Devices)),
    }
}

/// One object of a delta page: its properties as Graph wrote them (the record's raw JSON), and
/// its `members@delta` apart.
pub(super) struct Item {
    pub(super) object: Map<String, Value>,
    pub(super) members: Option<Vec<map::Member>>,
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;

        impl<'de> Visitor<'de> for Fields {
            type Value = Item;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a directory object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
                let mut item = Item { object: Map::new(), members: None };
                while let Some(key) = map.next_key::<String>()? {
                    if key == "members@delta" {
                        item.members = Some(map.next_value()?);
                    } else {
                        let value = map.next_value()?;
                        item.object.insert(key, value);
                    }
                }
                Ok(item)
            }
        }

        deserializer.deserialize_map(Fields)
    }
}

#[derive(Deserialize)]
pub(super) struct RoleAssignments {
    #[serde(default)]
    pub(super) value: Vec<RoleAssignment>,
    #[serde(rename = "@odata.nextLink")]
    pub(super) next_link: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RoleAssignment {
    pub(super) principal_id: Option<String>,
    pub(super) role_definition: Option<RoleDefinition>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RoleDefinition {
    pub(super) display_name: Option<String>,
}
