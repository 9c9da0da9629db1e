//! Messages for settings whose value does not parse, naming what the user wrote.
//!
//! clap names the flag (`invalid value 'abc' for '--sync-interval <SYNC_INTERVAL>'`) wherever the
//! value came from, but a value from `CTXSYNC_SYNC_INTERVAL` or from the settings file was never
//! typed as a flag: the message names the variable (`CTXSYNC_SYNC_INTERVAL=abc: …`) or the file's
//! key (`ctxsync.toml: sync_interval = "abc": …`) instead. A flag typed on the command line keeps
//! clap's message.

use std::error::Error as _;
use std::path::Path;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::config_file::FileSetting;

/// The settings file and the settings it supplied (those the environment did not override).
#[derive(Debug, Clone, Copy)]
pub struct FileSource<'a> {
    pub path: &'a Path,
    pub applied: &'a [FileSetting],
}

/// The message for `error` when the bad value came from the environment or the settings file;
/// `None` when clap's own message is the right one (a flag on the command line, or an error that
/// is not about a value). `command` is the whole command line's definition, `args` the command
/// line.
pub fn describe(
    error: &clap::Error,
    command: &clap::Command,
    args: &[String],
    file: Option<FileSource<'_>>,
) -> Option<String> {
    if error.kind() != ErrorKind::ValueValidation {
        return None;
    }
    // `--sync-interval <SYNC_INTERVAL>`
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else { return None };
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    let flag = format!("--{long}");
    if args.iter().any(|a| *a == flag || a.strip_prefix(&flag).is_some_and(|rest| rest.starts_with('='))) {
        return None;
    }
    let variable = variable_of(command, long)?;
    let Some(ContextValue::String(value)) = error.get(ContextKind::InvalidValue) else { return None };
    let reason = error.source().map_or_else(|| "not a valid value".to_owned(), |e| e.to_string());
    if let Some(file) = file
        && let Some(setting) = file.applied.iter().find(|s| s.variable == variable)
    {
        return Some(format!("{}: {} = {}: {reason}", file.path.display(), setting.key, setting.written));
    }
    Some(format!("{variable}={value}: {reason}"))
}

/// The environment variable of the flag `--{long}`, in `command` or any of its subcommands.
fn variable_of(command: &clap::Command, long: &str) -> Option<String> {
    command
        .get_arguments()
        .filter(|a| a.get_long() == Some(long))
        .find_map(|a| a.get_env().and_then(|v| v.to_str()).map(str::to_owned))
        .or_else(|| command.get_subcommands().find_map(|sub| variable_of(sub, long)))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::Cli;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    /// Parses `line` as if `CTXSYNC_SYNC_INTERVAL=abc` were set: the flag's value stands in for the
    /// variable's, which unit tests cannot set safely (other tests read the environment).
    fn bad_interval(line: &[&str]) -> clap::Error {
        Cli::try_parse_from(line).expect_err("abc is not a duration")
    }

    #[test]
    fn a_value_from_the_environment_names_the_variable() {
        let error = bad_interval(&["ctxsync", "serve", "--sync-interval", "abc"]);
        // What the user typed had no flag: the value came from CTXSYNC_SYNC_INTERVAL.
        let message = describe(&error, &Cli::command(), &args(&["ctxsync", "serve"]), None).unwrap();
        assert_eq!(message, "CTXSYNC_SYNC_INTERVAL=abc: expected number at 0");
    }

    #[test]
    fn a_value_from_the_file_names_the_file_and_its_key() {
        let error = bad_interval(&["ctxsync", "serve", "--sync-interval", "abc"]);
        let path = PathBuf::from("/etc/ctxsync.toml");
        let applied = [FileSetting {
            key: "sync_interval".into(),
            variable: "CTXSYNC_SYNC_INTERVAL".into(),
            value: "abc".into(),
            written: "\"abc\"".into(),
        }];
        let file = FileSource { path: &path, applied: &applied };
        let message = describe(&error, &Cli::command(), &args(&["ctxsync", "serve"]), Some(file)).unwrap();
        assert_eq!(message, "/etc/ctxsync.toml: sync_interval = \"abc\": expected number at 0");
    }

    #[test]
    fn a_typed_flag_keeps_clap_s_message() {
        for line in [
            &["ctxsync", "serve", "--sync-interval", "abc"][..],
            &["ctxsync", "serve", "--sync-interval=abc"],
        ] {
            let error = Cli::try_parse_from(line).unwrap_err();
            assert_eq!(describe(&error, &Cli::command(), &args(line), None), None);
            assert!(error.to_string().contains("'--sync-interval <SYNC_INTERVAL>'"), "{error}");
        }
        // A flag without a variable, and errors that are not about a value, are clap's too.
        let error = Cli::try_parse_from(["ctxsync", "events", "--poll", "abc"]).unwrap_err();
        assert_eq!(describe(&error, &Cli::command(), &args(&["ctxsync", "events"]), None), None);
        let error = Cli::try_parse_from(["ctxsync", "serve", "--no-such-flag"]).unwrap_err();
        assert_eq!(
            describe(&error, &Cli::command(), &args(&["ctxsync", "serve", "--no-such-flag"]), None),
            None
        );
    }
}
