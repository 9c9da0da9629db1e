//! Local servers that behave like the identity sources ctxsync syncs from: Okta, Google
//! Workspace and Microsoft Entra ID.
//!
//! They answer with the real APIs' auth schemes, JSON shapes, pagination and error bodies, so a
//! connector that works against them works against the real service; tests, benchmarks and
//! `ctxsync demo` point the connectors at them through the `CTXSYNC_*_BASE_URL` overrides.
//! Each fake serves a tenant generated from a [`TenantSpec`]: the same seed always gives the
//! same people and groups, and every source of one seed describes the same organisation.
//!
//! Every fake binds `127.0.0.1:0`, logs only through `tracing`, and stops when its handle is
//! dropped.

mod common;
mod directory;
mod entra;
mod google;
mod okta;

pub use directory::TenantSpec;
pub use entra::FakeEntra;
pub use google::FakeGoogle;
pub use okta::{FakeOkta, OktaPermission};

/// One fake of each source, with default tenants.
pub struct Fakes {
    pub okta: FakeOkta,
    pub google: FakeGoogle,
    pub entra: FakeEntra,
}

impl Fakes {
    pub async fn start() -> std::io::Result<Fakes> {
        let (okta, google, entra) =
            tokio::try_join!(FakeOkta::start(), FakeGoogle::start(), FakeEntra::start())?;
        Ok(Fakes { okta, google, entra })
    }
}
