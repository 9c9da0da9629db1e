use std::fmt;

/// The `secrets` object of a configuration exactly as the caller sent it.
///
/// Kept whole (a service account's extra keys are preserved, as the contract promises) and
/// wrapped so that `Debug` never prints it and nothing serializes it by accident (it has no
/// `Serialize`). Only the store (to encrypt it) and the connectors (to authenticate) look inside.
pub struct SecretValue(serde_json::Value);

impl SecretValue {
    pub fn new(value: serde_json::Value) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &serde_json::Value {
        &self.0
    }

    /// The JSON bytes to encrypt at rest.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self.expose()).expect("a JSON value always serializes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes).map(Self::new)
    }
}

impl Clone for SecretValue {
    fn clone(&self) -> Self {
        Self::new(self.expose().clone())
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = SecretValue::new(serde_json::json!({"api_token": "00supersecret"}));
        let printed = format!("{s:?} {:#?}", s);
        assert!(!printed.contains("00supersecret"), "{printed}");
    }

    #[test]
    fn bytes_round_trip() {
        let s = SecretValue::new(serde_json::json!({"a": [1, "b"]}));
        assert_eq!(SecretValue::from_bytes(&s.to_bytes()).unwrap(), s);
    }
}
