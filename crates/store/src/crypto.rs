//! Secrets at rest: AES-256-GCM under the current master key.
//!
//! Every write draws a fresh random 96-bit nonce, and the associated data binds a ciphertext to
//! its row (org id and config id), so a ciphertext copied to another row, or another org, fails
//! to decrypt instead of handing one tenant's credentials to another.
//!
//! The stored nonce is prefixed with the id of the key that sealed it ([`MasterKey::id`]), so
//! that during a master-key rotation a process that knows the current and the previous key opens
//! each row with the right one, and the rotation knows which rows are left to re-encrypt. Rows
//! written before key ids existed hold the bare nonce, and are tried with every known key.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, Payload};
use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};
use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ctxsync_core::{ConfigId, OrgId, SecretValue};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

use crate::StoreError;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
/// Bytes of a key's id before the nonce: enough to tell a handful of keys apart, and no help in
/// guessing a key (it is a hash of it).
const KEY_ID_LEN: usize = 8;
const KEY_FILE: &str = "master.key";

/// Padding optional on input, so keys pasted with or without `=` both work.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Associated data of the store's key check, which lets start-up catch a wrong master key before
/// any config is read.
const KEY_CHECK_AAD: &[u8] = b"ctxsync master key check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"ctxsync";

/// The 32-byte AES-256-GCM key that encrypts config secrets.
#[derive(Clone)]
pub struct MasterKey([u8; KEY_LEN]);

impl MasterKey {
    /// Decodes a base64 key (`CTXSYNC_MASTER_KEY`); it must be exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<MasterKey, StoreError> {
        decode(s).map_err(|reason| StoreError::InvalidMasterKey { reason })
    }

    /// Reads a base64 key file (`CTXSYNC_MASTER_KEY_FILE`).
    pub fn from_file(path: &Path) -> Result<MasterKey, StoreError> {
        let text = fs::read_to_string(path).map_err(|source| StoreError::MasterKeyIo {
            action: "read",
            path: path.to_owned(),
            source,
        })?;
        decode(&text).map_err(|reason| StoreError::InvalidMasterKeyFile { path: path.to_owned(), reason })
    }

    /// Reads `<data_dir>/master.key`, or generates it when absent so that a first start needs no
    /// setup. The file is created with mode 0600: it unlocks every stored credential.
    pub fn load_or_generate(data_dir: &Path) -> Result<MasterKey, StoreError> {
        let path = data_dir.join(KEY_FILE);
        if path.exists() {
            return MasterKey::from_file(&path);
        }
        create_private_dir(data_dir).map_err(|source| StoreError::MasterKeyIo {
            action: "create the directory of",
            path: path.clone(),
            source,
        })?;
        let mut key = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut key);
        match create_private_file(&path) {
            Ok(mut file) => {
                let written = file
                    .write_all(format!("{}\n", BASE64.encode(key)).as_bytes())
                    .and_then(|()| file.sync_all());
                written.map_err(|source| StoreError::MasterKeyIo { action: "write", path, source })?;
                Ok(MasterKey(key))
            }
            // Another process generated it between our check and our create: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => MasterKey::from_file(&path),
            Err(source) => Err(StoreError::MasterKeyIo { action: "create", path, source }),
        }
    }
}

impl MasterKey {
    /// A short, stable name of this key: the start of a SHA-256 of it. Stored beside what the key
    /// sealed, and shown in the rotation's messages.
    pub fn id(&self) -> [u8; KEY_ID_LEN] {
        let hash = Sha256::new().chain_update(b"ctxsync master key id").chain_update(self.0).finalize();
        hash[..KEY_ID_LEN].try_into().expect("a SHA-256 is longer than a key id")
    }
}

/// The master key new secrets are sealed with, and the previous ones still read during a
/// rotation (`CTXSYNC_PREVIOUS_MASTER_KEY_FILE`).
#[derive(Clone, Debug)]
pub struct MasterKeys {
    pub current: MasterKey,
    pub previous: Vec<MasterKey>,
}

