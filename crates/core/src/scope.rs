use std::fmt;

/// A permission an application key may be restricted to; names as in the contract's `AuthZ` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Reads and both validate calls.
    IntegrationsRead,
    /// Create, update, delete, activate and deactivate.
    ManageIntegrations,
    /// Read the synced entities (ctxsync's own entity routes).
    SiemEntitiesRead,
    /// List, create, revoke and rotate the org's keys (ctxsync's own key routes). Only a key
    /// that lists it has it: a key without scopes does not, so that no existing key gains the
    /// power to mint others.
    ManageKeys,
}

impl Scope {
    pub const ALL: [Scope; 4] =
        [Scope::IntegrationsRead, Scope::ManageIntegrations, Scope::SiemEntitiesRead, Scope::ManageKeys];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::IntegrationsRead => "integrations_read",
            Scope::ManageIntegrations => "manage_integrations",
            Scope::SiemEntitiesRead => "siem_entities_read",
            Scope::ManageKeys => "manage_keys",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an application key may do: everything its org may (no scopes set, as in Datadog) but
/// managing keys, or only the listed scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scopes {
    All,
    Only(Vec<Scope>),
}

impl Scopes {
    pub fn allows(&self, scope: Scope) -> bool {
        match self {
            Scopes::All => scope != Scope::ManageKeys,
            Scopes::Only(list) => list.contains(&scope),
        }
    }

    /// Parse a comma-separated list (`integrations_read,manage_integrations`); empty means all.
    pub fn parse_list(s: &str) -> Result<Self, String> {
        let mut list = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let scope = Scope::parse(name).ok_or_else(|| {
                format!(
                    "unknown scope {name:?}; known scopes are {}",
                    Scope::ALL.map(Scope::as_str).join(", ")
                )
            })?;
            if !list.contains(&scope) {
                list.push(scope);
            }
        }
        Ok(if list.is_empty() { Scopes::All } else { Scopes::Only(list) })
    }

    /// The stored form: `None` for all, the names otherwise.
    pub fn names(&self) -> Option<Vec<&'static str>> {
        match self {
            Scopes::All => None,
            Scopes::Only(list) => Some(list.iter().map(|s| s.as_str()).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_scopes_means_every_permission() {
        let all = Scopes::parse_list("").unwrap();
        assert!(all.allows(Scope::IntegrationsRead) && all.allows(Scope::ManageIntegrations));
    }

    #[test]
    fn managing_keys_must_be_listed() {
        assert!(!Scopes::All.allows(Scope::ManageKeys));
        assert!(Scopes::parse_list("manage_keys").unwrap().allows(Scope::ManageKeys));
    }

    #[test]
    fn listed_scopes_restrict() {
        let read = Scopes::parse_list("integrations_read").unwrap();
        assert!(read.allows(Scope::IntegrationsRead));
        assert!(!read.allows(Scope::ManageIntegrations));
    }

    #[test]
    fn unknown_scope_is_named() {
        let err = Scopes::parse_list("integrations_read,write_everything").unwrap_err();
        assert!(err.contains("write_everything") && err.contains("manage_integrations"), "{err}");
    }
}
