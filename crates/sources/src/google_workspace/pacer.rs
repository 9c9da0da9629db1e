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
//! Other replicas and other tools are invisible; the processes syncing one domain at once, which
//! the sync engine counts from the store's leases, each keep to an equal part of the share
//! (`split.rs`). A refusal therefore means someone else spends the quota too: the refused request
//! is retried by the client's backoff, and every other request waits as long ([`pause`]), so a
//! run does not go on refusing while Google asks it to back off.
//!
//! Validating credentials does not wait ([`Pace::Now`]): an API caller waits for it, it is
//! two requests, and a running sync may have filled the window for up to a minute. Its requests
//! are counted all the same, so the sync waits for them instead.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::http::Pace;
use crate::split::Split;
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
    /// Nothing goes before this, after a refusal.
    paused_until: Option<Instant>,
    /// Refusals in a row of requests sent after the pause before them began: each doubles the
    /// next pause.
    refusals: u32,
    /// Requests let go so far, which numbers them.
    sent: u64,
    /// The number the first request let go after the latest pause began has: a refusal of a
    /// request sent before it says nothing new.
    paused_from: u64,
}

/// How long every request waits after the `refusals`-th refusal in a row: the exponential
/// backoff Google asks for (1, 2, 4 … seconds), up to its 32-second maximum.
fn pause(refusals: u32) -> Duration {
    Duration::from_secs(1 << refusals.saturating_sub(1).min(5))
}

impl Pacer {
    fn new(quota: GoogleQuota) -> Pacer {
        Pacer { quota, account: Mutex::default(), answered: Notify::new() }
    }

    /// Waits until one more request fits in this process's part (`split`) of the share of the
    /// window, and no refusal's pause holds it back, and counts it; with [`Pace::Now`], counts it
    /// at once.
    pub(crate) async fn admit(&self, pace: Pace, split: &Split) -> Admitted<'_> {
        let share = match pace {
            Pace::Within(share) => share,
            Pace::Now => return self.count(&mut self.account.lock().expect("pacer lock"), false),
        };
        loop {
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let slides = {
                // Read afresh each time: the count of processes may change while this one waits.
                let allowed = split.part(share.of(self.quota.queries));
                let mut account = self.account.lock().expect("pacer lock");
                let now = Instant::now();
                account.slide(now, self.quota.window);
                match account.paused_until.filter(|until| *until > now) {
                    Some(until) => Some(until),
                    None if account.in_flight + (account.answered.len() as u32) < allowed => {
                        return self.count(&mut account, true);
                    }
                    None => account.answered.front().map(|at| *at + self.quota.window),
                }
            };
            match slides {
                Some(at) => drop(tokio::time::timeout_at(at, answered).await),
                None => answered.await,
            }
        }
    }

    /// Counts a request; `paced` when it waited for its turn, so that its replies may pause
    /// the others or end a pause.
    fn count(&self, account: &mut Account, paced: bool) -> Admitted<'_> {
        account.in_flight += 1;
        account.sent += 1;
        Admitted { pacer: self, number: AtomicU64::new(account.sent), paced, first: AtomicBool::new(true) }
    }

    /// Books a reply of the request attempt numbered `number`, and pauses every request after a
    /// refusal; `refused` is `None` when the reply says nothing of the quota (none came, or the
    /// request did not wait for its turn). Returns the number of the attempt that may follow: a
    /// retry is sent after this reply, so after any pause it began.
    fn book(&self, first: bool, number: u64, refused: Option<bool>) -> u64 {
        let mut account = self.account.lock().expect("pacer lock");
        if first {
            account.in_flight -= 1;
        }
        let now = Instant::now();
        account.slide(now, self.quota.window);
        account.answered.push_back(now);
        // Requests sent before the latest pause began were answered by the Google that had
        // refused already: they neither double the pause nor show that it ended.
        if let Some(refused) = refused
            && number >= account.paused_from
        {
            if refused {
                account.refusals += 1;
                account.paused_from = account.sent + 1;
                let until = now + pause(account.refusals);
                account.paused_until = Some(account.paused_until.map_or(until, |at| at.max(until)));
            } else {
                account.refusals = 0;
            }
        }
        account.sent += 1;
        let next = account.sent;
        drop(account);
        self.answered.notify_waiters();
        next
    }
}

impl Account {
    /// Forgets the replies older than `window`: Google no longer counts them.
    fn slide(&mut self, now: Instant, window: Duration) {
        while self.answered.front().is_some_and(|at| *at + window <= now) {
            self.answered.pop_front();
        }
    }
}

/// A request [`Pacer::admit`] let go.
pub(crate) struct Admitted<'p> {
    pacer: &'p Pacer,
    /// The number of its latest attempt.
    number: AtomicU64,
    /// Whether it waited for its turn ([`Pace::Within`]).
    paced: bool,
    first: AtomicBool,
}

impl Admitted<'_> {
    /// Books a reply of the request, whatever it said (Google counts refusals too), and whether
    /// it was a refusal of the quota.
    pub(crate) fn note(&self, refused: bool) {
        let first = self.first.swap(false, Ordering::Relaxed);
        let next = self.pacer.book(first, self.number.load(Ordering::Relaxed), self.paced.then_some(refused));
        self.number.store(next, Ordering::Relaxed);
    }
}

