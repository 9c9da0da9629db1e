//! The data folder of `ctxsync demo` (`./ctxsync-demo` by default), and the guard that keeps its
//! fake credentials away from real hosts.
//!
//! The demo marks its folder with `demo.json` (mode 0600): the fakes' base URLs as the
//! `CTXSYNC_*` variables it prints, the credentials the fakes accept, and the demo's key pair.
//! A second run on the folder starts the fakes with the same credentials (on the same ports when
//! free) and keeps the keys, so the configs stored there, which hold those credentials, and the
//! printed `export` lines keep working.
//!
//! Those configs also name real hosts (`acme.okta.com`, `contoso.onmicrosoft.com`): `ctxsync
//! sync` or `serve` on the folder without the fakes' base URLs would send the fakes' tokens
//! there. So both refuse a demo folder unless every source goes to the fakes it records, and say
//! which lines to paste. They refuse rather than read the URLs from the marker: where a command
//! sends requests then always comes from its own settings, visible to whoever runs it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ctxsync_fakes::{Credentials, Fakes, Ports};
use ctxsync_sources::Endpoints;
use serde::{Deserialize, Serialize};
use url::Url;

/// The marker's file name in the folder.
pub const MARKER: &str = "demo.json";

/// What `demo.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoFolder {
    /// `CTXSYNC_OKTA_BASE_URL` and the other source variables → the fake's URL.
    pub endpoints: BTreeMap<String, String>,
    pub credentials: Credentials,
    pub api_key: String,
    pub app_key: String,
}

impl DemoFolder {
    /// The marker in `dir`, if `dir` is a demo folder.
    pub fn read(dir: &Path) -> anyhow::Result<Option<DemoFolder>> {
        let path = dir.join(MARKER);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("{} is not a marker `ctxsync demo` wrote", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("could not read {}", path.display())),
        }
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(MARKER);
        let json = serde_json::to_vec_pretty(self).expect("the marker serializes");
        crate::private::write(&path, &json).with_context(|| format!("could not write {}", path.display()))
    }

    /// The variables that send every source to `fakes`.
    pub fn endpoints_of(fakes: &Fakes) -> BTreeMap<String, String> {
        fakes.base_urls().into_iter().map(|(name, url)| (name.to_owned(), url)).collect()
    }

    /// The ports the fakes had, to ask for them again.
    pub fn ports(&self) -> Ports {
        Ports::of(&self.endpoints)
    }

    /// `export NAME=value` lines for a shell: the data folder, then every source's fake.
    pub fn exports(&self, dir: &Path) -> Vec<String> {
        let folder = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        std::iter::once(("CTXSYNC_DATA_DIR".to_string(), folder.display().to_string()))
            .chain(self.endpoints.iter().map(|(k, v)| (k.clone(), v.clone())))
            .map(|(name, value)| format!("export {name}={}", shell_quoted(&value)))
            .collect()
    }
}

/// Refuses to go on when `folder` (the one holding the SQLite database) is a demo folder and
/// `endpoints` does not send every source to the fakes its marker records. For `sync` and
/// `serve`, the commands that contact sources.
pub fn require_fakes(folder: Option<PathBuf>, endpoints: &Endpoints) -> anyhow::Result<()> {
    let Some(folder) = folder else { return Ok(()) };
    let Some(demo) = DemoFolder::read(&folder)? else { return Ok(()) };
    let wrong: Vec<&str> = ctxsync_sources::base_urls()
        .filter(|base| {
            let fake = demo.endpoints.get(base.env).and_then(|u| Url::parse(u).ok());
            fake.is_none() || endpoints.get(base) != fake.as_ref()
        })
        .map(|base| base.env)
        .collect();
    if wrong.is_empty() {
        return Ok(());
    }
    bail!(
        "{} is the data folder of `ctxsync demo`: its configs hold the demo's fake credentials, which \
         must only go to its fake sources, and {} {} not point at them. Paste the export lines the \
         demo printed first; for the fakes it started last they are:\n{}",
        folder.display(),
        wrong.join(", "),
        if wrong.len() == 1 { "does" } else { "do" },
        demo.exports(&folder).join("\n")
    )
}

/// `value` as one shell word: bare when it is plainly safe, single-quoted otherwise.
fn shell_quoted(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-:+=@%,".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_a_shell_would_split_them() {
        assert_eq!(shell_quoted("http://127.0.0.1:4000/token"), "http://127.0.0.1:4000/token");
        assert_eq!(shell_quoted("/tmp/my demo"), "'/tmp/my demo'");
        assert_eq!(shell_quoted("it's"), r"'it'\''s'");
    }

    /// A host without a fake would send the demo's requests to the real source, and one whose
    /// source is gone would be refused as an unknown variable: every host a source talks to has
    /// a fake, and every fake's variable a source.
    #[tokio::test]
    async fn every_source_host_has_a_fake() {
        let fakes = Fakes::start().await.unwrap();
        let faked: std::collections::BTreeSet<&str> =
            fakes.base_urls().iter().map(|(name, _)| *name).collect();
        let hosts: std::collections::BTreeSet<&str> = ctxsync_sources::base_urls().map(|b| b.env).collect();
        assert_eq!(faked, hosts);
    }
}
