//! Per-org request limits with Datadog's `X-RateLimit-*` headers.
//!
//! One GCRA bucket (governor) per org, and one per client address for requests that are not
//! authenticated, so a flood of bad keys cannot starve an org. Buckets live in this process: with
//! several replicas each keeps its own, so an org's effective limit is the per-replica limit
//! times the number of replicas its requests are spread over.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ctxsync_core::OrgId;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::ErrorBody;

/// Whose bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    Org(OrgId),
    Address(IpAddr),
}

/// How many requests an org may make per period.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitSettings {
    pub limit: NonZeroU32,
    pub period: Duration,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self { limit: NonZeroU32::new(6000).expect("non-zero"), period: Duration::from_secs(60) }
    }
}

type Limiter =
    RateLimiter<RateKey, DefaultKeyedStateStore<RateKey>, DefaultClock, StateInformationMiddleware>;

#[derive(Clone)]
pub struct RateLimits {
    limiter: Arc<Limiter>,
    settings: RateLimitSettings,
}

/// The answer for one request, and the headers that describe it.
pub struct Decision {
    limit: u32,
    period_secs: u64,
    remaining: u32,
    reset_secs: u64,
    allowed: bool,
}

/// The name quoted in `X-RateLimit-Name`.
const LIMIT_NAME: &str = "integration_config";

impl RateLimits {
    pub fn new(settings: RateLimitSettings) -> Self {
        let interval = settings.period / settings.limit.get();
        let quota = Quota::with_period(interval.max(Duration::from_nanos(1)))
            .expect("a positive interval")
            .allow_burst(settings.limit);
        let limiter = RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>();
        Self { limiter: Arc::new(limiter), settings }
    }

    pub fn check(&self, key: RateKey) -> Decision {
        let limit = self.settings.limit.get();
        let period_secs = self.settings.period.as_secs().max(1);
        let per_request = self.settings.period / limit;
        match self.limiter.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let refill = per_request * (limit - remaining);
                Decision { limit, period_secs, remaining, reset_secs: ceil_secs(refill), allowed: true }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Decision {
                    limit,
                    period_secs,
                    remaining: 0,
                    reset_secs: ceil_secs(wait).max(1),
                    allowed: false,
                }
            }
        }
    }

    /// Forgets buckets that are full again, so memory follows the active callers only.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    pub fn too_many_requests(&self) -> Response {
        let body = ErrorBody { errors: vec![format!("Too many requests: retry in {} s", self.reset_secs)] };
        let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
        response.headers_mut().insert("Retry-After", HeaderValue::from(self.reset_secs));
        response
    }

    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert("X-RateLimit-Limit", HeaderValue::from(self.limit));
        headers.insert("X-RateLimit-Period", HeaderValue::from(self.period_secs));
        headers.insert("X-RateLimit-Remaining", HeaderValue::from(self.remaining));
        headers.insert("X-RateLimit-Reset", HeaderValue::from(self.reset_secs));
        headers.insert("X-RateLimit-Name", HeaderValue::from_static(LIMIT_NAME));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(n: u32) -> RateLimits {
        RateLimits::new(RateLimitSettings {
            limit: NonZeroU32::new(n).unwrap(),
            period: Duration::from_secs(60),
        })
    }

    #[test]
    fn counts_down_then_refuses() {
        let l = limits(3);
        let key = RateKey::Org(OrgId::new());
        let remaining: Vec<u32> = (0..3).map(|_| l.check(key).remaining).collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = l.check(key);
        assert!(!refused.allowed());
        assert!((1..=20).contains(&refused.reset_secs), "{}", refused.reset_secs);
    }

    #[test]
    fn orgs_do_not_share_a_bucket() {
        let l = limits(1);
        assert!(l.check(RateKey::Org(OrgId::new())).allowed());
        assert!(l.check(RateKey::Org(OrgId::new())).allowed());
    }
}