impl Drop for Admitted<'_> {
    /// A request that got no reply (a transport failure, a cancelled run) is booked as if it had
    /// been answered now.
    fn drop(&mut self) {
        if self.first.load(Ordering::Relaxed) {
            self.pacer.book(true, self.number.load(Ordering::Relaxed), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use ctxsync_core::RateLimitShare;

    use super::*;

    const HALF: Pace = Pace::Within(RateLimitShare::DEFAULT);

    /// A process that syncs the domain alone.
    static ALONE: std::sync::LazyLock<Split> = std::sync::LazyLock::new(Split::default);

    #[tokio::test(start_paused = true)]
    async fn requests_wait_for_the_window_to_slide_past_the_share() {
        let pacer = Pacer::new(GoogleQuota { queries: 10, window: Duration::from_secs(60) });
        let start = Instant::now();
        for _ in 0..5 {
            pacer.admit(HALF, &ALONE).await.note(false);
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "half of 10 queries goes at once");
        pacer.admit(HALF, &ALONE).await.note(false);
        assert_eq!(start.elapsed(), Duration::from_secs(60), "the sixth waits for the first to slide out");
    }

    #[tokio::test(start_paused = true)]
    async fn a_process_syncing_the_domain_with_another_keeps_to_its_part_of_the_share() {
        let pacer = Pacer::new(GoogleQuota { queries: 10, window: Duration::from_secs(60) });
        let split = Split::default();
        split.set(2);
        let start = Instant::now();
        for _ in 0..2 {
            pacer.admit(HALF, &split).await.note(false);
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "two of the share of five go at once");
        pacer.admit(HALF, &split).await.note(false);
        assert_eq!(start.elapsed(), Duration::from_secs(60), "the third waits for the first to slide out");
    }

    #[tokio::test(start_paused = true)]
    async fn unanswered_requests_hold_their_place_and_a_retry_counts() {
        let pacer = Pacer::new(GoogleQuota { queries: 4, window: Duration::from_secs(60) });
        let start = Instant::now();
        let retried = pacer.admit(HALF, &ALONE).await;
        retried.note(false);
        retried.note(false);
        let held = pacer.admit(HALF, &ALONE).await;
        assert_eq!(start.elapsed(), Duration::from_secs(60), "the request and its retry filled the share");
        let _also_held = pacer.admit(HALF, &ALONE).await;
        let waiting = pacer.admit(HALF, &ALONE);
        tokio::pin!(waiting);
        let minutes = Duration::from_secs(600);
        assert!(tokio::time::timeout(minutes, waiting.as_mut()).await.is_err(), "two in flight");
        drop(held);
        waiting.await.note(false);
        assert_eq!(start.elapsed(), Duration::from_secs(720), "the dropped one is booked when dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn a_smaller_share_of_the_same_quota_waits_while_a_larger_one_keeps_the_use_above_it() {
        let pacer = Pacer::new(GoogleQuota { queries: 10, window: Duration::from_secs(60) });
        let settings = serde_json::from_value(serde_json::json!({"rate_limit_share": 20})).unwrap();
        let fifth = Pace::Within(RateLimitShare::for_settings(&settings).unwrap());
        let start = Instant::now();
        for _ in 0..5 {
            pacer.admit(HALF, &ALONE).await.note(false);
        }
        pacer.admit(fifth, &ALONE).await.note(false);
        assert_eq!(start.elapsed(), Duration::from_secs(60), "five of ten taken, over a share of two");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_pauses_every_request_and_refusals_in_a_row_double_the_pause() {
        let pacer = Pacer::new(GoogleQuota { queries: 100, window: Duration::from_secs(60) });
        let start = Instant::now();
        let (first, before) = (pacer.admit(HALF, &ALONE).await, pacer.admit(HALF, &ALONE).await);
        first.note(true);
        // Sent before the pause began: refused by the same overspent quota, nothing new.
        before.note(true);
        let after = pacer.admit(HALF, &ALONE).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1), "one refusal: a second for everyone");
        after.note(true);
        let again = pacer.admit(HALF, &ALONE).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3), "the next request's refusal: two more");
        again.note(false);
        pacer.admit(HALF, &ALONE).await.note(true);
        pacer.admit(HALF, &ALONE).await.note(false);
        assert_eq!(start.elapsed(), Duration::from_secs(4), "an answer ends the run of refusals");
        assert_eq!([1, 2, 6, 7, 40].map(pause), [1, 2, 32, 32, 32].map(Duration::from_secs));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_sent_after_a_pause_began_counts_and_a_validation_leaves_the_pause_alone() {
        let pacer = Pacer::new(GoogleQuota { queries: 100, window: Duration::from_secs(60) });
        let start = Instant::now();
        let retried = pacer.admit(HALF, &ALONE).await;
        retried.note(true);
        // Its retry goes after the refusal: refused again, the pause doubles.
        retried.note(true);
        let after = pacer.admit(HALF, &ALONE).await;
        assert_eq!(start.elapsed(), Duration::from_secs(2), "two refusals in a row: two seconds");
        pacer.admit(Pace::Now, &ALONE).await.note(false);
        pacer.admit(Pace::Now, &ALONE).await.note(true);
        after.note(true);
        pacer.admit(HALF, &ALONE).await.note(false);
        assert_eq!(start.elapsed(), Duration::from_secs(6), "validations neither ended nor doubled the run");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_admitted_now_waits_for_nothing_and_counts() {
        let pacer = Pacer::new(GoogleQuota { queries: 4, window: Duration::from_secs(60) });
        let start = Instant::now();
        pacer.admit(HALF, &ALONE).await.note(true);
        pacer.admit(Pace::Now, &ALONE).await.note(false);
        pacer.admit(Pace::Now, &ALONE).await.note(false);
        assert_eq!(start.elapsed(), Duration::ZERO, "neither the pause nor the full share held it");
        pacer.admit(HALF, &ALONE).await.note(false);
        assert_eq!(start.elapsed(), Duration::from_secs(60), "the share waited for them to slide out");
    }
}
