//! The SQL both backends run, written once and compiled once per backend: `sqlite/backend.rs`
//! and `postgres/backend.rs` each include this folder as their module `sql`, after naming their
//! database (`Db`) and store (`Store`). The code therefore sees concrete types (no generic bounds
//! on every function), and the few real differences are the methods of [`Backend`].
//!
//! Why not `sqlx::Any`: it carries neither UUIDs, times nor arrays. Why not functions generic
//! over `sqlx::Database`: each would need a long where-clause for every type it binds. Why not a
//! query builder: the statements stay readable SQL, with `$n` placeholders (SQLite accepts them
//! too) and ids and times bound as [`crate::values::DbId`] and [`crate::values::DbTime`].

mod configs;
mod entities;
mod history;
mod holds;
mod keys;
mod push;
mod sync;

use ctxsync_core::{ConfigId, Coverage, OrgId, Run, RunCounts};
use sqlx::{Pool, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Db, Store};
use crate::history::Recorder;
use crate::values::DbId;
use crate::{PageWrite, StoreError, StoredEntity};

/// A connection of this backend, as a transaction or a pool hands it out.
pub(super) type Conn = <Db as sqlx::Database>::Connection;

/// What differs between the backends: how writes are serialized, what their SQL dialects spell
/// differently, and the statements that take many rows at once (arrays on PostgreSQL, JSON on
/// SQLite) or that each backend tunes (a page's writes).
pub(super) trait Backend {
    /// For reads outside a transaction.
    fn reader(&self) -> &Pool<Db>;

    /// For single-statement writes.
    fn writer(&self) -> &Pool<Db>;

    /// A transaction that writes.
    async fn begin_write(&self) -> Result<Transaction<'static, Db>, StoreError>;

    /// Whether `FOR UPDATE` locks rows; a SQLite write transaction already holds the database's
    /// write lock, and its SQL has no such clause.
    const ROW_LOCKS: bool;

