//! CrowdStrike Falcon: the hosts an EDR agent reports, read with an API client's OAuth client
//! credentials (scope `Hosts: Read`).
//!
//! Validation mints a token and lists one host. A sync (`pages.rs`) lists hosts with full
//! records through the combined endpoint, or through the scroll query and the entities endpoint
//! where the cloud refuses it (GovCloud); incremental runs ask for hosts modified since the last
//! run and report hosts hidden since then as removals. No users or groups come from here.

mod auth;
mod client;
mod map;
mod pages;

use ctxsync_core::{Config, FieldErrors, IntegrationType, Settings};
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::endpoints::{Endpoints, Target};
use crate::http::Http;
use crate::registry::{BaseUrl, Connector, Credentials, SecretKey, SourceInfo, required_secret};
use crate::{Outcome, PageSink, SourceError, SyncError, SyncMode};
use client::FalconClient;

/// The cloud's API host is the config's domain.
static BASE_URL: BaseUrl = BaseUrl {
    flag: "crowdstrike-base-url",
    env: "CTXSYNC_CROWDSTRIKE_BASE_URL",
    default: None,
    help: "Send CrowdStrike requests here instead of https://{domain} (tests, a proxy).",
};

pub(crate) struct CrowdStrike;

static INFO: SourceInfo = SourceInfo {
    integration_type: IntegrationType::CrowdStrike,
    credentials: "Credentials for a CrowdStrike entity context sync.",
    secrets: &[
        SecretKey {
            name: "client_id",
            description: "The ID of a Falcon API client with the Hosts: Read scope.",
            schema: None,
        },
        SecretKey { name: "client_secret", description: "That API client's secret.", schema: None },
    ],
    settings: &[],
    validated_settings: &[],
    base_urls: &[&BASE_URL],
};

#[derive(Debug, Clone)]
pub(crate) struct CrowdStrikeCredentials {
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
}

/// The hosts of the Falcon clouds, by the region the token endpoint names in `X-CS-Region`.
const REGIONS: &[(&str, &str)] = &[
    ("us-1", "api.crowdstrike.com"),
    ("us-2", "api.us-2.crowdstrike.com"),
    ("us-3", "api.us-3.crowdstrike.com"),
    ("eu-1", "api.eu-1.crowdstrike.com"),
    ("us-gov-1", "api.laggar.gcw.crowdstrike.com"),
    ("us-gov-2", "api.us-gov-2.crowdstrike.mil"),
];

fn region_host(region: &str) -> Option<&'static str> {
    REGIONS.iter().find(|(name, _)| name.eq_ignore_ascii_case(region.trim())).map(|(_, host)| *host)
}

/// Where the config's requests go, and whether they may follow the region the token endpoint
/// reports: only to a real host, since an operator's override (a proxy, a fake) is where the
/// operator wants them.
fn target(endpoints: &Endpoints, domain: &str) -> Result<(Target, bool), SourceError> {
    let target = endpoints.domain(&BASE_URL, domain, "CrowdStrike", "api.crowdstrike.com")?;
    Ok((target, endpoints.get(&BASE_URL).is_none()))
}

/// The target of the cloud `region` names, when it is another host than `current`.
fn region_target(endpoints: &Endpoints, current: &Target, region: &str) -> Option<Target> {
    let host = region_host(region)?;
    if current.base().host_str() == Some(host) {
        return None;
    }
    endpoints.domain(&BASE_URL, host, "CrowdStrike", "api.crowdstrike.com").ok()
}

#[async_trait::async_trait]
impl Connector for CrowdStrike {
    fn info(&self) -> &'static SourceInfo {
        &INFO
    }

    fn parse(&self, secrets: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Credentials> {
        let client_id = required_secret(secrets, "client_id", errors);
        let client_secret = required_secret(secrets, "client_secret", errors);
        Some(Credentials::new(
            INFO.integration_type,
            CrowdStrikeCredentials {
                client_id: client_id?,
                client_secret: SecretString::from(client_secret?),
            },
        ))
    }

    async fn validate(
        &self,
        http: &Http,
        endpoints: &Endpoints,
        domain: &str,
        _: &Settings,
        credentials: &Credentials,
    ) -> Result<(), SourceError> {
        let (target, follow) = target(endpoints, domain)?;
        let mut client = FalconClient::new(http, endpoints, target, follow, credentials.get()?);
        pages::probe(&mut client).await
    }

    async fn sync(
        &self,
        http: &Http,
        endpoints: &Endpoints,
        config: &Config,
        credentials: &Credentials,
        mode: SyncMode,
        sink: &mut dyn PageSink,
    ) -> Result<Outcome, SyncError> {
        let (target, follow) = target(endpoints, &config.domain)?;
        let client = FalconClient::new(http, endpoints, target, follow, credentials.get()?);
        pages::sync(client, mode, sink).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_name_their_hosts_and_only_other_hosts_are_followed() {
        assert_eq!(region_host("us-2"), Some("api.us-2.crowdstrike.com"));
        assert_eq!(region_host(" US-GOV-1 "), Some("api.laggar.gcw.crowdstrike.com"));
        assert_eq!(region_host("mars-1"), None);
        let endpoints = Endpoints::default();
        let (us1, follow) = target(&endpoints, "api.crowdstrike.com").unwrap();
        assert!(follow);
        let eu = region_target(&endpoints, &us1, "eu-1").unwrap();
        assert_eq!(eu.display(), "https://api.eu-1.crowdstrike.com");
        assert!(region_target(&endpoints, &us1, "us-1").is_none());
        let overridden =
            Endpoints::default().with(BASE_URL.env, url::Url::parse("http://127.0.0.1:9/").unwrap());
        assert!(!target(&overridden, "api.crowdstrike.com").unwrap().1);
    }
}