impl From<MasterKey> for MasterKeys {
    fn from(current: MasterKey) -> Self {
        MasterKeys { current, previous: Vec::new() }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Reasons never quote the input: a near-miss key is still mostly the key.
fn decode(s: &str) -> Result<MasterKey, String> {
    let bytes = BASE64.decode(s.trim()).map_err(|_| "it is not base64".to_owned())?;
    let key: [u8; KEY_LEN] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("it decodes to {} bytes instead of {KEY_LEN}", b.len()))?;
    Ok(MasterKey(key))
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new().write(true).create_new(true).open(path)
}

/// A ciphertext and what it was sealed with, as stored side by side in a row: `nonce` is the
/// sealing key's id followed by the nonce.
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Encrypts with the current master key and decrypts with any known one. Every backend uses this
/// one, so the on-disk format is the same whatever the database.
#[derive(Clone)]
pub struct Cipher {
    current: KeyedAead,
    previous: Vec<KeyedAead>,
}

#[derive(Clone)]
struct KeyedAead {
    id: [u8; KEY_ID_LEN],
    aead: Aes256Gcm,
}

impl KeyedAead {
    fn new(key: &MasterKey) -> KeyedAead {
        KeyedAead { id: key.id(), aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key.0)) }
    }

    /// `None` for a wrong key, wrong associated data, a tampered ciphertext or a malformed nonce.
    fn open(&self, aad: &[u8], nonce: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        if nonce.len() != NONCE_LEN {
            return None;
        }
        self.aead.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad }).ok()
    }
}

impl Cipher {
    pub fn new(keys: &MasterKeys) -> Cipher {
        Cipher {
            current: KeyedAead::new(&keys.current),
            previous: keys.previous.iter().map(KeyedAead::new).collect(),
        }
    }

    /// Whether a stored `nonce` column says the current key sealed its row, so a rotation has
    /// nothing left to do there.
    pub fn sealed_with_current(&self, nonce: &[u8]) -> bool {
        nonce.len() == KEY_ID_LEN + NONCE_LEN && nonce[..KEY_ID_LEN] == self.current.id
    }

    fn known(&self) -> impl Iterator<Item = &KeyedAead> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// Encrypts a config's secrets, bound to that config's row.
    pub fn seal_secrets(&self, org: OrgId, id: ConfigId, secrets: &SecretValue) -> Sealed {
        self.seal(&config_aad(org, id), &secrets.to_bytes())
    }

    /// Decrypts what [`Cipher::seal_secrets`] produced for the same org and config.
    pub fn open_secrets(
        &self,
        org: OrgId,
        id: ConfigId,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<SecretValue, StoreError> {
        let plaintext = self
            .open(&config_aad(org, id), nonce, ciphertext)
            .ok_or(StoreError::SecretsUndecryptable { config: id })?;
        SecretValue::from_bytes(&plaintext)
            .map_err(|_| StoreError::Corrupt(format!("the secrets of config {id} are not JSON")))
    }

    /// A value stored once per database, sealed with the current key; [`Cipher::verify_key_check`]
    /// proves a known key matches it. A rotation seals it anew once every row is re-encrypted, so
    /// that the old key alone is refused from then on.
    pub fn seal_key_check(&self) -> Vec<u8> {
        let Sealed { mut nonce, ciphertext } = self.seal(KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT);
        nonce.extend(ciphertext);
        nonce
    }

    /// Whether the check was sealed with a known key; it was written with a key id or, by earlier
    /// versions, without one.
    pub fn verify_key_check(&self, stored: &[u8]) -> Result<(), StoreError> {
        let with_id = stored.split_at_checked(KEY_ID_LEN + NONCE_LEN).map(|(nonce, ct)| (nonce.to_vec(), ct));
        let bare = stored.split_at_checked(NONCE_LEN).map(|(nonce, ct)| (nonce.to_vec(), ct));
        let opened = [with_id, bare]
            .into_iter()
            .flatten()
            .find_map(|(nonce, ct)| self.open(KEY_CHECK_AAD, &nonce, ct));
        match opened {
            Some(p) if p == KEY_CHECK_PLAINTEXT => Ok(()),
            _ => Err(StoreError::MasterKeyMismatch),
        }
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Sealed {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .current
            .aead
            .encrypt(&nonce, Payload { msg: plaintext, aad })
            .expect("AES-GCM encrypts any input shorter than 64 GiB");
        Sealed { nonce: [&self.current.id[..], &nonce[..]].concat(), ciphertext }
    }

    /// Opens with the key the stored id names, or with every known key for a row written before
    /// ids; `None` when no known key opens it.
    fn open(&self, aad: &[u8], stored_nonce: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        if stored_nonce.len() == KEY_ID_LEN + NONCE_LEN {
            let (id, nonce) = stored_nonce.split_at(KEY_ID_LEN);
            return self.known().find(|k| k.id == id)?.open(aad, nonce, ciphertext);
        }
        self.known().find_map(|k| k.open(aad, stored_nonce, ciphertext))
    }
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher([redacted])")
    }
}

/// Fixed-length ids, so the concatenation is unambiguous.
fn config_aad(org: OrgId, id: ConfigId) -> [u8; 32] {
    let mut aad = [0u8; 32];
    aad[..16].copy_from_slice(org.0.as_bytes());
    aad[16..].copy_from_slice(id.0.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn generated_key_is_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let key = MasterKey::load_or_generate(&data_dir).unwrap();
        let path = data_dir.join("master.key");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(MasterKey::load_or_generate(&data_dir).unwrap().0, key.0);
        assert_eq!(MasterKey::from_file(&path).unwrap().0, key.0);
    }

    #[test]
    fn base64_key_must_be_32_bytes() {
        let good = BASE64.encode([7u8; 32]);
        assert_eq!(MasterKey::from_base64(&good).unwrap().0, [7u8; 32]);
        assert_eq!(MasterKey::from_base64(good.trim_end_matches('=')).unwrap().0, [7u8; 32]);

        let err = MasterKey::from_base64("not base64 at all!").unwrap_err().to_string();
        assert!(err.contains("not base64") && err.contains("openssl rand -base64 32"), "{err}");
        let err = MasterKey::from_base64(&BASE64.encode([7u8; 16])).unwrap_err().to_string();
        assert!(err.contains("16 bytes instead of 32"), "{err}");
    }

    #[test]
    fn bad_key_file_is_named_but_not_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        fs::write(&path, "c2hvcnQtc2VjcmV0").unwrap();
        let err = MasterKey::from_file(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()) && err.contains("instead of 32"), "{err}");
        assert!(!err.contains("c2hvcnQtc2VjcmV0"), "{err}");
        let err = MasterKey::from_file(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(err.contains("cannot read"), "{err}");
    }

