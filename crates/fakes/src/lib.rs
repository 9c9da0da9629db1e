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
mod faults;
mod google;
mod okta;

pub use common::Snapshot;
pub use directory::TenantSpec;
pub use entra::{EntraDevice, EntraGroup, EntraSnapshot, EntraTenant, EntraUser, FakeEntra, MemberKind};
pub use faults::Listing;
pub use google::{FakeGoogle, GoogleGroup, GoogleRateLimit, GoogleTenant, GoogleUser};
pub use okta::{FakeOkta, OktaGroup, OktaPermission, OktaProfile, OktaTenant, OktaUser};

/// One fake of each source, with default tenants.
pub struct Fakes {
    pub okta: FakeOkta,
    pub google: FakeGoogle,
    pub entra: FakeEntra,
}

impl Fakes {
    pub async fn start() -> std::io::Result<Fakes> {
        Fakes::start_with(TenantSpec::default()).await
    }

    /// Three tenants from one spec: the same organisation as each source describes it.
    pub async fn start_with(spec: TenantSpec) -> std::io::Result<Fakes> {
        let (okta, google, entra) = tokio::try_join!(
            FakeOkta::start_with(spec),
            FakeGoogle::start_with(spec),
            FakeEntra::start_with(spec)
        )?;
        Ok(Fakes { okta, google, entra })
    }
}
