//! Keeps an app's Graph requests in a tenant within the config's share of what Graph lets the app
//! spend there, so whatever else uses the same app registration keeps the rest. Graph's budget is
//! per app and tenant: integrations with app registrations of their own do not draw on it.
//!
//! Graph meters directory requests in resource units per app and tenant: 3,500 a 10-second window
//! in a tenant under 50 users, 5,000 up to 500, 8,000 above; a request costs what its
//! `x-ms-resource-unit` reply header says, and past the limit Graph answers 429 with
//! `Retry-After` ("Identity and access service limits",
//! <https://learn.microsoft.com/en-us/graph/throttling-limits>). Graph never says how much is left,
//! only, above 0.8 of the limit, how full the window is (`x-ms-throttle-limit-percentage`).
//!
//! So the pacer keeps its own account: the units this process spent in the last window, a
//! request's documented cost standing in until its reply says what it cost. A request goes while
//! that account, the request included, stays within the share. A reading of how full the window
//! is shows what others (another replica, another tool with the same app) spend beside it; the
//! pacer then keeps to what the share leaves after them, or to its part of the share in
//! proportion to what each spent when it was read, whichever is more, until the reading is older
//! than [`READING_LIFE`] windows. Readings come only above 0.8, so replicas that each take a share
//! of 0.5 would together reach 0.8 before they see each other; the processes syncing one domain
//! at once, which the sync engine counts from the store's leases, therefore each keep to an equal
//! part of the share (`split.rs`), and a reading covers the rest: another tool using the app, or,
//! until its next renewal of its lease, a replica that was syncing alone when another started.
//!
//! Validating credentials does not wait ([`Pace::Now`]): an API caller waits for it, it is
//! three requests, and a running sync may have filled the window. Its units are booked all the
//! same, so the sync waits for them instead.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use tokio::sync::Notify;
use tokio::time::Instant;
use url::Url;

use crate::http::{Pace, retry_after};
use crate::split::Split;

/// How many windows a reading of others' use holds. Others are assumed to keep their pace for
/// that long; a longer life keeps replicas closer to the share, a shorter one gives the budget
/// back sooner once the others stop.
const READING_LIFE: u32 = 5;

/// What Graph lets an app spend in a tenant: `units` resource units in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphBudget {
    pub units: u32,
    pub window: Duration,
}

impl GraphBudget {
    /// The documented limit for a tenant of `users` users. Until the pacer knows the size (a full
    /// run's `$count` tells it), the smallest, which holds for every tenant: a larger tenant
    /// only waits longer than it needs to, never meets a 429.
    fn documented(users: Option<u64>) -> GraphBudget {
        let units = match users {
            Some(50..=500) => 5_000,
            Some(501..) => 8_000,
            _ => 3_500,
        };
        GraphBudget { units, window: Duration::from_secs(10) }
    }
}

/// The pacer of one app in one tenant, shared by every client of that pair in this process.
/// Keyed by the tenant as configs name it: two configs naming one tenant by its domain and by
/// its id pace apart. The budget is the one the first client named: a process has one set of
/// endpoints.
pub(crate) fn pacer_for(graph: &Url, tenant: &str, app: &str, fixed: Option<GraphBudget>) -> Arc<Pacer> {
    /// Graph's base, the tenant and the app's client id.
    type Key = (String, String, String);
    static PACERS: OnceLock<Mutex<HashMap<Key, Arc<Pacer>>>> = OnceLock::new();
    let key = (graph.as_str().to_owned(), tenant.to_ascii_lowercase(), app.to_owned());
    let mut pacers = PACERS.get_or_init(Mutex::default).lock().expect("pacers lock");
    pacers.entry(key).or_insert_with(|| Arc::new(Pacer::new(fixed))).clone()
}

