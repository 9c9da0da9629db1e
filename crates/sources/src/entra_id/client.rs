//! Requests to Microsoft Graph with an app-only token: the token is cached until shortly before
//! it expires and minted again when Graph refuses it, one mint for every request of the run that
//! needs one at the time (a run's listings go on at once); each request waits for the pacer of its app
//! and tenant, which books what the reply says it cost; `Retry-After` is honoured on throttling;
//! Graph's error envelope becomes a message that says what to do.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::EntraIdCredentials;
use ctxsync_core::RateLimitShare;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use super::auth::ClientSecret;
use super::pacer::{Pacer, cost, pacer_for};
use crate::SourceError;
use crate::endpoints::{Endpoints, Target};
use crate::http::{
    AccessToken, Http, Pace, Reply, Retry, excerpt, paced, retry_after, transient, unavailable,
};
use crate::split::{self, Split};

const SOURCE: &str = "Microsoft Graph";
/// A token is renewed this long before it expires (a tenth of its life for short-lived ones),
/// so a request never leaves with a token about to lapse.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
struct ErrorBody {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Why a Graph request gave no usable reply.
#[derive(Debug)]
pub(crate) enum Failure {
    /// 410 Gone, or `syncStateNotFound`: the delta or skip token is no longer known.
    Gone,
    /// 403: the app lacks the permission this request needs.
    Denied(SourceError),
    Other(SourceError),
}

impl From<SourceError> for Failure {
    fn from(error: SourceError) -> Self {
        Failure::Other(error)
    }
}

impl Failure {
    /// For callers that give every failure the same treatment.
    pub(crate) fn into_source(self) -> SourceError {
        match self {
            Failure::Gone => SourceError::Unreachable(
                "Microsoft Graph no longer knows the delta token of this listing; try again".to_string(),
            ),
            Failure::Denied(e) | Failure::Other(e) => e,
        }
    }
}

struct Token {
    value: AccessToken,
    renew_at: Instant,
}

pub(crate) struct GraphClient<'a> {
    http: &'a Http,
    login: Target,
    graph: Target,
    tenant: &'a str,
    app: ClientSecret,
    token: Mutex<Option<Token>>,
    /// Every token this client was issued, to cut from anything quoted of Graph's replies: a
    /// request's reply may quote the token it sent after another request replaced it.
    issued: Mutex<Vec<AccessToken>>,
    /// Held while a token is minted, so the requests that find none, or an old one, at the same
    /// time wait for one token rather than each mint their own.
    minting: tokio::sync::Mutex<()>,
    /// Tokens minted so far, the first included.
    mints: AtomicU32,
    /// Shared by every client of this app in this tenant.
    pacer: Arc<Pacer>,
    pace: Pace,
    /// The processes syncing the config's domain at once, which split the budget.
    split: Split,
}

/// The name of the budget that processes syncing configs of `domain` at once split: the app's in
/// the tenant, for which the domain stands (those that do not split are still held below the
/// limit by Graph's readings above 80%).
pub(super) fn budget_key(graph: &Target, domain: &str) -> String {
    split::domain_key("graph", graph, domain)
}

impl<'a> GraphClient<'a> {
    /// A client of `tenant`'s Graph, for a config of `domain`, taking at most `share` of what
    /// Graph lets the app spend there, or its part of that share while other processes sync the
    /// domain too.
    pub(crate) fn new(
        http: &'a Http,
        endpoints: &Endpoints,
        domain: &str,
        tenant: &'a str,
        credentials: &EntraIdCredentials,
        share: RateLimitShare,
    ) -> Self {
        let (login, graph) = (endpoints.target(&super::LOGIN), endpoints.target(&super::GRAPH));
        let pacer = pacer_for(graph.base(), tenant, &credentials.client_id, endpoints.graph_budget());
        let split = Split::named(&budget_key(&graph, domain));
        let app = ClientSecret::new(credentials);
        let pace = Pace::Within(share);
        let (token, issued) = (Mutex::default(), Mutex::default());
        let (minting, mints) = (tokio::sync::Mutex::default(), AtomicU32::new(0));
        Self { http, login, graph, tenant, app, token, issued, minting, mints, pacer, pace, split }
    }