    #[test]
    fn debug_is_redacted() {
        let key = MasterKey([42u8; 32]);
        assert_eq!(format!("{key:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Cipher::new(&MasterKeys::from(key))), "Cipher([redacted])");
    }

    #[test]
    fn secrets_are_bound_to_their_row() {
        let cipher = Cipher::new(&MasterKeys::from(MasterKey([1u8; 32])));
        let (org, id) = (OrgId::new(), ConfigId::new());
        let secrets = SecretValue::new(json!({"api_token": "tok"}));
        let a = cipher.seal_secrets(org, id, &secrets);
        let b = cipher.seal_secrets(org, id, &secrets);
        assert_ne!(a.nonce, b.nonce, "each write draws a fresh nonce");
        assert_eq!(cipher.open_secrets(org, id, &a.nonce, &a.ciphertext).unwrap(), secrets);
        for (o, i) in [(OrgId::new(), id), (org, ConfigId::new())] {
            let err = cipher.open_secrets(o, i, &a.nonce, &a.ciphertext).unwrap_err();
            assert!(matches!(err, StoreError::SecretsUndecryptable { .. }));
        }
        assert!(cipher.open_secrets(org, id, &a.nonce[..5], &a.ciphertext).is_err());
    }

    /// Any JSON value: what a config's `secrets` may hold.
    fn any_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "\\PC{0,40}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("\\PC{0,8}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn ids() -> impl Strategy<Value = (OrgId, ConfigId)> {
        any::<([u8; 16], [u8; 16])>()
            .prop_map(|(org, id)| (OrgId(uuid::Uuid::from_bytes(org)), ConfigId(uuid::Uuid::from_bytes(id))))
    }

    proptest! {
        /// Whatever the secrets, they come back as they went in.
        #[test]
        fn any_secrets_round_trip(key in any::<[u8; 32]>(), (org, id) in ids(), secrets in any_json()) {
            let cipher = Cipher::new(&MasterKeys::from(MasterKey(key)));
            let secrets = SecretValue::new(secrets);
            let sealed = cipher.seal_secrets(org, id, &secrets);
            prop_assert_eq!(cipher.open_secrets(org, id, &sealed.nonce, &sealed.ciphertext).unwrap(), secrets);
        }

        /// One flipped bit anywhere in the stored nonce or ciphertext is an error, never another
        /// plaintext and never a panic.
        #[test]
        fn any_flipped_bit_fails_to_decrypt(
            (org, id) in ids(),
            plaintext in "\\PC{0,64}",
            bit in any::<prop::sample::Index>(),
        ) {
            let cipher = Cipher::new(&MasterKeys::from(MasterKey([3u8; 32])));
            let sealed = cipher.seal_secrets(org, id, &SecretValue::new(plaintext.into()));
            let mut stored = [sealed.nonce, sealed.ciphertext].concat();
            let bit = bit.index(stored.len() * 8);
            stored[bit / 8] ^= 1 << (bit % 8);
            let (nonce, ciphertext) = stored.split_at(KEY_ID_LEN + NONCE_LEN);
            let opened = cipher.open_secrets(org, id, nonce, ciphertext);
            let refused = matches!(opened, Err(StoreError::SecretsUndecryptable { .. }));
            prop_assert!(refused, "opened: {:?}", opened.map(|_| "a plaintext"));
        }

        /// A ciphertext opened as another org's or another config's row does not decrypt.
        #[test]
        fn another_row_fails_to_decrypt(
            (org, id) in ids(),
            (other_org, other_id) in ids(),
            plaintext in "\\PC{0,64}",
        ) {
            prop_assume!(org != other_org && id != other_id);
            let cipher = Cipher::new(&MasterKeys::from(MasterKey([4u8; 32])));
            let sealed = cipher.seal_secrets(org, id, &SecretValue::new(plaintext.into()));
            for (o, i) in [(other_org, id), (org, other_id), (other_org, other_id)] {
                let opened = cipher.open_secrets(o, i, &sealed.nonce, &sealed.ciphertext);
                let refused = matches!(opened, Err(StoreError::SecretsUndecryptable { .. }));
            prop_assert!(refused, "opened: {:?}", opened.map(|_| "a plaintext"));
            }
        }

        /// Whatever is stored in the nonce and ciphertext columns, opening it is an error or the
        /// secrets, never a panic.
        #[test]
        fn arbitrary_columns_never_panic(
            nonce in prop::collection::vec(any::<u8>(), 0..20),
            ciphertext in prop::collection::vec(any::<u8>(), 0..80),
        ) {
            let cipher = Cipher::new(&MasterKeys::from(MasterKey([5u8; 32])));
            prop_assert!(cipher.open_secrets(OrgId(uuid::Uuid::nil()), ConfigId(uuid::Uuid::nil()), &nonce, &ciphertext).is_err());
        }
    }

    /// During a rotation: rows sealed with the previous key, or before key ids, open with it;
    /// new rows are sealed with the current key; a process with the previous key alone cannot
    /// open them.
    #[test]
    fn previous_keys_open_what_they_sealed_and_new_rows_take_the_current_one() {
        let (old, new) = (MasterKey([1u8; 32]), MasterKey([2u8; 32]));
        assert_ne!(old.id(), new.id());
        let before = Cipher::new(&MasterKeys::from(old.clone()));
        let during = Cipher::new(&MasterKeys { current: new.clone(), previous: vec![old.clone()] });
        let after = Cipher::new(&MasterKeys::from(new.clone()));
        let (org, id) = (OrgId::new(), ConfigId::new());
        let secrets = SecretValue::new(json!({"api_token": "tok"}));

        let sealed_before = before.seal_secrets(org, id, &secrets);
        assert!(!during.sealed_with_current(&sealed_before.nonce));
        assert_eq!(
            during.open_secrets(org, id, &sealed_before.nonce, &sealed_before.ciphertext).unwrap(),
            secrets
        );
        let legacy = &sealed_before.nonce[KEY_ID_LEN..];
        assert_eq!(during.open_secrets(org, id, legacy, &sealed_before.ciphertext).unwrap(), secrets);

        let sealed_during = during.seal_secrets(org, id, &secrets);
        assert!(during.sealed_with_current(&sealed_during.nonce));
        assert_eq!(
            after.open_secrets(org, id, &sealed_during.nonce, &sealed_during.ciphertext).unwrap(),
            secrets
        );
        assert!(before.open_secrets(org, id, &sealed_during.nonce, &sealed_during.ciphertext).is_err());
        assert!(after.open_secrets(org, id, &sealed_before.nonce, &sealed_before.ciphertext).is_err());

        assert!(during.verify_key_check(&before.seal_key_check()).is_ok());
        assert!(matches!(
            before.verify_key_check(&after.seal_key_check()),
            Err(StoreError::MasterKeyMismatch)
        ));
        let legacy_check = &before.seal_key_check()[KEY_ID_LEN..];
        assert!(during.verify_key_check(legacy_check).is_ok());
    }

    #[test]
    fn key_check_detects_another_key() {
        let check = Cipher::new(&MasterKeys::from(MasterKey([1u8; 32]))).seal_key_check();
        assert!(Cipher::new(&MasterKeys::from(MasterKey([1u8; 32]))).verify_key_check(&check).is_ok());
        let other = Cipher::new(&MasterKeys::from(MasterKey([2u8; 32])));
        assert!(matches!(other.verify_key_check(&check), Err(StoreError::MasterKeyMismatch)));
        assert!(matches!(other.verify_key_check(&[]), Err(StoreError::MasterKeyMismatch)));
    }
}