#[derive(Debug)]
pub(crate) struct Pacer {
    /// The operator's budget (a scaled-down Graph); else the documented one.
    fixed: Option<GraphBudget>,
    account: Mutex<Account>,
    /// Told when a reply comes: it may show a request cost less than its estimate.
    answered: Notify,
}

#[derive(Debug, Default)]
struct Account {
    users: Option<u64>,
    /// What this process spent in the last window, oldest first.
    spent: VecDeque<Spend>,
    next_id: u64,
    others: Option<Others>,
    /// A 429's `Retry-After`: nothing goes before it.
    paused_until: Option<Instant>,
}

#[derive(Debug)]
struct Spend {
    id: u64,
    /// When it was answered (Graph charged it before then), or sent while it is not.
    at: Instant,
    units: u32,
    answered: bool,
}

/// Others' use as a reading of the window showed it, and ours then.
#[derive(Debug, Clone, Copy)]
struct Others {
    units: u32,
    ours: u32,
    until: Instant,
}

impl Pacer {
    fn new(fixed: Option<GraphBudget>) -> Pacer {
        Pacer { fixed, account: Mutex::default(), answered: Notify::new() }
    }

    fn budget(&self, account: &Account) -> GraphBudget {
        self.fixed.unwrap_or_else(|| GraphBudget::documented(account.users))
    }

    /// The tenant's number of users, which sets its documented limit.
    pub(crate) fn tenant_size(&self, users: u64) {
        self.account.lock().expect("pacer lock").users = Some(users);
    }

    /// Waits until `estimate` more units fit in this process's part (`split`) of the share of
    /// the window, and books them as spent; with [`Pace::Now`], books them at once.
    pub(crate) async fn admit(&self, pace: Pace, estimate: u32, split: &Split) -> Admitted<'_> {
        let share = match pace {
            Pace::Within(share) => share,
            Pace::Now => {
                return self.book(&mut self.account.lock().expect("pacer lock"), Instant::now(), estimate);
            }
        };
        loop {
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let wake = {
                let mut account = self.account.lock().expect("pacer lock");
                let budget = self.budget(&account);
                let now = Instant::now();
                let whole = share.of(budget.units);
                match account.room(now, budget, (whole, split.part(whole)), estimate) {
                    Ok(()) => return self.book(&mut account, now, estimate),
                    Err(wake) => wake,
                }
            };
            match wake {
                Some(at) => drop(tokio::time::timeout_at(at, answered).await),
                None => answered.await,
            }
        }
    }

    fn book(&self, account: &mut Account, now: Instant, estimate: u32) -> Admitted<'_> {
        let id = account.next_id;
        account.next_id += 1;
        account.spent.push_back(Spend { id, at: now, units: estimate, answered: false });
        Admitted { pacer: self, id, estimate, first: AtomicBool::new(true) }
    }
}

impl Account {
    /// Forgets the charges answered longer than `window` ago. Replies come in any order, so an
    /// answered charge leaves the window wherever it stands.
    fn slide(&mut self, now: Instant, window: Duration) {
        self.spent.retain(|s| !s.answered || s.at + window > now);
    }

    /// Whether `estimate` more units fit now; else when to look again (`None`: at the next reply).
    /// `(share, part)` are what the share lets the processes syncing the domain spend in a window,
    /// and this process's part of it: a reading of others' use counts every other process, so it
    /// adjusts the whole share, and this process then keeps to the lesser of what that leaves it
    /// and its part.
    fn room(
        &mut self,
        now: Instant,
        budget: GraphBudget,
        (share, part): (u32, u32),
        estimate: u32,
    ) -> Result<(), Option<Instant>> {
        if let Some(until) = self.paused_until.filter(|until| *until > now) {
            return Err(Some(until));
        }
        self.slide(now, budget.window);
        self.others = self.others.filter(|o| o.until > now);
        let ours: u32 = self.spent.iter().map(|s| s.units).sum();
        let allowed = match self.others {
            Some(o) => share
                .saturating_sub(o.units)
                .max((u64::from(share) * u64::from(o.ours) / u64::from(o.ours + o.units)) as u32),
            None => share,
        }
        .min(part);
        // Nothing of ours in the window: one request goes whatever it costs, so a sync never
        // stops altogether.
        if ours == 0 || ours + estimate <= allowed {
            return Ok(());
        }
        let slides = self.spent.iter().filter(|s| s.answered).map(|s| s.at + budget.window).min();
        Err(match (slides, self.others) {
            (Some(slides), Some(o)) => Some(slides.min(o.until)),
            (slides, others) => slides.or(others.map(|o| o.until)),
        })
    }
}

