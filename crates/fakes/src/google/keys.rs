//! Service accounts and their RSA keys, as Google Cloud issues them: a key file JSON with a
//! PKCS#8 PEM private key, and the public half kept by the token endpoint.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::common::{DIGITS, HEX, secret};

/// The URL Google writes into every key file's `token_uri`.
pub(crate) const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// A service account's identity and one of its keys.
pub(crate) struct ServiceAccount {
    pub client_email: String,
    pub client_id: String,
    pub project_id: String,
    pub private_key_id: String,
    /// RFC 8017 `RSAPublicKey` DER, what the token endpoint verifies assertions against.
    pub public_key: Vec<u8>,
    private_key_pem: String,
}

impl ServiceAccount {
    /// A new account `{name}@{project}.iam.gserviceaccount.com` with a fresh 2048-bit key.
    pub(crate) fn generate(name: &str, project_id: &str) -> std::io::Result<Self> {
        let key = RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| std::io::Error::other("RSA key generation failed"))?;
        let pkcs8 = key.as_der().map_err(|_| std::io::Error::other("RSA key encoding failed"))?;
        Ok(Self {
            client_email: format!("{name}@{project_id}.iam.gserviceaccount.com"),
            client_id: format!("1{}", secret(DIGITS, 20)),
            project_id: project_id.to_string(),
            private_key_id: secret(HEX, 40),
            public_key: key.public_key().as_ref().to_vec(),
            private_key_pem: pem("PRIVATE KEY", pkcs8.as_ref()),
        })
    }

    /// The account of a key file [`ServiceAccount::key_file`] wrote.
    pub(crate) fn from_key_file(file: &Value) -> std::io::Result<Self> {
        let invalid =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("key file: {what}"));
        let field = |name: &str| file[name].as_str().map(str::to_string).ok_or_else(|| invalid(name));
        let private_key_pem = field("private_key")?;
        let body: String = private_key_pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let pkcs8 = STANDARD.decode(body).map_err(|_| invalid("private_key is not PEM"))?;
        let key = RsaKeyPair::from_pkcs8(&pkcs8).map_err(|_| invalid("private_key is not an RSA key"))?;
        Ok(Self {
            client_email: field("client_email")?,
            client_id: field("client_id")?,
            project_id: field("project_id")?,
            private_key_id: field("private_key_id")?,
            public_key: key.public_key().as_ref().to_vec(),
            private_key_pem,
        })
    }

    /// This key presented under another account's identity: a key that account never registered.
    pub(crate) fn presented_as(self, client_email: String, client_id: String) -> Self {
        Self { client_email, client_id, ..self }
    }

    /// The key file as downloaded from the Cloud console.
    pub(crate) fn key_file(&self) -> Value {
        let email = url::form_urlencoded::byte_serialize(self.client_email.as_bytes()).collect::<String>();
        json!({
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "private_key": self.private_key_pem,
            "client_email": self.client_email,
            "client_id": self.client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": GOOGLE_TOKEN_URL,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!("https://www.googleapis.com/robot/v1/metadata/x509/{email}"),
            "universe_domain": "googleapis.com",
        })
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
