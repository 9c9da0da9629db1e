use std::fmt;

/// The kind of source a configuration syncs from; the wire names of the Datadog contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntegrationType {
    GoogleWorkspace,
    Okta,
    EntraId,
    CrowdStrike,
    SentinelOne,
}

impl IntegrationType {
    /// In the contract's order, which is also the order error messages list them in.
    pub const ALL: [IntegrationType; 5] = [
        IntegrationType::GoogleWorkspace,
        IntegrationType::Okta,
        IntegrationType::EntraId,
        IntegrationType::CrowdStrike,
        IntegrationType::SentinelOne,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationType::GoogleWorkspace => "GOOGLE_WORKSPACE",
            IntegrationType::Okta => "OKTA",
            IntegrationType::EntraId => "ENTRA_ID",
            IntegrationType::CrowdStrike => "CROWDSTRIKE",
            IntegrationType::SentinelOne => "SENTINELONE",
        }
    }

    /// The wire name (`OKTA`); exact match, as the contract's enum is case-sensitive.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The lowercase form used in paths such as `/{integration_type}/activate` (`entra_id`).
    pub fn parse_path(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    /// `GOOGLE_WORKSPACE, OKTA, …` for error messages.
    pub fn expected_list() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    /// The contract's fragment of schema names (`SecurityMonitoringEntraIdCreateAttributes`).
    pub fn schema_infix(self) -> &'static str {
        match self {
            IntegrationType::GoogleWorkspace => "GoogleWorkspace",
            IntegrationType::Okta => "Okta",
            IntegrationType::EntraId => "EntraId",
            IntegrationType::CrowdStrike => "CrowdStrike",
            IntegrationType::SentinelOne => "SentinelOne",
        }
    }

    /// A human name for messages (`Google Workspace`).
    pub fn display_name(self) -> &'static str {
        match self {
            IntegrationType::GoogleWorkspace => "Google Workspace",
            IntegrationType::Okta => "Okta",
            IntegrationType::EntraId => "Microsoft Entra ID",
            IntegrationType::CrowdStrike => "CrowdStrike Falcon",
            IntegrationType::SentinelOne => "SentinelOne",
        }
    }
}

impl fmt::Display for IntegrationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a configuration's credentials, as the contract names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigState {
    Valid,
    Invalid,
    /// For configs whose first validation or sync has not finished yet.
    Initializing,
}

impl ConfigState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigState::Valid => "valid",
            ConfigState::Invalid => "invalid",
            ConfigState::Initializing => "initializing",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [ConfigState::Valid, ConfigState::Invalid, ConfigState::Initializing]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

impl fmt::Display for ConfigState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_and_are_case_sensitive() {
        for t in IntegrationType::ALL {
            assert_eq!(IntegrationType::parse(t.as_str()), Some(t));
        }
        assert_eq!(IntegrationType::parse("okta"), None);
        assert_eq!(IntegrationType::parse_path("entra_id"), Some(IntegrationType::EntraId));
        assert_eq!(
            IntegrationType::expected_list(),
            "GOOGLE_WORKSPACE, OKTA, ENTRA_ID, CROWDSTRIKE, SENTINELONE"
        );
    }

    #[test]
    fn state_round_trips() {
        for s in ["valid", "invalid", "initializing"] {
            assert_eq!(ConfigState::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(ConfigState::parse("VALID"), None);
    }
}
