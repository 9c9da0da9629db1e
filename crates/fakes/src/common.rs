//! What every fake needs: a server on a free loopback port that stops with its handle, absolute
//! URLs on that server's own base (real APIs put their own host in `Link` headers and
//! `@odata.nextLink`; a fake must put its own there so clients follow it back), seeded ids and
//! freshly generated credentials.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::ops::Bound;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::format_description;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Digits, then upper case, then lower case: ASCII order, so ids built from it sort like the
/// numbers they encode.
pub(crate) const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub(crate) const HEX: &[u8] = b"0123456789abcdef";
pub(crate) const DIGITS: &[u8] = b"0123456789";

/// A listener on `127.0.0.1:port` (on any free port for 0, or when `port` is taken) and the base
/// URL it answers on. Bound before the app is built so the handlers know their own base URL.
pub(crate) async fn bind(port: u16) -> io::Result<(TcpListener, String)> {
    let listener = match TcpListener::bind(("127.0.0.1", port)).await {
        Err(e) if port != 0 && e.kind() == io::ErrorKind::AddrInUse => {
            TcpListener::bind(("127.0.0.1", 0)).await?
        }
        bound => bound?,
    };
    let base_url = format!("http://{}", listener.local_addr()?);
    Ok((listener, base_url))
}

/// A running fake. Dropping it stops the server; [`Server::shutdown`] also waits for it.
pub(crate) struct Server {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    pub(crate) fn serve(name: &'static str, listener: TcpListener, base_url: &str, app: Router) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        tracing::debug!(fake = name, base_url, "fake listening");
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::warn!(fake = name, %error, "fake stopped with an error");
            }
        });
        Self { stop: Some(stop), task: Some(task) }
    }

    /// Stops accepting connections and waits (briefly) for open requests to finish.
    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(2), &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An error reply on its way out. Checks return `Result<_, Refusal>` so handlers compose them
/// with `?`; boxed because a whole `Response` is too large to travel in every `Result`.
pub(crate) struct Refusal(Box<Response>);

impl Refusal {
    pub(crate) fn new(reply: impl IntoResponse) -> Self {
        Self(Box::new(reply.into_response()))
    }

    pub(crate) fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers_mut().insert(name, value);
        self
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// `{base}{path}?{query}`. Keys are written as given (Graph's `$top`, `$skiptoken` keep their
/// `$` as the real service writes them); values are form-encoded.
pub(crate) fn absolute(base: &str, path: &str, query: &[(&str, &str)]) -> String {
    let mut url = format!("{base}{path}");
    for (i, (key, value)) in query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(key);
        url.push('=');
        url.extend(url::form_urlencoded::byte_serialize(value.as_bytes()));
    }
    url
}

/// The ids after the cursor `after` (all of them without one), as a range of an ordered map or
/// set keyed by id.
pub(crate) fn after_cursor(after: Option<&str>) -> (Bound<String>, Bound<String>) {
    (after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned())), Bound::Unbounded)
}

/// Up to `limit` items of `entries` (ids with their items, in id order), and the id of the last
/// one taken when more remain: the next page's cursor. Keying by id keeps cursors valid when
/// entities are added or removed between pages, as real cursors are.
pub(crate) fn take_page<'a, T>(
    mut entries: impl Iterator<Item = (&'a String, T)>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let mut out = Vec::with_capacity(limit.min(1024));
    let mut last = None;
    for (id, item) in entries.by_ref().take(limit) {
        out.push(item);
        last = Some(id.clone());
    }
    let next = if entries.next().is_some() { last } else { None };
    (out, next)
}

/// One page of the values of a map ordered by id that `keep` accepts (see [`take_page`]).
pub(crate) fn page<'a, V>(
    items: &'a BTreeMap<String, V>,
    after: Option<&str>,
    limit: usize,
    keep: impl Fn(&V) -> bool,
) -> (Vec<&'a V>, Option<String>) {
    take_page(items.range::<String, _>(after_cursor(after)).filter(|(_, v)| keep(v)), limit)
}

/// A small deterministic generator (SplitMix64): the same seed gives the same tenant on every
/// platform and with every version of the dependencies.
pub(crate) struct Seeded(u64);

impl Seeded {
    /// `stream` separates the sequences drawn for different purposes from one seed.
    pub(crate) fn new(seed: u64, stream: &str) -> Self {
        let salt = stream
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        Self(seed ^ salt)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub(crate) fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len).map(|_| char::from(*self.pick(alphabet))).collect()
    }

    pub(crate) fn uuid(&mut self) -> uuid::Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// `n` written in `alphabet` with exactly `width` characters, so ids of one tenant sort by `n`.