    /// The tables that hold a run's scratch rows until it ends.
    const SCRATCH_TABLES: &'static [&'static str];

    /// Whether memberships are marked seen in their own `seen_run` column rather than in a
    /// scratch table.
    const MEMBERSHIPS_MARKED_SEEN: bool;

    /// Marks run `$3` seen on the members that run `$2` named of the groups it listed whole, in
    /// config `$1`.
    const MARK_WHOLE_GROUPS: &'static str;

    /// Takes back the seen marks of run `$2`, in config `$1`, on the stored members its whole
    /// listings of a group did not name: whatever marked them, the whole listing decides.
    const UNMARK_UNNAMED: &'static str;

    /// Entities answering to an identifier, completed by the bound identifier and `)`: each
    /// backend keys its identifiers its own way (see `crate::entities::list_entities_query`).
    const IDENTIFIER_MATCH: &'static str;

    /// A text value out of a JSON column: `(column, path)` to an SQL expression.
    fn json_text(column: &str, path: &[&str]) -> String;

    /// `column` is one of the ids bound as [`crate::values::DbIds`] at `param`.
    fn any_id(column: &str, param: &str) -> String;

    /// Every entity of `org` answering to each of `identifiers` (trimmed and lowercased).
    async fn find_identifiers(
        &self,
        org: OrgId,
        identifiers: &[String],
    ) -> Result<Vec<(String, StoredEntity)>, StoreError>;

    /// Writes a page's entities, memberships and named removals for `run`, noting them as seen
    /// (but not the entities of its config's `first_listing`); returns their counts.
    async fn write_page(
        conn: &mut Conn,
        org: ctxsync_core::OrgId,
        run: &Run,
        page: &PageWrite<'_>,
        first_listing: bool,
        recorder: &mut Recorder,
    ) -> Result<RunCounts, StoreError>;

    /// Drops what a page lists again from the config's held stages.
    async fn unstage_seen(conn: &mut Conn, config: ConfigId, page: &PageWrite<'_>) -> Result<(), StoreError>;

    /// Stages the memberships a completed run's coverage implies are gone: those of the listed
    /// groups that the run did not see.
    async fn stage_unseen_memberships(
        conn: &mut Conn,
        run: &Run,
        coverage: &Coverage,
    ) -> Result<(), StoreError>;

    /// Writes what `recorder` gathered: events, role intervals opened and closed, memberships
    /// ended.
    async fn record(
        conn: &mut Conn,
        run: &Run,
        recorder: &Recorder,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Runs after a run's end is committed.
    async fn after_run(&self, run: &Run) -> Result<(), StoreError>;
}

/// ` FOR UPDATE` (of `of`, when given) where the backend locks rows.
fn for_update(of: Option<&str>) -> String {
    match (Store::ROW_LOCKS, of) {
        (false, _) => String::new(),
        (true, None) => " FOR UPDATE".into(),
        (true, Some(table)) => format!(" FOR UPDATE OF {table}"),
    }
}

impl Store {
    /// Keeps the config's row from being deleted or pointed elsewhere until the transaction ends
    /// (PostgreSQL; SQLite writes one transaction at a time). A run's writes, its start and a
    /// lease taken take this first: their rows reference the run or the config, and a deletion of
    /// the config cascading through them, or an update cancelling its run, in the other order would
    /// otherwise deadlock with them; now it waits for them.
    pub(super) async fn hold_config(conn: &mut Conn, config: ConfigId) -> Result<(), StoreError> {
        if Self::ROW_LOCKS {
            sqlx::query("SELECT 1 FROM integration_configs WHERE id = $1 FOR KEY SHARE")
                .bind(DbId(config.0))
                .fetch_optional(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// A trivial query, for readiness checks.
    pub(crate) async fn ping_reader(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.reader()).await?;
        Ok(())
    }

    /// The first start seals a check value; every later start must open it. Insert-then-read in
    /// two statements, so the read sees a value another process inserted meanwhile and processes
    /// starting together on a new database agree on one value.
    pub(crate) async fn check_master_key(&self) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO store_meta (name, value) VALUES ('master_key_check', $1) ON CONFLICT (name) DO NOTHING",
        )
        .bind(self.cipher.seal_key_check())
        .execute(self.writer())
        .await?;
        let stored: Vec<u8> =
            sqlx::query_scalar("SELECT value FROM store_meta WHERE name = 'master_key_check'")
                .fetch_one(self.reader())
                .await?;
        self.cipher.verify_key_check(&stored)
    }

    /// Makes what run `from` saw and named for removal `to`'s, as if `to` had listed it.
    async fn adopt_run_scratch(
        conn: &mut Conn,
        config: ConfigId,
        from: Uuid,
        to: Uuid,
    ) -> Result<(), StoreError> {
        /// `from`'s notes of the groups it listed whole, which become marks instead.
        const NOTES: [&str; 2] = ["run_whole_groups", "run_unnamed_members"];
        // A mark `from` carries on a member its whole listing of the group dropped (from a run it
        // went on from, or its own listing in parts): whatever marked it, the whole listing
        // decides, as it would in a run that never stopped.
        sqlx::query(Self::UNMARK_UNNAMED).bind(DbId(config.0)).bind(DbId(from)).execute(&mut *conn).await?;
        for table in Self::SCRATCH_TABLES.iter().filter(|table| !NOTES.contains(table)) {
            sqlx::query(&format!("UPDATE {table} SET run_id = $2 WHERE run_id = $1"))
                .bind(DbId(from))
                .bind(DbId(to))
                .execute(&mut *conn)
                .await?;
        }
        if Self::MEMBERSHIPS_MARKED_SEEN {
            sqlx::query("UPDATE memberships SET seen_run = $3 WHERE config_id = $1 AND seen_run = $2")
                .bind(DbId(config.0))
                .bind(DbId(from))
                .bind(DbId(to))
                .execute(&mut *conn)
                .await?;
        }
        // The groups `from` listed whole become marks of `to` on the members it named (some
        // marked already, by a run `from` went on from), and its notes of them go: the run that
        // goes on decides them from both listings, as it does the groups it marks (unless it
        // lists one whole again).
        sqlx::query(Self::MARK_WHOLE_GROUPS)
            .bind(DbId(config.0))
            .bind(DbId(from))
            .bind(DbId(to))
            .execute(&mut *conn)
            .await?;
        for table in NOTES {
            sqlx::query(&format!("DELETE FROM {table} WHERE run_id = $1"))
                .bind(DbId(from))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Deletes the scratch rows of runs that ended.
    async fn clear_run_scratch(conn: &mut Conn, runs: &[Uuid]) -> Result<(), StoreError> {
        for &run in runs {
            for table in Self::SCRATCH_TABLES {
                sqlx::query(&format!("DELETE FROM {table} WHERE run_id = $1"))
                    .bind(DbId(run))
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }
}
