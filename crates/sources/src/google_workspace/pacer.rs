//! Keeps a service account's Directory requests as one admin within the config's share of the
//! quota Google gives that pair, so whatever else uses the same project and admin keeps the rest.
//!
//! The Directory API allows, by default, 2,400 queries a minute per user per Google Cloud project
//! (the user being the admin a service account impersonates, the project the service account's);
//! past it Google answers 403 `userRateLimitExceeded` and asks for exponential backoff ("Directory
//! API: Limits and Quotas", <https://developers.google.com/workspace/admin/directory/v1/limits>).
//! Google sends nothing saying how much of the quota is used or left.
//!
//! So the pacer counts what this process sent: a request goes while the requests of the last
//! window, it included, stay within the share. A request still unanswered counts and does not
//! slide out; an answered one slides out a window after its reply, by when Google has counted it.
//! A refusal is retried by the client's backoff. Other replicas and other tools are invisible:
//! each process keeps to the share on its own.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ctxsync_core::RateLimitShare;
use tokio::sync::Notify;
use tokio::time::Instant;
use url::Url;

/// What Google lets a project's requests as one user come to: `queries` in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoogleQuota {
    pub queries: u32,
    pub window: Duration,
}

impl GoogleQuota {
    /// The Directory API's default per-user quota. A project whose owner raised it still meets
    /// no refusal, only waits longer than it needs to.
    pub(crate) const DOCUMENTED: GoogleQuota =
        GoogleQuota { queries: 2_400, window: Duration::from_secs(60) };
}

/// The pacer of one project and admin, shared by every client of that pair in this process. The
/// quota is the one the first client named: a process has one set of endpoints.
pub(crate) fn pacer_for(directory: &Url, project: &str, admin: &str, quota: GoogleQuota) -> Arc<Pacer> {
    /// The Directory's base, the project and the admin.
    type Key = (String, String, String);
    static PACERS: OnceLock<Mutex<HashMap<Key, Arc<Pacer>>>> = OnceLock::new();
    let key = (directory.as_str().to_owned(), project.to_owned(), admin.to_ascii_lowercase());
    let mut pacers = PACERS.get_or_init(Mutex::default).lock().expect("pacers lock");
    pacers.entry(key).or_insert_with(|| Arc::new(Pacer::new(quota))).clone()
}

#[derive(Debug)]
pub(crate) struct Pacer {
    quota: GoogleQuota,
    account: Mutex<Account>,
    /// Told when a reply comes: an answered request starts to age.
    answered: Notify,
}

#[derive(Debug, Default)]
struct Account {
    /// Requests sent and not answered yet.
    in_flight: u32,
    /// When each request of the last window was answered, oldest first.
    answered: VecDeque<Instant>,
}

impl Pacer {
    fn new(quota: GoogleQuota) -> Pacer {
        Pacer { quota, account: Mutex::default(), answered: Notify::new() }
    }

    /// Waits until one more request fits in `share` of the window, and counts it.
    pub(crate) async fn admit(&self, share: RateLimitShare) -> Admitted<'_> {
        let allowed = share.of(self.quota.queries);
        loop {
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let slides = {
                let mut account = self.account.lock().expect("pacer lock");
                let now = Instant::now();
                while account.answered.front().is_some_and(|at| *at + self.quota.window <= now) {
                    account.answered.pop_front();
                }
                if account.in_flight + (account.answered.len() as u32) < allowed {
                    account.in_flight += 1;
                    return Admitted { pacer: self, first: AtomicBool::new(true) };
                }
                account.answered.front().map(|at| *at + self.quota.window)
            };
            match slides {
                Some(at) => drop(tokio::time::timeout_at(at, answered).await),
                None => answered.await,
            }
        }
    }

    /// Books a reply; a retry's reply is a further request.
    fn book(&self, first: bool) {
        let mut account = self.account.lock().expect("pacer lock");
        if first {
            account.in_flight -= 1;
        }
        account.answered.push_back(Instant::now());
        drop(account);
        self.answered.notify_waiters();
    }
}

/// A request [`Pacer::admit`] let go.
pub(crate) struct Admitted<'p> {
    pacer: &'p Pacer,
    first: AtomicBool,
}

impl Admitted<'_> {
    /// Books a reply of the request, whatever it said: Google counts refusals too.
    pub(crate) fn note(&self) {
        self.pacer.book(self.first.swap(false, Ordering::Relaxed));
    }
}

impl Drop for Admitted<'_> {
    /// A request that got no reply (a transport failure, a cancelled run) is booked as if it had
    /// been answered now.
    fn drop(&mut self) {
        if self.first.load(Ordering::Relaxed) {
            self.pacer.book(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_wait_for_the_window_to_slide_past_the_share() {
        let pacer = Pacer::new(GoogleQuota { queries: 10, window: Duration::from_secs(60) });
        let start = Instant::now();
        for _ in 0..5 {
            pacer.admit(RateLimitShare::DEFAULT).await.note();
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "half of 10 queries goes at once");
        pacer.admit(RateLimitShare::DEFAULT).await.note();
        assert_eq!(start.elapsed(), Duration::from_secs(60), "the sixth waits for the first to slide out");
    }

    #[tokio::test(start_paused = true)]
    async fn unanswered_requests_hold_their_place_and_a_retry_counts() {
        let pacer = Pacer::new(GoogleQuota { queries: 4, window: Duration::from_secs(60) });
        let start = Instant::now();
        let retried = pacer.admit(RateLimitShare::DEFAULT).await;
        retried.note();
        retried.note();
        let held = pacer.admit(RateLimitShare::DEFAULT).await;
        assert_eq!(start.elapsed(), Duration::from_secs(60), "the request and its retry filled the share");
        let _also_held = pacer.admit(RateLimitShare::DEFAULT).await;
        let waiting = pacer.admit(RateLimitShare::DEFAULT);
        tokio::pin!(waiting);
        let minutes = Duration::from_secs(600);
        assert!(tokio::time::timeout(minutes, waiting.as_mut()).await.is_err(), "two in flight");
        drop(held);
        waiting.await.note();
        assert_eq!(start.elapsed(), Duration::from_secs(720), "the dropped one is booked when dropped");
    }
}