    /// This client's requests do not wait for room in the share ([`Pace::Now`]).
    pub(crate) fn unpaced(self) -> Self {
        Self { pace: Pace::Now, ..self }
    }

    /// The tenant's number of users, which sets the limit Graph documents for it.
    pub(crate) fn tenant_size(&self, users: u64) {
        self.pacer.tenant_size(users);
    }

    pub(crate) fn graph(&self) -> &Target {
        &self.graph
    }

    /// `{base}/v1.0/{segments…}?{odata}` (no `?` without options). The OData options are written
    /// as Graph documents them (`$top=1&$select=id`), not form-encoded.
    pub(crate) fn url(&self, segments: &[&str], odata: &str) -> Url {
        let mut all = vec!["v1.0"];
        all.extend_from_slice(segments);
        let mut url = self.graph.url(&all);
        url.set_query((!odata.is_empty()).then_some(odata));
        url
    }

    /// A link Graph returned (`@odata.nextLink`, `@odata.deltaLink`), moved onto the configured
    /// base: Graph writes its own host into them, and an operator's override (an egress proxy,
    /// a local fake) must see the follow-up requests too. Its path from `/v1.0/` on and its
    /// query are kept verbatim.
    pub(crate) fn rebase(&self, link: &str) -> Result<Url, SourceError> {
        let invalid = || {
            SourceError::Unreachable(format!(
                "{} returned a paging link that is not a Graph v1.0 URL; check CTXSYNC_GRAPH_BASE_URL",
                self.graph.display()
            ))
        };
        let parsed = Url::parse(link).map_err(|_| invalid())?;
        let at = parsed.path().find("/v1.0/").ok_or_else(invalid)?;
        let mut url = self.graph.base().clone();
        let path = format!("{}{}", url.path().trim_end_matches('/'), &parsed.path()[at..]);
        url.set_path(&path);
        url.set_query(parsed.query());
        url.set_fragment(None);
        Ok(url)
    }

    /// The bearer header, minting a token when there is none or it is due for renewal; and
    /// whether it was minted by this call.
    async fn bearer(&self) -> Result<(HeaderValue, bool), SourceError> {
        if let Some(header) = self.cached()? {
            return Ok((header, false));
        }
        let _minting = self.minting.lock().await;
        // Another request may have minted one while this one waited.
        if let Some(header) = self.cached()? {
            return Ok((header, false));
        }
        let (value, lifetime) = self.app.access_token(self.http, &self.login, self.tenant).await?;
        if self.mints.fetch_add(1, Ordering::Relaxed) > 0 {
            tracing::debug!(source = SOURCE, "renewed the access token");
        }
        let renew_at = Instant::now() + lifetime.saturating_sub(RENEW_BEFORE.min(lifetime / 10));
        let header = value.bearer()?;
        self.issued.lock().expect("issued lock").push(AccessToken::new(value.expose().to_owned()));
        *self.token.lock().expect("token lock") = Some(Token { value, renew_at });
        Ok((header, true))
    }

    /// The cached token's header, unless it is due for renewal.
    fn cached(&self) -> Result<Option<HeaderValue>, SourceError> {
        let token = self.token.lock().expect("token lock");
        token.as_ref().filter(|t| Instant::now() < t.renew_at).map(|t| t.value.bearer()).transpose()
    }

    /// Drops the cached token Graph refused, `sent`; not one another request minted since.
    fn forget(&self, sent: &HeaderValue) {
        let mut token = self.token.lock().expect("token lock");
        if token.as_ref().and_then(|t| t.value.bearer().ok()).is_some_and(|cached| cached == sent) {
            *token = None;
        }
    }

