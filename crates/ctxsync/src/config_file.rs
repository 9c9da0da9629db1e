//! The optional settings file: a TOML table whose keys are the environment variables' names
//! without the `CTXSYNC_` prefix, lowercase (`listen`, `data_dir`, `okta_base_url`, …).
//!
//! Its values become defaults for the variables, so the precedence is flag, then environment,
//! then file, then the built-in default.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::settings::known_variable;

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

/// One key of the file, as the variable it sets.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSetting {
    /// The key as written (`sync_interval`).
    pub key: String,
    /// The variable it sets (`CTXSYNC_SYNC_INTERVAL`).
    pub variable: String,
    /// The variable's value.
    pub value: String,
    /// The value as the file writes it (`"1h"`, `12.5`), so errors quote what the user wrote.
    pub written: String,
}

/// Reads the file and returns the settings it sets, refusing unknown keys.
pub fn read(path: &Path) -> anyhow::Result<Vec<FileSetting>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut settings = Vec::new();
    for (key, value) in table {
        let variable = format!("CTXSYNC_{}", key.to_ascii_uppercase());
        if !known_variable(&variable) || variable == "CTXSYNC_CONFIG" {
            bail!("{}: unknown setting {key:?}", path.display());
        }
        let written = value.to_string();
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            // A decimal where the setting takes one (`deletion_guard_percent = 12.5`); elsewhere
            // the setting's own parser refuses it and names the key.
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => bail!("{}: {key} must be a string, a number or a boolean", path.display()),
        };
        settings.push(FileSetting { key, variable, value, written });
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use clap::CommandFactory;

    use super::*;
    use crate::Cli;

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
        std::fs::write(
            &good,
            "listen = \"0.0.0.0:9000\"\nrate_limit = 10\nallow_private_sources = true\n\
             deletion_guard_percent = 12.5\n",
        )
        .unwrap();
        let mut pairs: Vec<_> =
            read(&good).unwrap().into_iter().map(|s| (s.variable, s.value, s.written)).collect();
        pairs.sort();
        let triple =
            |v: &str, value: &str, written: &str| (v.to_owned(), value.to_owned(), written.to_owned());
        assert_eq!(
            pairs,
            vec![
                triple("CTXSYNC_ALLOW_PRIVATE_SOURCES", "true", "true"),
                triple("CTXSYNC_DELETION_GUARD_PERCENT", "12.5", "12.5"),
                triple("CTXSYNC_LISTEN", "0.0.0.0:9000", "\"0.0.0.0:9000\""),
                triple("CTXSYNC_RATE_LIMIT", "10", "10"),
            ]
        );
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "lisen = \"x\"\n").unwrap();
        assert!(read(&bad).unwrap_err().to_string().contains("unknown setting \"lisen\""));
    }

    /// The example file at the repository's root names every setting, at `serve`'s default where
    /// it has one: a setting added without an entry, or an entry for a setting that is gone or
    /// whose default changed, fails here instead of leaving the example wrong.
    #[test]
    fn the_example_file_names_every_setting_at_its_default() {
        let example = include_str!("../../../ctxsync.example.toml");
        // Its settings are commented out as `#key = value`, its explanations as `# text`.
        let uncommented: String = example
            .lines()
            .map(|line| match line.strip_prefix('#') {
                Some(setting) if setting.starts_with(|c: char| c.is_ascii_lowercase()) => setting,
                _ => line,
            })
            .flat_map(|line| [line, "\n"])
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctxsync.toml");
        std::fs::write(&path, uncommented).unwrap();
        // A key that is no setting is refused here, as ctxsync would refuse it.
        let settings = read(&path).unwrap_or_else(|e| panic!("ctxsync.example.toml: {e:#}"));

        let missing: Vec<&str> = crate::settings::known_variables()
            .filter(|v| *v != "CTXSYNC_CONFIG" && !settings.iter().any(|s| s.variable == *v))
            .collect();
        assert!(missing.is_empty(), "ctxsync.example.toml has no entry for {missing:?}");

        let cli = Cli::command();
        let serve = cli.find_subcommand("serve").expect("serve is a subcommand");
        for setting in &settings {
            let arg = serve.get_arguments().find(|a| a.get_env() == Some(OsStr::new(&setting.variable)));
            if let Some(default) = arg.and_then(|a| a.get_default_values().first()) {
                assert_eq!(
                    default.to_str(),
                    Some(setting.value.as_str()),
                    "ctxsync.example.toml: {} is not serve's default",
                    setting.key
                );
            }
        }
    }
}
