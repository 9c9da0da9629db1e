//! The optional settings file: a TOML table whose keys are the environment variables' names
//! without the `CTXSYNC_` prefix, lowercase (`listen`, `data_dir`, `okta_base_url`, …).
//!
//! Its values become defaults for the variables, so the precedence is flag, then environment,
//! then file, then the built-in default.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::settings::KNOWN_VARIABLES;

/// The `--config-file` path from the command line or `CTXSYNC_CONFIG`, found before clap runs since
/// the file's values must be in place when clap reads the environment.
pub fn locate(args: &[String]) -> Option<PathBuf> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--config-file" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config-file=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("CTXSYNC_CONFIG").map(PathBuf::from)
}

/// Reads the file and returns the `(variable, value)` pairs it sets, refusing unknown keys.
pub fn read(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut pairs = Vec::new();
    for (key, value) in table {
        let variable = format!("CTXSYNC_{}", key.to_ascii_uppercase());
        if !KNOWN_VARIABLES.contains(&variable.as_str()) || variable == "CTXSYNC_CONFIG" {
            bail!("{}: unknown setting {key:?}", path.display());
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => bail!("{}: {key} must be a string, an integer or a boolean", path.display()),
        };
        pairs.push((variable, value));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_flag_in_both_forms() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            locate(&args(&["ctxsync", "--config-file", "a.toml", "serve"])),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            locate(&args(&["ctxsync", "serve", "--config-file=b.toml"])),
            Some(PathBuf::from("b.toml"))
        );
    }

    #[test]
    fn reads_known_keys_and_refuses_typos() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "listen = \"0.0.0.0:9000\"\nrate_limit = 10\nallow_private_sources = true\n")
            .unwrap();
        let mut pairs = read(&good).unwrap();
        pairs.sort();
        assert_eq!(
            pairs,
            vec![
                ("CTXSYNC_ALLOW_PRIVATE_SOURCES".to_string(), "true".to_string()),
                ("CTXSYNC_LISTEN".to_string(), "0.0.0.0:9000".to_string()),
                ("CTXSYNC_RATE_LIMIT".to_string(), "10".to_string()),
            ]
        );
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "lisen = \"x\"\n").unwrap();
        assert!(read(&bad).unwrap_err().to_string().contains("unknown setting \"lisen\""));
    }
}
