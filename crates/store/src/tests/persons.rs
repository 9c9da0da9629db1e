//! What identity resolution asks of the store beyond identifier lookups: users by employee id or
//! immutable id, and the devices a user owns.

use ctxsync_core::{Device, Entity, EntityKind, Record, RunKind, User, UserStatus};
use serde_json::json;

use super::sync::{Db, db};
use crate::{PageWrite, PreparedEntities};

fn user(id: &str, employee_id: Option<&str>, immutable_id: Option<&str>) -> Record {
    Record::from_value(
        Entity::User(User {
            source_id: id.into(),
            login: format!("{id}@x.com"),
            emails: vec![format!("{id}@x.com")],
            verified_emails: vec![format!("{id}@x.com")],
            immutable_id: immutable_id.map(Into::into),
            on_premises: None,
            display_name: None,
            given_name: None,
            family_name: None,
            status: UserStatus::Active,
            title: None,
            department: None,
            manager: None,
            employee_id: employee_id.map(Into::into),
            created_at: None,
            last_login_at: None,
            source_updated_at: None,
            admin_roles: vec![],
            mfa_factors: vec![],
            mfa_enrolled: None,
        }),
        &json!({"id": id}),
    )
}

fn device(id: &str, owner: Option<&str>) -> Record {
    Record::from_value(
        Entity::Device(Device {
            source_id: id.into(),
            name: Some(format!("DESKTOP-{id}")),
            os: None,
            os_version: None,
            status: None,
            managed: None,
            compliant: None,
            trust_type: None,
            owner: owner.map(Into::into),
            last_seen_at: None,
            created_at: None,
            ..Device::default()
        }),
        &json!({"id": id}),
    )
}

async fn write(db: &Db, records: &[Record]) {
    let run = db.start(RunKind::Full).await;
    db.store
        .apply_page(
            &run,
            db.org,
            PageWrite {
                entities: &PreparedEntities::new(records.to_vec()),
                memberships: &[],
                whole_groups: &[],
                removals: &[],
                checkpoint: None,
            },
        )
        .await
        .unwrap();
}

fn ids(found: &[crate::StoredEntity]) -> Vec<&str> {
    found.iter().map(|e| e.entity.source_id()).collect()
}

#[tokio::test]
async fn users_are_found_by_employee_id_or_immutable_id() {
    let db = db().await;
    write(
        &db,
        &[
            user("u1", Some(" E-100 "), None),
            user("u2", None, Some("AbC+/w==")),
            user("u3", None, Some("Zz9==")),
            user("u4", Some("e-200"), None),
            device("d1", Some("u1")),
        ],
    )
    .await;
    let found = db
        .store
        .lookup_users_by_ids(
            db.org,
            &["e-100".into()],
            &["AbC+/w==".into(), "Zz9==".into(), "abc+/w==".into()],
        )
        .await
        .unwrap();
    assert_eq!(ids(&found), ["u1", "u2", "u3"], "employee ids ignore case, immutable ids do not");
    assert!(found.iter().all(|e| e.entity.kind() == EntityKind::User));
    assert!(db.store.lookup_users_by_ids(db.org, &[], &[]).await.unwrap().is_empty());
    let other = db.store.ensure_org("other").await.unwrap();
    assert!(db.store.lookup_users_by_ids(other, &["e-100".into()], &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn devices_are_found_by_their_owner() {
    let db = db().await;
    write(
        &db,
        &[
            user("u1", None, None),
            device("d1", Some("u1")),
            device("d2", Some("u1")),
            device("d3", Some("u2")),
            device("d4", None),
        ],
    )
    .await;
    let owners = [(db.config.id, "u1".to_string()), (db.config.id, "u9".to_string())];
    assert_eq!(ids(&db.store.devices_owned_by(db.org, &owners).await.unwrap()), ["d1", "d2"]);
    let elsewhere = [(ctxsync_core::ConfigId::new(), "u1".to_string())];
    assert!(db.store.devices_owned_by(db.org, &elsewhere).await.unwrap().is_empty(), "owners are per config");
    assert!(db.store.devices_owned_by(db.org, &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn hosts_are_found_by_serial_mac_agent_id_and_last_logon() {
    let db = db().await;
    let host = Record::from_value(
        Entity::Device(Device {
            source_id: "5f1c0a9be2d34c7e8a1b2c3d4e5f6a7b".into(),
            name: Some("LAPTOP-ADA".into()),
            serial_number: Some("PF3X9K2".into()),
            mac_addresses: vec!["14:7d:da:ad:ac:71".into()],
            last_user: Some("ACME\\Ada".into()),
            ..Device::default()
        }),
        &json!({"device_id": "5f1c0a9be2d34c7e8a1b2c3d4e5f6a7b"}),
    );
    write(&db, &[host, user("u1", None, None)]).await;
    for identifier in [
        "pf3x9k2",
        "14:7D:DA:AD:AC:71",
        "5f1c0a9be2d34c7e8a1b2c3d4e5f6a7b",
        "laptop-ada",
        &format!("{}acme\\ada", crate::LOGON),
        &format!("{}ada", crate::LOGON),
    ] {
        let found = db.store.lookup_entities(db.org, &[identifier.to_string()]).await.unwrap();
        let found: Vec<&str> = found.iter().map(|(_, e)| e.entity.source_id()).collect();
        assert_eq!(found, ["5f1c0a9be2d34c7e8a1b2c3d4e5f6a7b"], "{identifier}");
    }
    assert!(
        db.store.lookup_entities(db.org, &["ada".to_string()]).await.unwrap().is_empty(),
        "a host does not answer to its last user's name itself"
    );
}
