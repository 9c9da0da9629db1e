//! Persons: the accounts of several sources that are one human, resolved on demand from the
//! entities as stored now (see `ctxsync_core::resolve` for the rules).
//!
//! A lookup starts from the entities answering to the identifier and follows every key their
//! users hold (addresses, sign-in names, employee ids, immutable ids, and the `logon:` names hosts
//! record them under) and their devices hold (owners, serial numbers, last logged-on users) until
//! no new account turns up, so the accounts resolved are the whole connected part of the org's link graph: the same
//! answer a resolution of the whole org would give, at the cost of a few indexed lookups.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::Json;
use axum::extract::{Query, State};
use ctxsync_core::{
    Account, AccountRef, ConfigId, Entity, EntityKind, IntegrationType, OrgId, Person, resolve,
};
use ctxsync_store::{EntityQuery, LOGON, Store, StoredEntity};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

use crate::auth::{Authorized, SiemEntitiesRead};
use crate::error::{ApiError, ErrorBody};
use crate::json::JsonBody;
use crate::state::AppState;

/// Identifiers one batch lookup may ask for (each is a resolution of its own).
const MAX_IDENTIFIERS: usize = 100;

/// [`lookup_persons`]'s request body.
pub struct PersonLookupRequest;

impl PartialSchema for PersonLookupRequest {
    fn schema() -> RefOr<Schema> {
        super::lookup::identifiers_schema(MAX_IDENTIFIERS)
    }
}

impl ToSchema for PersonLookupRequest {}
/// Rounds of following keys; a person whose accounts are further apart is cut short.
const MAX_ROUNDS: usize = 6;
/// Accounts one resolution may load before it stops following keys.
const MAX_ACCOUNTS: usize = 500;
/// Groups listed per account.
const MAX_GROUPS: u32 = 1000;

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonsResponse {
    /// Every person an account answering to the identifier belongs to: usually one, several
    /// when the identifier is shared, none when nothing answers to it.
    pub data: Vec<PersonData>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonsLookupResponse {
    /// One entry per requested identifier, in the request's order.
    pub data: Vec<PersonsLookupResult>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonsLookupResult {
    pub identifier: String,
    pub persons: Vec<PersonData>,
}

/// One person: linked accounts with their groups and roles, their devices, and every link.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PersonData {
    /// The id of the person's first account (`{config_id}:{kind}:{source_id}`); it changes when
    /// the accounts do.
    pub id: String,
    /// Always `person`.
    #[serde(rename = "type")]
    pub resource_type: &'static str,
    /// `accounts` (users: `id`, `config_id`, `integration_type`, `source_id`, `login`,
    /// `display_name`, `emails`, `employee_id`, `status`, `admin_roles`, `groups`), `devices`
    /// (`id`, `config_id`, `integration_type`, `source_id`, `name`, `os`, `status`,
    /// `serial_number`, `last_user`, `containment`, `owner`), `links` (`from`, `to`, `reason` —
    /// `same_immutable_id`, `same_employee_id`, `same_email`, `upn_alias`, `device_owner`,
    /// `same_serial`, `last_logon` — `evidence` and `why`) and `truncated` (true when the person
    /// reached beyond what one lookup follows).
    #[schema(value_type = Object)]
    pub attributes: Value,
}

/// Resolve the person (or persons) an identifier belongs to across every config.
#[utoipa::path(
    get,
    path = "/api/v2/ctxsync/persons",
    operation_id = "GetPersons",
    tag = "ctxsync",
    params(
        ("identifier" = String, Query, description = "An email, login, source id, employee id or immutable id of any account of the person."),
    ),
    responses(
        (status = 200, description = "OK", body = PersonsResponse),
        (status = 400, description = "Bad Request", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["siem_entities_read"])),
)]
pub async fn get_persons(
    State(state): State<AppState>,
    auth: Authorized<SiemEntitiesRead>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<PersonsResponse>, ApiError> {
    let identifier = params
        .get("identifier")
        .map(|i| i.trim())
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ApiError::bad_request("identifier: is required"))?;
    let types = integration_types(&*state.store, auth.org_id).await?;
    let data = persons_of(&*state.store, auth.org_id, &types, identifier).await?;
    Ok(Json(PersonsResponse { data }))
}