pub(crate) fn fixed_width(mut n: u64, alphabet: &[u8], width: usize) -> String {
    let base = alphabet.len() as u64;
    let mut out = vec![alphabet[0]; width];
    for slot in out.iter_mut().rev() {
        *slot = alphabet[(n % base) as usize];
        n /= base;
    }
    String::from_utf8(out).expect("alphabets are ASCII")
}

/// A fresh random credential; never derived from the seed, so one run's tokens mean nothing to
/// another.
pub(crate) fn secret(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len).map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())])).collect()
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// `2024-05-05T18:15:44.000Z`, the form Okta writes.
pub(crate) fn millis(t: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(time::UtcOffset::UTC).format(&format).expect("UTC timestamps format")
}

/// `2024-05-05T18:15:44Z`, the form Graph and Google write.
pub(crate) fn seconds(t: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC).format(&format).expect("UTC timestamps format")
}

/// A fake tenant as its API serves it: the ground truth a sync is compared with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Every user by id, as the API serves it (Okta's `DEPROVISIONED` users included).
    pub users: BTreeMap<String, Value>,
    pub groups: BTreeMap<String, Value>,
    /// `(group id, user id)` of every direct user member.
    pub user_members: BTreeSet<(String, String)>,
    /// `(group id, member group id)` of every nested group.
    pub group_members: BTreeSet<(String, String)>,
    /// Role assignments by user id, as `/users/{id}/roles` serves them (Okta).
    pub roles: BTreeMap<String, Vec<Value>>,
    /// Enrolled factors by user id, as `/users/{id}/factors` serves them (Okta); users without
    /// factors are absent.
    pub factors: BTreeMap<String, Vec<Value>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_stable() {
        let a: Vec<u64> = (0..3).map(|_| Seeded::new(7, "x").next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Seeded::new(7, "x").next_u64(), Seeded::new(7, "y").next_u64());
    }

    #[test]
    fn fixed_width_sorts_like_numbers() {
        let ids: Vec<String> =
            [0u64, 9, 10, 61, 62, 1000].iter().map(|n| fixed_width(*n, BASE62, 4)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert_eq!(ids[0], "0000");
    }

    #[test]
    fn pages_resume_after_the_cursor() {
        let items: BTreeMap<String, u32> = (0..5).map(|i| (format!("id{i}"), i)).collect();
        let (first, next) = page(&items, None, 2, |_| true);
        assert_eq!(first, vec![&0, &1]);
        let (second, next) = page(&items, next.as_deref(), 2, |_| true);
        assert_eq!(second, vec![&2, &3]);
        let (last, next) = page(&items, next.as_deref(), 2, |_| true);
        assert_eq!((last, next), (vec![&4], None));
        let (exact, next) = page(&items, None, 5, |_| true);
        assert_eq!((exact.len(), next), (5, None));
    }

    #[test]
    fn timestamps_have_the_vendor_shapes() {
        let t = time::macros::datetime!(2024-05-05 18:15:44.120456 UTC);
        assert_eq!(millis(t), "2024-05-05T18:15:44.120Z");
        assert_eq!(millis(t.replace_nanosecond(0).unwrap()), "2024-05-05T18:15:44.000Z");
        assert_eq!(seconds(t), "2024-05-05T18:15:44Z");
    }

    #[test]
    fn absolute_keeps_dollar_keys() {
        assert_eq!(
            absolute("http://h", "/v1.0/users", &[("$top", "5"), ("$skiptoken", "a b")]),
            "http://h/v1.0/users?$top=5&$skiptoken=a+b"
        );
    }
}

/// Seconds since the Unix epoch, now.
pub(crate) fn epoch_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`: the `Date` a client measures a reset or retry epoch against.
pub(crate) fn http_date(epoch: u64) -> HeaderValue {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = OffsetDateTime::from_unix_timestamp(epoch as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    HeaderValue::from_str(&at.format(&format).expect("UTC dates format")).expect("ASCII date")
}

/// A fixed rate-limit window, as Okta (a minute per endpoint) and Falcon (a minute) count
/// requests.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    started: u64,
    used: u32,
}

impl RateWindow {
    /// Counts a request at `now` against `limit` in windows of `seconds`: what is left of the
    /// window (`None` when the request is over it) and the epoch second the window resets at.
    pub(crate) fn take(&mut self, now: u64, limit: u32, seconds: u64) -> (Option<u32>, u64) {
        if now >= self.started + seconds {
            *self = RateWindow { started: now, used: 0 };
        }
        self.used = self.used.saturating_add(1);
        (limit.checked_sub(self.used), self.started + seconds)
    }

    /// Requests counted in the window, over the limit too.
    pub(crate) fn used(&self) -> u32 {
        self.used
    }
}
