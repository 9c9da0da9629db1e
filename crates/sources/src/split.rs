//! How many processes sync a tenant at once, as the sync engine last counted them from the
//! store's leases ([`crate::Sources::split_limit`]): a limit the source sets on all the clients of
//! a tenant together, and does not report to them (Okta's on requests in flight, Google's quota,
//! Graph's budget below 80% full), is split between those processes equally.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::endpoints::Target;

/// The name of a `source`'s limit for the configs of `domain` whose requests go to `base`, for a
/// limit whose real owner only the encrypted secrets name (Google's project and admin, Graph's
/// app in its tenant): the configs' domain stands for it. Configs of one domain with another
/// owner split for nothing and wait longer than they need to; configs of other domains with the
/// same owner do not split.
pub(crate) fn domain_key(source: &str, base: &Target, domain: &str) -> String {
    format!("{source} {}#{}", base.base(), domain.trim().to_ascii_lowercase())
}

/// The processes sharing one limit as last counted, this one included; 0 until counted, which
/// is this one alone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Split(Arc<AtomicU32>);

impl Split {
    /// The split of the limit named `key`, shared by every client of it in this process.
    pub(crate) fn named(key: &str) -> Split {
        static SPLITS: OnceLock<Mutex<HashMap<String, Split>>> = OnceLock::new();
        let mut splits = SPLITS.get_or_init(Mutex::default).lock().expect("splits lock");
        splits.entry(key.to_owned()).or_default().clone()
    }

    /// Sets the count; the one it replaces, 0 if none was set.
    pub(crate) fn set(&self, processes: u32) -> u32 {
        self.0.swap(processes, Ordering::Relaxed)
    }

    /// This process's part of `whole`: an equal one, at least 1 so that no process stops.
    pub(crate) fn part(&self, whole: u32) -> u32 {
        (whole / self.0.load(Ordering::Relaxed).max(1)).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_process_takes_an_equal_part_and_at_least_one() {
        let split = Split::named("https://split.example/");
        assert_eq!(split.part(17), 17, "alone until counted");
        assert_eq!(Split::named("https://split.example/").set(2), 0);
        assert_eq!(split.part(17), 8, "one split, however it is named");
        assert_eq!(split.set(20), 2);
        assert_eq!(split.part(17), 1);
        assert_eq!(Split::named("https://other.example/").part(17), 17);
    }
}