/// A request [`Pacer::admit`] let go: its replies settle what it cost.
pub(crate) struct Admitted<'p> {
    pacer: &'p Pacer,
    id: u64,
    estimate: u32,
    first: AtomicBool,
}

impl Admitted<'_> {
    /// Books a reply: what it cost (a retry's reply is a further request), how full Graph says
    /// the window is, and a 429's `Retry-After` as a pause for every request of the app.
    pub(crate) fn note(&self, status: StatusCode, headers: &HeaderMap) {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let units = header("x-ms-resource-unit").and_then(|v| v.parse().ok()).unwrap_or(self.estimate);
        let now = Instant::now();
        let mut account = self.pacer.account.lock().expect("pacer lock");
        let budget = self.pacer.budget(&account);
        if self.first.swap(false, Ordering::Relaxed) {
            if let Some(spend) = account.spent.iter_mut().find(|s| s.id == self.id) {
                *spend = Spend { id: self.id, at: now, units, answered: true };
            }
        } else {
            let id = account.next_id;
            account.next_id += 1;
            account.spent.push_back(Spend { id, at: now, units, answered: true });
        }
        account.slide(now, budget.window);
        let ours: u32 = account.spent.iter().filter(|s| s.answered).map(|s| s.units).sum();
        let reading = header("x-ms-throttle-limit-percentage").and_then(|v| v.parse::<f64>().ok());
        match reading {
            Some(used) => {
                let total = (used * f64::from(budget.units)).round() as u32;
                let units = total.saturating_sub(ours);
                let until = now + budget.window * READING_LIFE;
                account.others = (units > 0).then_some(Others { units, ours, until });
            }
            // No reading: the window is under 0.8 full, so others spend at most the rest of it.
            None => {
                let most = (f64::from(budget.units) * 0.8) as u32;
                if let Some(others) = &mut account.others {
                    others.units = others.units.min(most.saturating_sub(ours));
                }
            }
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = retry_after(headers).unwrap_or(Duration::from_secs(1));
            account.paused_until = Some(now + wait);
        }
        drop(account);
        self.pacer.answered.notify_waiters();
    }
}

impl Drop for Admitted<'_> {
    /// A request that got no reply (a transport failure, a cancelled run) is booked at its
    /// estimate, as if it had been answered now.
    fn drop(&mut self) {
        if self.first.load(Ordering::Relaxed) {
            let mut account = self.pacer.account.lock().expect("pacer lock");
            if let Some(spend) = account.spent.iter_mut().find(|s| s.id == self.id) {
                spend.at = Instant::now();
                spend.answered = true;
            }
            drop(account);
            self.pacer.answered.notify_waiters();
        }
    }
}