/// Resolve the persons of many identifiers at once.
#[utoipa::path(
    post,
    path = "/api/v2/ctxsync/persons/lookup",
    operation_id = "LookupPersons",
    tag = "ctxsync",
    request_body(content = PersonLookupRequest, content_type = "application/json", description = "`{\"identifiers\": [\"alice@example.com\", \"100042\"]}`, at most 100."),
    responses(
        (status = 200, description = "OK", body = PersonsLookupResponse),
        (status = 400, description = "Bad Request", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["siem_entities_read"])),
)]
pub async fn lookup_persons(
    State(state): State<AppState>,
    auth: Authorized<SiemEntitiesRead>,
    JsonBody(doc): JsonBody,
) -> Result<Json<PersonsLookupResponse>, ApiError> {
    let identifiers = super::lookup::parse_identifiers(&doc, MAX_IDENTIFIERS)?;
    let types = integration_types(&*state.store, auth.org_id).await?;
    let mut data = Vec::with_capacity(identifiers.len());
    for identifier in identifiers {
        let persons = persons_of(&*state.store, auth.org_id, &types, identifier.trim()).await?;
        data.push(PersonsLookupResult { identifier, persons });
    }
    Ok(Json(PersonsLookupResponse { data }))
}

async fn integration_types(
    store: &dyn Store,
    org: OrgId,
) -> Result<HashMap<ConfigId, IntegrationType>, ApiError> {
    Ok(store.list_configs(org, None).await?.into_iter().map(|c| (c.id, c.integration_type)).collect())
}

/// The entities reached from an identifier by following link keys, and whether the walk was cut.
struct Reached {
    entities: BTreeMap<AccountRef, (Account, StoredEntity)>,
    /// The accounts the identifier itself named.
    start: BTreeSet<AccountRef>,
    truncated: bool,
}

async fn persons_of(
    store: &dyn Store,
    org: OrgId,
    types: &HashMap<ConfigId, IntegrationType>,
    identifier: &str,
) -> Result<Vec<PersonData>, ApiError> {
    let reached = reach(store, org, types, identifier).await?;
    let accounts: Vec<Account> = reached.entities.values().map(|(a, _)| a.clone()).collect();
    let mut out = Vec::new();
    for person in resolve(&accounts) {
        if person.accounts.iter().any(|a| reached.start.contains(a)) {
            out.push(person_data(store, org, types, &reached, &person).await?);
        }
    }
    Ok(out)
}

async fn reach(
    store: &dyn Store,
    org: OrgId,
    types: &HashMap<ConfigId, IntegrationType>,
    identifier: &str,
) -> Result<Reached, ApiError> {
    let mut reached = Reached { entities: BTreeMap::new(), start: BTreeSet::new(), truncated: false };
    // The identifier may be any key: an indexed identifier, an employee id or an immutable id.
    let start = identifier.to_lowercase();
    let (mut identifiers, mut employee_ids, mut immutable_ids) =
        (vec![start.clone()], vec![start], vec![identifier.to_owned()]);
    let mut asked: BTreeSet<String> = BTreeSet::new();
    for round in 0..MAX_ROUNDS {
        if identifiers.is_empty() && employee_ids.is_empty() && immutable_ids.is_empty() {
            break;
        }
        let mut found: Vec<StoredEntity> =
            store.lookup_entities(org, &identifiers).await?.into_iter().map(|(_, e)| e).collect();
        found.extend(store.lookup_users_by_ids(org, &employee_ids, &immutable_ids).await?);
        asked.extend(identifiers.drain(..).map(|i| format!("id:{i}")));
        asked.extend(employee_ids.drain(..).map(|i| format!("employee:{i}")));
        asked.extend(immutable_ids.drain(..).map(|i| format!("immutable:{i}")));
        for entity in found {
            if !types.contains_key(&entity.config_id) {
                continue;
            }
            let account = Account::new(entity.config_id, &entity.entity);
            let key = account.account.clone();
            if round == 0 && key.kind != EntityKind::Group {
                reached.start.insert(key.clone());
            }
            if reached.entities.contains_key(&key) {
                continue;
            }
            let mut ask = |prefix: &str, value: &str, into: &mut Vec<String>| {
                if asked.insert(format!("{prefix}:{value}")) {
                    into.push(value.to_owned());
                }
            };
            for address in account.emails.iter().chain(account.login.iter()) {
                ask("id", address, &mut identifiers);
                // The hosts this user last logged on to, under the names a host writes.
                ask("id", &format!("{LOGON}{address}"), &mut identifiers);
            }
            if let Some((local, _)) = account.login.as_deref().and_then(|l| l.split_once('@')) {
                ask("id", &format!("{LOGON}{local}"), &mut identifiers);
            }
            // A user's AD account as hosts name it; a host's last user by SID.
            if let Some((sam, _)) = &account.sam {
                ask("id", &format!("{LOGON}{sam}"), &mut identifiers);
            }
            if let Some(sid) = account.sid.as_deref().map(str::to_lowercase) {
                let asked = if key.kind == EntityKind::User { format!("{LOGON}{sid}") } else { sid };
                ask("id", &asked, &mut identifiers);
            }
            if let Some(owner) = &account.owner {
                ask("id", &owner.to_lowercase(), &mut identifiers);
            }
            // The same machine's records in other sources, and the users its last logon names.
            if let Some(serial) = &account.serial {
                ask("id", &serial.to_lowercase(), &mut identifiers);
            }
            for name in account.logon_names() {
                ask("id", &name, &mut identifiers);
            }
            if key.kind == EntityKind::User {
                if let Some(e) = &account.employee_id {
                    ask("employee", e, &mut employee_ids);
                }
                if let Some(i) = &account.immutable_id {
                    ask("immutable", i, &mut immutable_ids);
                }
            }
            reached.entities.insert(key, (account, entity));
        }
        if reached.entities.len() >= MAX_ACCOUNTS {
            break;
        }
    }
    reached.truncated = !(identifiers.is_empty() && employee_ids.is_empty() && immutable_ids.is_empty());
    let owners: Vec<(ConfigId, String)> = reached
        .entities
        .keys()
        .filter(|k| k.kind == EntityKind::User)
        .map(|k| (k.config_id, k.source_id.clone()))
        .collect();
    for device in store.devices_owned_by(org, &owners).await? {
        if !types.contains_key(&device.config_id) {
            continue;
        }
        let account = Account::new(device.config_id, &device.entity);
        reached.entities.entry(account.account.clone()).or_insert((account, device));
    }
    Ok(reached)
}

