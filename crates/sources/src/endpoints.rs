//! Where each source's requests go: the real hosts by default, or an operator's override.
//!
//! Only the operator chooses hosts here. Nothing inside a config's secrets (a key file's
//! `token_uri`, say) is ever turned into a request URL: an API caller could otherwise point the
//! server at any host.

use std::collections::BTreeMap;

use url::Url;

use crate::SourceError;
use crate::entra_id::GraphBudget;
use crate::google_workspace::GoogleQuota;
use crate::registry::{BaseUrl, base_urls};

/// The base URLs the operator overrode, by [`BaseUrl::env`]; every other host is the real one.
///
/// An overridden base URL is trusted: it may point at loopback or private addresses (tests, the
/// demo, an egress proxy), because the operator set it. `allow_private` extends that trust to
/// every host, including each Okta org's `domain`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Endpoints {
    overrides: BTreeMap<&'static str, Url>,
    pub allow_private: bool,
    /// What Graph lets an app spend in a tenant, when it is not the documented limit: a
    /// scaled-down Graph's, for tests and benchmarks.
    graph_budget: Option<GraphBudget>,
    /// What the Directory API lets a project's requests as one admin come to, when it is not the
    /// documented default: a scaled-down fake's, for tests and benchmarks.
    google_quota: Option<GoogleQuota>,
}

/// One source's base URL and whether the SSRF guard applies to it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    base: Url,
    trusted: bool,
}

impl Target {
    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// Whether requests may go to private addresses (an override, or private sources allowed).
    pub(crate) fn trusted(&self) -> bool {
        self.trusted
    }

    /// The base with `segments` appended as path segments (each percent-encoded, so a value
    /// such as a tenant name cannot add segments or a query of its own).
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// How messages name the source's address: `https://acme.okta.com`.
    pub(crate) fn display(&self) -> String {
        let mut shown = self.base.clone();
        shown.set_query(None);
        shown.set_fragment(None);
        // An egress proxy's URL may carry credentials; messages never do.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.as_str().trim_end_matches('/').to_string()
    }
}

impl Endpoints {
    /// Points the host whose variable is `env` (`CTXSYNC_GRAPH_BASE_URL`) at `url`.
    ///
    /// # Panics
    /// When no source declares `env`: a misspelt name in code, never operator input (settings
    /// read the names from [`base_urls`]).
    pub fn with(mut self, env: &str, url: Url) -> Endpoints {
        let base = base_urls().find(|b| b.env == env).unwrap_or_else(|| panic!("no source has {env}"));
        self.overrides.insert(base.env, url);
        self
    }