/// A request's documented cost, before its reply says: `GET users` 2, `GET groups/{id}/members`
/// 3, `GET groups/{id}/transitiveMembers` 5, any other 1; `$select` takes one off, `$expand` adds
/// one, a `$top` under 20 takes one off; never under 1. The table names paths: `users/delta` is
/// read as a path it does not list, which the documentation leaves open, and the reply corrects.
/// Role assignments (`roleManagement/directory`) and subscriptions are not among the resources the
/// documentation puts under these limits; they are booked all the same, the safe reading.
pub(crate) fn cost(method: &Method, url: &Url) -> u32 {
    let segments: Vec<&str> = url.path_segments().into_iter().flatten().collect();
    let after = segments.iter().position(|s| *s == "v1.0").map_or(&segments[..], |at| &segments[at + 1..]);
    let base: i32 = match (method == Method::GET, after) {
        (true, ["users"]) => 2,
        (true, ["groups", _, "members"]) => 3,
        (true, ["groups", _, "transitiveMembers"]) => 5,
        _ => 1,
    };
    let adjusted = url.query_pairs().fold(base, |cost, (key, value)| match key.as_ref() {
        "$select" => cost - 1,
        "$expand" => cost + 1,
        "$top" if value.parse::<u32>().is_ok_and(|top| top < 20) => cost - 1,
        _ => cost,
    });
    adjusted.max(1) as u32
}

#[cfg(test)]
mod tests {
    use ctxsync_core::RateLimitShare;
    use reqwest::header::HeaderValue;

    use super::*;

    const HALF: Pace = Pace::Within(RateLimitShare::DEFAULT);

    /// A process that syncs the domain alone.
    static ALONE: std::sync::LazyLock<Split> = std::sync::LazyLock::new(Split::default);

    fn replied(units: &'static str, percentage: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-ms-resource-unit", HeaderValue::from_static(units));
        if let Some(p) = percentage {
            headers.insert("x-ms-throttle-limit-percentage", HeaderValue::from_static(p));
        }
        headers
    }

    #[test]
    fn requests_cost_what_the_limits_table_says() {
        let cost = |url: &str| cost(&Method::GET, &Url::parse(url).unwrap());
        assert_eq!(cost("https://graph.microsoft.com/v1.0/users"), 2);
        assert_eq!(cost("https://graph.microsoft.com/v1.0/users?$top=1&$select=id"), 1);
        assert_eq!(cost("https://graph.microsoft.com/v1.0/groups/g/members?$top=999"), 3);
        assert_eq!(cost("http://proxy.local/graph/v1.0/groups/g/transitiveMembers?$expand=x"), 6);
        assert_eq!(cost("https://graph.microsoft.com/v1.0/devices?$select=id&$expand=registeredOwners"), 1);
        assert_eq!(cost("https://graph.microsoft.com/v1.0/users/delta?$skiptoken=x"), 1);
    }

