//! The keys of a config's `settings` that ctxsync reads, and typos of them.
//!
//! `settings` is free-form by contract, so a key ctxsync does not read is stored and ignored. A
//! key one or two edits away from one it reads (`sync_intervall`) is almost always a typo whose
//! setting silently does nothing, so it is reported; keys far from every known one are not.

use crate::{DeletionGuard, RateLimitShare, Schedule, Settings};

/// The `settings` keys every config has; each source adds its own.
const COMMON_SETTINGS: &[&str] = &[
    Schedule::INTERVAL_KEY,
    Schedule::FULL_INTERVAL_KEY,
    DeletionGuard::PERCENT_KEY,
    DeletionGuard::FLOOR_KEY,
    RateLimitShare::KEY,
];

/// Edits (insertions, deletions, substitutions, swaps of neighbours) at most this many make a key
/// a likely typo of a known one: `sync_intervall`, `sync-interval`, `deletion_gaurd_min`.
const MAX_EDITS: usize = 2;

/// A `settings` key that ctxsync does not read but that is close to one it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingTypo {
    /// The key as the config has it.
    pub key: String,
    /// The known key it is closest to.
    pub suggestion: &'static str,
}

impl std::fmt::Display for SettingTypo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "settings.{} is not a setting ctxsync reads, so it has no effect; did you mean {}?",
            self.key, self.suggestion
        )
    }
}

/// The keys of `settings` that look like misspelt known keys: the common ones and
/// `source_settings`, those the sources read.
pub fn setting_typos(settings: &Settings, source_settings: &[&'static str]) -> Vec<SettingTypo> {
    let known: Vec<&'static str> = COMMON_SETTINGS.iter().chain(source_settings).copied().collect();
    settings
        .keys()
        .filter(|key| !known.contains(&key.as_str()))
        .filter_map(|key| {
            let lower = key.to_lowercase();
            known
                .iter()
                .map(|known| (strsim::damerau_levenshtein(&lower, known), *known))
                .filter(|(edits, _)| *edits <= MAX_EDITS)
                .min()
                .map(|(_, suggestion)| SettingTypo { key: key.clone(), suggestion })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn typos(settings: serde_json::Value) -> Vec<(String, &'static str)> {
        let mut typos: Vec<_> =
            setting_typos(settings.as_object().unwrap(), &["tenant_id", "okta_include_factors"])
                .into_iter()
                .map(|t| (t.key, t.suggestion))
                .collect();
        typos.sort();
        typos
    }

    #[test]
    fn keys_close_to_known_ones_are_typos() {
        assert_eq!(
            typos(json!({
                "sync_intervall": "5m",
                "Full_Sync_Interval": "1d",
                "deletion_gaurd_min": 3,
                "tenant-id": "x",
            })),
            [
                ("Full_Sync_Interval".to_owned(), "full_sync_interval"),
                ("deletion_gaurd_min".to_owned(), "deletion_guard_min"),
                ("sync_intervall".to_owned(), "sync_interval"),
                ("tenant-id".to_owned(), "tenant_id"),
            ]
        );
    }

    #[test]
    fn known_keys_and_free_form_keys_are_not_reported() {
        assert_eq!(
            typos(json!({
                "sync_interval": "5m",
                "full_sync_interval": "1d",
                "okta_include_factors": true,
                "owner": "secops",
                "team": "identity",
                "sync": true,
                "interval": "5m",
            })),
            []
        );
    }

    #[test]
    fn the_message_names_the_key_and_the_suggestion() {
        let typo = SettingTypo { key: "sync_intervall".into(), suggestion: "sync_interval" };
        assert_eq!(
            typo.to_string(),
            "settings.sync_intervall is not a setting ctxsync reads, so it has no effect; did you mean \
             sync_interval?"
        );
    }
}