    /// The tokens this client was issued, as text, to cut from anything quoted of Graph's replies.
    fn secrets(&self) -> Vec<String> {
        self.issued.lock().expect("issued lock").iter().map(|t| t.expose().to_owned()).collect()
    }

    /// `GET url` with `headers` (`Prefer`, `ConsistencyLevel`; `Accept` is JSON unless they name
    /// another), and its body decoded by `decode`; a successful reply that does not decode (cut
    /// short on the way) is retried. Returns the body and how many requests were retried. A 401
    /// to a cached token mints a new one and tries once more: the token may have expired or been
    /// revoked while the run went on.
    pub(crate) async fn fetch<T>(
        &self,
        url: &Url,
        what: &str,
        headers: &[(&str, &str)],
        decode: impl Fn(&Reply) -> Option<T>,
    ) -> Result<(T, u32), Failure> {
        tracing::debug!(source = SOURCE, path = url.path(), "request");
        let mut renewed = false;
        let mut retries = 0;
        loop {
            // The token is taken once the pacer lets the request go, so a long wait does not
            // send one that fell due meanwhile.
            let admitted =
                paced(SOURCE, self.pacer.admit(self.pace, cost(&Method::GET, url), &self.split)).await;
            let (auth, fresh) = self.bearer().await?;
            let build = |client: &reqwest::Client| {
                let mut request = client.get(url.clone()).header(AUTHORIZATION, auth.clone());
                if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case(ACCEPT.as_str())) {
                    request = request.header(ACCEPT, "application/json");
                }
                headers.iter().fold(request, |request, (name, value)| request.header(*name, *value))
            };
            let classify = |reply: &Reply| {
                admitted.note(reply.status, &reply.headers);
                classify(reply)
            };
            let fetched = self.http.fetch(SOURCE, &self.graph, build, classify, &decode).await?;
            retries += fetched.retries;
            if let Some(body) = fetched.body {
                return Ok((body, retries));
            }
            if fetched.reply.status == StatusCode::UNAUTHORIZED && !fresh && !renewed {
                self.forget(&auth);
                renewed = true;
                retries += 1;
                continue;
            }
            return Err(self.failure(&fetched.reply, what));
        }
    }

    /// `method url` with `body` as JSON, for what is not a listing (subscriptions): the reply
    /// whatever its status, after the retries throttling and server errors allow, with a fresh
    /// token tried once when Graph refuses a cached one.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, SourceError> {
        tracing::debug!(source = SOURCE, %method, path = url.path(), "request");
        let mut renewed = false;
        loop {
            let admitted = paced(SOURCE, self.pacer.admit(self.pace, cost(&method, url), &self.split)).await;
            let (auth, fresh) = self.bearer().await?;
            let build = |client: &reqwest::Client| {
                let request = client
                    .request(method.clone(), url.clone())
                    .header(AUTHORIZATION, auth.clone())
                    .header(ACCEPT, "application/json");
                match body {
                    Some(body) => request.json(body),
                    None => request,
                }
            };
            let classify = |reply: &Reply| {
                admitted.note(reply.status, &reply.headers);
                classify(reply)
            };
            let reply = self.http.send(SOURCE, &self.graph, build, classify).await?;
            if reply.status == StatusCode::UNAUTHORIZED && !fresh && !renewed {
                self.forget(&auth);
                renewed = true;
                continue;
            }
            return Ok(reply);
        }
    }

    /// A reply that did not do what was asked (`action`, "create a subscription"), as an error
    /// that says what Graph said; `secrets` are cut from it.
    pub(crate) fn refusal(&self, reply: &Reply, action: &str, secrets: &[&str]) -> SourceError {
        let issued = self.secrets();
        let mut secrets = secrets.to_vec();
        secrets.extend(issued.iter().map(String::as_str));
        let said = match reply.json::<ErrorBody>().map(|b| b.error) {
            Some(e) => format!("{} ({})", excerpt(&e.message, &secrets), excerpt(&e.code, &secrets)),
            None => format!("HTTP {}", reply.status.as_u16()),
        };
        if transient(reply.status) {
            return unavailable(
                SOURCE,
                &self.graph,
                reply,
                &format!(": {said}"),
                retry_after(&reply.headers),
            );
        }
        SourceError::Rejected(format!("Microsoft Graph refused to {action}: {said}"))
    }

    fn failure(&self, reply: &Reply, what: &str) -> Failure {
        let issued = self.secrets();
        let secrets: Vec<&str> = issued.iter().map(String::as_str).collect();
        let error = reply.json::<ErrorBody>().map(|b| b.error);
        let code = error.as_ref().map(|e| e.code.as_str());
        if reply.status == StatusCode::GONE
            || code.is_some_and(|c| c.eq_ignore_ascii_case("syncStateNotFound"))
        {
            return Failure::Gone;
        }
        let said = match &error {
            Some(e) => format!("{} ({})", excerpt(&e.message, &secrets), excerpt(&e.code, &secrets)),
            None => format!("HTTP {}", reply.status.as_u16()),
        };
        if transient(reply.status) {
            let detail = format!(": {said}");
            return Failure::Other(unavailable(
                SOURCE,
                &self.graph,
                reply,
                &detail,
                retry_after(&reply.headers),
            ));
        }
        let (next, denied) = match reply.status {
            StatusCode::FORBIDDEN => (
                "Authorization_RequestDenied means the app lacks consent: give it the Microsoft Graph application \
                 permissions User.Read.All, Group.Read.All and Device.Read.All (or Directory.Read.All) and have an \
                 administrator grant admin consent",
                true,
            ),
            StatusCode::UNAUTHORIZED => (
                "Graph refused the token Entra ID just issued; check that CTXSYNC_GRAPH_BASE_URL and \
                 CTXSYNC_ENTRA_LOGIN_BASE_URL belong to the same cloud",
                false,
            ),
            _ => ("check the config's domain and the app registration", false),
        };
        let error = SourceError::Rejected(format!("Microsoft Graph refused to list {what}: {said}; {next}"));
        if denied { Failure::Denied(error) } else { Failure::Other(error) }
    }
}

