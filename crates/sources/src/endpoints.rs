//! Where each source's requests go: the real hosts by default, or an operator's override.
//!
//! Only the operator chooses hosts here. Nothing inside a config's secrets (a key file's
//! `token_uri`, say) is ever turned into a request URL: an API caller could otherwise point the
//! server at any host.

use url::Url;

use crate::SourceError;

/// Google's token endpoint. Also the JWT's `aud`, whatever URL the request goes to: Google checks
/// the audience against this value, not against the URL that received the request.
pub(crate) const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
const GOOGLE_DIRECTORY_URL: &str = "https://admin.googleapis.com";
const ENTRA_LOGIN_URL: &str = "https://login.microsoftonline.com";
const GRAPH_URL: &str = "https://graph.microsoft.com";

/// Base URLs of every source; `None` means the real host.
///
/// An overridden base URL is trusted: it may point at loopback or private addresses (tests, the
/// demo, an egress proxy), because the operator set it. `allow_private` extends that trust to
/// every host, including each Okta org's `domain`.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub okta_base_url: Option<Url>,
    pub google_token_url: Option<Url>,
    pub google_directory_base_url: Option<Url>,
    pub entra_login_base_url: Option<Url>,
    pub graph_base_url: Option<Url>,
    pub allow_private: bool,
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
    /// Checks every override is an `http`/`https` URL with a host.
    pub(crate) fn check(&self) -> Result<(), SourceError> {
        let overrides = [
            ("CTXSYNC_OKTA_BASE_URL", &self.okta_base_url),
            ("CTXSYNC_GOOGLE_TOKEN_URL", &self.google_token_url),
            ("CTXSYNC_GOOGLE_DIRECTORY_BASE_URL", &self.google_directory_base_url),
            ("CTXSYNC_ENTRA_LOGIN_BASE_URL", &self.entra_login_base_url),
            ("CTXSYNC_GRAPH_BASE_URL", &self.graph_base_url),
        ];
        for (name, url) in overrides {
            if let Some(url) = url
                && (!matches!(url.scheme(), "http" | "https")
                    || url.host().is_none()
                    || url.cannot_be_a_base())
            {
                return Err(SourceError::Unreachable(format!(
                    "{name} must be an http or https URL with a host (got {url})"
                )));
            }
        }
        Ok(())
    }

    fn target(&self, overridden: &Option<Url>, default: &str) -> Target {
        match overridden {
            Some(url) => Target { base: url.clone(), trusted: true },
            None => Target {
                base: Url::parse(default).expect("default source URLs parse"),
                trusted: self.allow_private,
            },
        }
    }

    /// `https://{domain}` (the org's host, with an optional port), unless overridden.
    pub(crate) fn okta(&self, domain: &str) -> Result<Target, SourceError> {
        if let Some(url) = &self.okta_base_url {
            return Ok(Target { base: url.clone(), trusted: true });
        }
        let domain = domain.trim();
        let invalid = || {
            SourceError::Unreachable(format!(
                "could not reach Okta: {domain:?} is not a host name; set the domain to the org's host, \
                 for example acme.okta.com"
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

    pub(crate) fn google_token(&self) -> Target {
        self.target(&self.google_token_url, GOOGLE_TOKEN_URL)
    }

    pub(crate) fn google_directory(&self) -> Target {
        self.target(&self.google_directory_base_url, GOOGLE_DIRECTORY_URL)
    }

    pub(crate) fn entra_login(&self) -> Target {
        self.target(&self.entra_login_base_url, ENTRA_LOGIN_URL)
    }

    pub(crate) fn graph(&self) -> Target {
        self.target(&self.graph_base_url, GRAPH_URL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn okta_uses_the_domain_unless_overridden() {
        let endpoints = Endpoints::default();
        let target = endpoints.okta("acme.okta.com").unwrap();
        assert_eq!(
            target.url(&["api", "v1", "users", "me"]).as_str(),
            "https://acme.okta.com/api/v1/users/me"
        );
        assert!(!target.trusted());
        assert_eq!(endpoints.okta("localhost:8443").unwrap().display(), "https://localhost:8443");
        let proxied = Endpoints {
            graph_base_url: Some(Url::parse("http://user:pw@proxy.local:3128/graph/?x=1").unwrap()),
            ..Endpoints::default()
        };
        assert_eq!(proxied.graph().display(), "http://proxy.local:3128/graph");
        for bad in ["", "evil.com/@x", "a b", "acme.okta.com?x=1", "user@host"] {
            assert!(endpoints.okta(bad).is_err(), "{bad}");
        }
        let overridden = Endpoints {
            okta_base_url: Some(Url::parse("http://127.0.0.1:9/").unwrap()),
            ..Endpoints::default()
        };
        let target = overridden.okta("acme.okta.com").unwrap();
        assert!(target.trusted());
        assert_eq!(target.url(&["api", "v1", "users"]).as_str(), "http://127.0.0.1:9/api/v1/users");
    }

    #[test]
    fn segments_are_encoded_and_prefixes_kept() {
        let e = Endpoints {
            entra_login_base_url: Some(Url::parse("http://proxy.local/entra/").unwrap()),
            ..Endpoints::default()
        };
        let url = e.entra_login().url(&["x/../y?z", "oauth2", "v2.0", "token"]);
        assert_eq!(url.as_str(), "http://proxy.local/entra/x%2F..%2Fy%3Fz/oauth2/v2.0/token");
    }

    #[test]
    fn overrides_must_be_http_urls() {
        let e = Endpoints {
            graph_base_url: Some(Url::parse("file:///etc/passwd").unwrap()),
            ..Endpoints::default()
        };
        assert!(e.check().unwrap_err().to_string().contains("CTXSYNC_GRAPH_BASE_URL"));
        assert!(Endpoints::default().check().is_ok());
    }
}