fn account_id(a: &AccountRef) -> String {
    format!("{}:{}:{}", a.config_id, a.kind.as_str(), a.source_id)
}

async fn person_data(
    store: &dyn Store,
    org: OrgId,
    types: &HashMap<ConfigId, IntegrationType>,
    reached: &Reached,
    person: &Person,
) -> Result<PersonData, ApiError> {
    let mut accounts = Vec::new();
    let mut devices = Vec::new();
    for key in &person.accounts {
        let (_, stored) = &reached.entities[key];
        match &stored.entity {
            Entity::User(u) => {
                let query = EntityQuery {
                    config: Some(key.config_id),
                    groups_of: Some(u.source_id.clone()),
                    limit: MAX_GROUPS,
                    ..EntityQuery::default()
                };
                let groups: Vec<Value> = store
                    .list_entities(org, &query)
                    .await?
                    .into_iter()
                    .filter_map(|g| match g.entity {
                        Entity::Group(g) => {
                            Some(json!({"source_id": g.source_id, "name": g.name, "email": g.email}))
                        }
                        _ => None,
                    })
                    .collect();
                accounts.push(json!({
                    "id": account_id(key),
                    "config_id": key.config_id.to_string(),
                    "integration_type": types.get(&key.config_id).map(|t| t.as_str()),
                    "source_id": u.source_id,
                    "login": u.login,
                    "display_name": u.display_name,
                    "emails": u.emails,
                    "employee_id": u.employee_id,
                    "status": u.status.as_str(),
                    "admin_roles": u.admin_roles,
                    "groups": groups,
                }));
            }
            Entity::Device(d) => devices.push(json!({
                "id": account_id(key),
                "config_id": key.config_id.to_string(),
                "integration_type": types.get(&key.config_id).map(|t| t.as_str()),
                "source_id": d.source_id,
                "name": d.name,
                "os": d.os,
                "status": d.status,
                "serial_number": d.serial_number,
                "last_user": d.last_user,
                "containment": d.containment,
                "owner": d.owner.as_ref().map(|o| account_id(&AccountRef {
                    config_id: key.config_id,
                    kind: EntityKind::User,
                    source_id: o.clone(),
                })),
            })),
            Entity::Group(_) => {}
        }
    }
    let links: Vec<Value> = person
        .links
        .iter()
        .map(|l| {
            json!({
                "from": account_id(&l.from),
                "to": account_id(&l.to),
                "reason": l.reason,
                "evidence": l.evidence,
                "why": l.why(),
            })
        })
        .collect();
    Ok(PersonData {
        id: account_id(&person.accounts[0]),
        resource_type: "person",
        attributes: json!({
            "accounts": accounts,
            "devices": devices,
            "links": links,
            "truncated": reached.truncated,
        }),
    })
}