/// Throttling and server errors are retried, honouring `Retry-After`.
fn classify(reply: &Reply) -> Retry {
    match reply.status {
        status if transient(status) => retry_after(&reply.headers).map_or(Retry::Backoff, Retry::After),
        _ => Retry::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Endpoints;

    #[test]
    fn links_move_onto_the_configured_base() {
        let http = Http::new(crate::http::RetryPolicy::VALIDATION).unwrap();
        let credentials =
            EntraIdCredentials { client_id: "app".into(), client_secret: "s".to_string().into() };
        let endpoints = Endpoints::default()
            .with(super::super::GRAPH.env, Url::parse("http://proxy.local:8080/graph/").unwrap());
        let client = GraphClient::new(&http, &endpoints, "t", "t", &credentials, RateLimitShare::DEFAULT);
        let link = "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=a%2Bb_c";
        assert_eq!(
            client.rebase(link).unwrap().as_str(),
            "http://proxy.local:8080/graph/v1.0/users/delta?$deltatoken=a%2Bb_c"
        );
        assert!(client.rebase("https://evil.example/other").is_err());
        let direct =
            GraphClient::new(&http, &Endpoints::default(), "t", "t", &credentials, RateLimitShare::DEFAULT);
        assert_eq!(direct.rebase(link).unwrap().as_str(), link);
        assert_eq!(
            direct.rebase("http://127.0.0.1:1/v1.0/groups/delta?$skiptoken=x").unwrap().as_str(),
            "https://graph.microsoft.com/v1.0/groups/delta?$skiptoken=x"
        );
    }
}