    #[test]
    fn the_documented_limit_starts_at_the_smallest_tenants() {
        let pacer = Pacer::new(None);
        let units = || pacer.budget(&pacer.account.lock().unwrap()).units;
        assert_eq!(units(), 3_500, "until the size is known");
        pacer.tenant_size(600);
        assert_eq!(units(), 8_000);
        let fixed = Pacer::new(Some(GraphBudget { units: 20, window: Duration::from_secs(1) }));
        fixed.tenant_size(600);
        assert_eq!(fixed.budget(&fixed.account.lock().unwrap()).units, 20, "a budget named stays");
        let units = |users| GraphBudget::documented(users).units;
        assert_eq!(
            [None, Some(49), Some(50), Some(500), Some(501)].map(units),
            [3_500, 3_500, 5_000, 5_000, 8_000]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_wait_for_the_window_to_slide_past_the_share() {
        let pacer = Pacer::new(Some(GraphBudget { units: 10, window: Duration::from_secs(10) }));
        let start = Instant::now();
        for _ in 0..5 {
            pacer.admit(HALF, 1, &ALONE).await.note(StatusCode::OK, &replied("1", None));
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "half of 10 units goes at once");
        pacer.admit(HALF, 1, &ALONE).await.note(StatusCode::OK, &replied("1", None));
        assert_eq!(start.elapsed(), Duration::from_secs(10), "the sixth waits for the first to slide out");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reading_of_others_use_splits_the_share() {
        let pacer = Pacer::new(Some(GraphBudget { units: 100, window: Duration::from_secs(10) }));
        for _ in 0..4 {
            pacer.admit(HALF, 10, &ALONE).await.note(StatusCode::OK, &replied("10", None));
        }
        // 50 of ours and 0.8 of the window full: others spent 30, so this keeps to 50 of every 80
        // spent, 31 of its share of 50, until the window slides.
        let start = Instant::now();
        pacer.admit(HALF, 10, &ALONE).await.note(StatusCode::OK, &replied("10", Some("0.80")));
        let others = pacer.account.lock().unwrap().others.map(|o| (o.units, o.ours));
        assert_eq!(others, Some((30, 50)));
        pacer.admit(HALF, 10, &ALONE).await.note(StatusCode::OK, &replied("10", None));
        assert_eq!(start.elapsed(), Duration::from_secs(10), "waited for the window to empty");
    }

    /// Two processes told of each other, each at its part of a share of 90: a reading shows the
    /// other's use, which the split left out already, so each still keeps to its part of 45.
    #[test]
    fn a_reading_of_the_other_process_leaves_a_split_process_its_part() {
        let budget = GraphBudget { units: 100, window: Duration::from_secs(10) };
        let start = Instant::now();
        let spent = (0..44).map(|id| Spend { id, at: start, units: 1, answered: false });
        let others = Some(Others { units: 45, ours: 44, until: start + Duration::from_secs(50) });
        let mut account = Account { spent: spent.collect(), others, ..Account::default() };
        assert_eq!(account.room(start, budget, (90, 45), 1), Ok(()), "45 of its part of 45");
        assert!(account.room(start, budget, (90, 44), 1).is_err(), "never past its part");
    }

    #[test]
    fn charges_answered_out_of_order_leave_the_window_each_in_its_turn() {
        let budget = GraphBudget { units: 10, window: Duration::from_secs(10) };
        let start = Instant::now();
        let spend = |id, answered_at: u64| Spend {
            id,
            at: start + Duration::from_secs(answered_at),
            units: 1,
            answered: true,
        };
        // The first request let through was answered last, after the four behind it.
        let spent = [spend(0, 5), spend(1, 1), spend(2, 1), spend(3, 1), spend(4, 1)];
        let mut account = Account { spent: spent.into(), ..Account::default() };
        let now = start + Duration::from_secs(11);
        let share = RateLimitShare::DEFAULT.of(10);
        assert_eq!(account.room(now, budget, (share, share), 1), Ok(()), "four slid out");
        assert_eq!(account.spent.iter().map(|s| s.id).collect::<Vec<_>>(), [0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_every_request_for_its_retry_after() {
        let pacer = Pacer::new(None);
        let mut throttled = HeaderMap::new();
        throttled.insert("retry-after", HeaderValue::from_static("7"));
        pacer.admit(HALF, 1, &ALONE).await.note(StatusCode::TOO_MANY_REQUESTS, &throttled);
        let start = Instant::now();
        drop(pacer.admit(HALF, 1, &ALONE).await);
        assert_eq!(start.elapsed(), Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_admitted_now_waits_for_nothing_and_is_booked() {
        let pacer = Pacer::new(Some(GraphBudget { units: 10, window: Duration::from_secs(10) }));
        let mut throttled = HeaderMap::new();
        throttled.insert("retry-after", HeaderValue::from_static("3"));
        pacer.admit(HALF, 4, &ALONE).await.note(StatusCode::TOO_MANY_REQUESTS, &throttled);
        let start = Instant::now();
        pacer.admit(Pace::Now, 3, &ALONE).await.note(StatusCode::OK, &replied("3", None));
        assert_eq!(start.elapsed(), Duration::ZERO, "neither the pause nor the full share held it");
        pacer.admit(HALF, 1, &ALONE).await.note(StatusCode::OK, &replied("1", None));
        assert_eq!(start.elapsed(), Duration::from_secs(10), "the share waited for them to slide out");
    }
}