    /// Every host named in `urls` (variable, URL) overridden: the tests' and the demo's fakes.
    ///
    /// # Panics
    /// As [`Endpoints::with`], and for a value that is not a URL.
    pub fn overridden<'a>(urls: impl IntoIterator<Item = (&'a str, String)>) -> Endpoints {
        urls.into_iter().fold(Endpoints::default(), |endpoints, (name, url)| {
            endpoints.with(name, url.parse().unwrap_or_else(|_| panic!("{name}={url:?} is not a URL")))
        })
    }

    /// Paces Graph requests to `budget` instead of Graph's documented limit (which Graph never
    /// reports, so a scaled-down fake must be named here).
    pub fn with_graph_budget(mut self, budget: GraphBudget) -> Endpoints {
        self.graph_budget = Some(budget);
        self
    }

    pub(crate) fn graph_budget(&self) -> Option<GraphBudget> {
        self.graph_budget
    }

    /// Paces Directory requests to `quota` instead of Google's documented default (which Google
    /// never reports, so a scaled-down fake must be named here).
    pub fn with_google_quota(mut self, quota: GoogleQuota) -> Endpoints {
        self.google_quota = Some(quota);
        self
    }

    pub(crate) fn google_quota(&self) -> Option<GoogleQuota> {
        self.google_quota
    }

    /// The override of `base`, if any.
    pub fn get(&self, base: &BaseUrl) -> Option<&Url> {
        self.overrides.get(base.env)
    }

    /// Checks every override is an `http`/`https` URL with a host.
    pub(crate) fn check(&self) -> Result<(), SourceError> {
        for (name, url) in &self.overrides {
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || url.cannot_be_a_base() {
                return Err(SourceError::Unreachable(format!(
                    "{name} must be an http or https URL with a host (got {url})"
                )));
            }
        }
        Ok(())
    }

    /// Where `base`'s requests go: the override, else its real host.
    ///
    /// # Panics
    /// For a base without a real host (one a config's domain names); see [`Endpoints::domain`].
    pub(crate) fn target(&self, base: &BaseUrl) -> Target {
        match self.get(base) {
            Some(url) => Target { base: url.clone(), trusted: true },
            None => Target {
                base: Url::parse(base.default.expect("a base URL with a real host"))
                    .expect("default URLs parse"),
                trusted: self.allow_private,
            },
        }
    }

    /// `https://{domain}` (a host with an optional port, such as the Okta org's), unless `base`
    /// is overridden. `example` is a domain of the source's, for the message.
    pub(crate) fn domain(
        &self,
        base: &BaseUrl,
        domain: &str,
        source: &str,
        example: &str,
    ) -> Result<Target, SourceError> {
        if let Some(url) = self.get(base) {
            return Ok(Target { base: url.clone(), trusted: true });
        }
        let domain = domain.trim();
        let invalid = || {
            SourceError::Unreachable(format!(
                "could not reach {source}: {domain:?} is not a host name; set the domain to the org's host, \
                 for example {example}"
            ))
        };
        if domain.is_empty()
            || domain.contains(['/', '?', '#', '@', '\\'])
            || domain.contains(char::is_whitespace)
        {
            return Err(invalid());
        }
        let base = Url::parse(&format!("https://{domain}")).map_err(|_| invalid())?;
        Ok(Target { base, trusted: self.allow_private })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(env: &str) -> &'static BaseUrl {
        base_urls().find(|b| b.env == env).unwrap()
    }

    #[test]
    fn a_domain_is_the_host_unless_overridden() {
        let okta = base("CTXSYNC_OKTA_BASE_URL");
        let endpoints = Endpoints::default();
        let target = endpoints.domain(okta, "acme.okta.com", "Okta", "acme.okta.com").unwrap();
        assert_eq!(
            target.url(&["api", "v1", "users", "me"]).as_str(),
            "https://acme.okta.com/api/v1/users/me"
        );
        assert!(!target.trusted());
        let port = endpoints.domain(okta, "localhost:8443", "Okta", "acme.okta.com").unwrap();
        assert_eq!(port.display(), "https://localhost:8443");
        for bad in ["", "evil.com/@x", "a b", "acme.okta.com?x=1", "user@host"] {
            assert!(endpoints.domain(okta, bad, "Okta", "acme.okta.com").is_err(), "{bad}");
        }
        let overridden = Endpoints::default().with(okta.env, Url::parse("http://127.0.0.1:9/").unwrap());
        let target = overridden.domain(okta, "acme.okta.com", "Okta", "acme.okta.com").unwrap();
        assert!(target.trusted());
        assert_eq!(target.url(&["api", "v1", "users"]).as_str(), "http://127.0.0.1:9/api/v1/users");
    }

    #[test]
    fn messages_show_no_credentials_of_a_proxy() {
        let graph = base("CTXSYNC_GRAPH_BASE_URL");
        let proxied = Endpoints::default()
            .with(graph.env, Url::parse("http://user:pw@proxy.local:3128/graph/?x=1").unwrap());
        assert_eq!(proxied.target(graph).display(), "http://proxy.local:3128/graph");
        assert_eq!(Endpoints::default().target(graph).display(), "https://graph.microsoft.com");
    }

    #[test]
    fn segments_are_encoded_and_prefixes_kept() {
        let login = base("CTXSYNC_ENTRA_LOGIN_BASE_URL");
        let e = Endpoints::default().with(login.env, Url::parse("http://proxy.local/entra/").unwrap());
        let url = e.target(login).url(&["x/../y?z", "oauth2", "v2.0", "token"]);
        assert_eq!(url.as_str(), "http://proxy.local/entra/x%2F..%2Fy%3Fz/oauth2/v2.0/token");
    }

    #[test]
    fn overrides_must_be_http_urls() {
        let e =
            Endpoints::default().with("CTXSYNC_GRAPH_BASE_URL", Url::parse("file:///etc/passwd").unwrap());
        assert!(e.check().unwrap_err().to_string().contains("CTXSYNC_GRAPH_BASE_URL"));
        assert!(Endpoints::default().check().is_ok());
    }
}
