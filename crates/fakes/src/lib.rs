//! Local servers that behave like the identity sources ctxsync syncs from: Okta, Google
//! Workspace and Microsoft Entra ID.
//!
//! They answer with the real APIs' auth schemes, JSON shapes, pagination and error bodies, so a
//! connector that works against them works against the real service; tests, benchmarks and
//! `ctxsync demo` point the connectors at them through the `CTXSYNC_*_BASE_URL` overrides.
//! Each fake serves a tenant generated from a [`TenantSpec`]: the same seed always gives the
//! same people and groups, and every source of one seed describes the same organisation.
//!
//! Every fake binds `127.0.0.1:0` (or a port it is given, when free), logs only through
//! `tracing`, and stops when its handle is dropped. Each also serves a small admin API under
//! `/_fake/{source}/…` (`admin`), and [`Churn`] keeps the three tenants changing.

mod admin;
mod churn;
mod common;
mod crowdstrike;
mod directory;
mod entra;
mod faults;
mod google;
mod okta;
mod sentinelone;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use admin::{Lifecycle, Standing};
pub use churn::{Change, ChangeKind, Churn, Source};
pub use common::Snapshot;
pub use crowdstrike::{CrowdStrikeHost, CrowdStrikeTenant, FakeCrowdStrike, Platform};
pub use directory::TenantSpec;
pub use entra::{
    EntraDevice, EntraGroup, EntraSnapshot, EntraTenant, EntraUser, FakeEntra, FakeSubscription,
    LifecycleEvent, MemberKind, OnPremises,
};
pub use faults::{FaultKnobs, Listing};
pub use google::{FakeChannel, FakeGoogle, GoogleGroup, GoogleRateLimit, GoogleTenant, GoogleUser};
pub use okta::{FakeOkta, OKTA_BUCKETS, OktaGroup, OktaPermission, OktaProfile, OktaTenant, OktaUser};
pub use sentinelone::{
    AgentInterface, FakeSentinelOne, SentinelOneAgent, SentinelOneScope, SentinelOneTenant,
};

/// One fake of each source, with default tenants.
pub struct Fakes {
    pub okta: FakeOkta,
    pub google: FakeGoogle,
    pub entra: FakeEntra,
    pub crowdstrike: FakeCrowdStrike,
    pub sentinelone: FakeSentinelOne,
}

/// The credentials the fakes accept. Fresh ones are random on every start; `ctxsync demo` keeps
/// them in its data folder and starts the fakes with them again, so the configs stored there
/// (which hold them) still authenticate after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    pub okta_api_token: String,
    /// The key file of the service account with domain-wide delegation, private key included.
    pub google_service_account: Value,
    pub entra_client_id: String,
    pub entra_client_secret: String,
    /// Empty in a demo folder written before the CrowdStrike fake existed: it then hands out
    /// fresh ones.
    #[serde(default)]
    pub crowdstrike_client_id: String,
    #[serde(default)]
    pub crowdstrike_client_secret: String,
    /// Empty in markers written before the fake existed: a fresh token is made then.
    #[serde(default)]
    pub sentinelone_api_token: String,
}

/// The loopback ports the fakes are asked to listen on; 0 is any free port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ports {
    pub okta: u16,
    pub google: u16,
    pub entra: u16,
    pub crowdstrike: u16,
    pub sentinelone: u16,
}

impl Ports {
    /// The ports of the fakes whose base URLs were `urls` (as [`Fakes::base_urls`] named them),
    /// to ask for them again.
    pub fn of(urls: &std::collections::BTreeMap<String, String>) -> Ports {
        let port = |name: &str| {
            urls.get(name).and_then(|u| url::Url::parse(u).ok()).and_then(|u| u.port()).unwrap_or(0)
        };
        Ports {
            okta: port(FakeOkta::PORT_VARIABLE),
            google: port(FakeGoogle::PORT_VARIABLE),
            entra: port(FakeEntra::PORT_VARIABLE),
            crowdstrike: port(FakeCrowdStrike::PORT_VARIABLE),
            sentinelone: port(FakeSentinelOne::PORT_VARIABLE),
        }
    }
}

impl Fakes {
    pub async fn start() -> std::io::Result<Fakes> {
        Fakes::start_with(TenantSpec::default()).await
    }

    /// Three tenants from one spec: the same organisation as each source describes it.
    pub async fn start_with(spec: TenantSpec) -> std::io::Result<Fakes> {
        Fakes::start_on(spec, Ports::default(), None).await
    }

    /// As [`Fakes::start_with`], each on its port in `ports` where that one is free (on another
    /// where not), accepting `credentials` when given instead of fresh ones.
    pub async fn start_on(
        spec: TenantSpec,
        ports: Ports,
        credentials: Option<&Credentials>,
    ) -> std::io::Result<Fakes> {
        let crowdstrike_credentials = credentials
            .filter(|c| !c.crowdstrike_client_id.is_empty())
            .map(|c| (c.crowdstrike_client_id.clone(), c.crowdstrike_client_secret.clone()));

        let sentinelone_token =
            credentials.map(|c| c.sentinelone_api_token.as_str()).filter(|token| !token.is_empty());
        let (okta, google, entra, crowdstrike, sentinelone) = tokio::try_join!(
            FakeOkta::start_on(spec, ports.okta, credentials.map(|c| c.okta_api_token.as_str())),
            FakeGoogle::start_on(spec, ports.google, credentials.map(|c| &c.google_service_account)),
            FakeEntra::start_on(
                spec,
                ports.entra,
                credentials.map(|c| (c.entra_client_id.clone(), c.entra_client_secret.clone()))
            ),
            FakeCrowdStrike::start_on(spec, ports.crowdstrike, crowdstrike_credentials),
            FakeSentinelOne::start_on(spec, ports.sentinelone, sentinelone_token)
        )?;
        Ok(Fakes { okta, google, entra, crowdstrike, sentinelone })
    }

    /// The variables that send every source's requests to these fakes (`CTXSYNC_GRAPH_BASE_URL`),
    /// with their values.
    pub fn base_urls(&self) -> Vec<(&'static str, String)> {
        [
            self.okta.base_urls(),
            self.google.base_urls(),
            self.entra.base_urls(),
            self.crowdstrike.base_urls(),
            self.sentinelone.base_urls(),
        ]
        .concat()
    }

    /// What the fakes accept, to start them with again.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            okta_api_token: self.okta.api_token(),
            google_service_account: self.google.service_account_json(),
            entra_client_id: self.entra.client_id(),
            entra_client_secret: self.entra.client_secret(),
            crowdstrike_client_id: self.crowdstrike.client_id(),
            crowdstrike_client_secret: self.crowdstrike.client_secret(),
            sentinelone_api_token: self.sentinelone.api_token(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A demo folder marked before the SentinelOne fake existed still reads; its fake gets a
    /// fresh token.
    #[test]
    fn credentials_without_a_sentinelone_token_still_read() {
        let old = serde_json::json!({
            "okta_api_token": "00abc",
            "google_service_account": {},
            "entra_client_id": "id",
            "entra_client_secret": "secret",
        });
        let credentials: Credentials = serde_json::from_value(old).unwrap();
        assert_eq!(credentials.sentinelone_api_token, "");
    }
}
