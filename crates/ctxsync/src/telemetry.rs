use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The log levels, for messages.
const LEVELS: &str = "trace, debug, info, warn, error or off";

/// Checks a log filter (`CTXSYNC_LOG`, tracing's EnvFilter syntax) as the setting is parsed.
///
/// EnvFilter reads a bare word that is no level as a target to log everything of, so a misspelt
/// level (`infoo`) would silently hide every line ctxsync writes: here a bare word must be a level,
/// and a target takes one explicitly (`ctxsync=debug`).
pub fn parse_filter(raw: &str) -> Result<String, String> {
    for directive in raw.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if !directive.contains(['=', '[']) && directive.parse::<LevelFilter>().is_err() {
            return Err(format!(
                "{directive:?} is not a log level; use {LEVELS}, or target=level such as ctxsync=debug"
            ));
        }
    }
    EnvFilter::try_new(raw)
        .map(|_| raw.to_owned())
        .map_err(|e| format!("not a log filter ({e}); use {LEVELS}, or target=level such as ctxsync=debug"))
}

/// Logs to stderr with the given filter, so commands printing JSON on stdout (`keys create
/// --json`) stay machine-readable; colours only on a terminal, so log files stay greppable.
pub fn init(filter: &str) -> anyhow::Result<()> {
    init_with(filter, std::io::stderr)
}

/// [`init`] with another writer of stderr (one that draws around a progress bar).
pub fn init_with<W>(filter: &str, writer: W) -> anyhow::Result<()>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("CTXSYNC_LOG {filter:?} is not a valid filter: {e}"))?;
    // A second initialisation (several commands in one test process) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    Ok(())
}

/// Warns about `CTXSYNC_*` variables that no setting reads: usually a typo that would otherwise
/// be silently ignored.
pub fn warn_unknown_variables() {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CTXSYNC_") && !crate::settings::KNOWN_VARIABLES.contains(&name) {
            tracing::warn!(variable = name, "unknown CTXSYNC_ variable ignored; check its spelling");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives_are_filters() {
        for filter in
            ["info", "WARN", "ctxsync=debug,warn", "ctxsync_api=trace", "off", "info,[request]=debug"]
        {
            assert_eq!(parse_filter(filter).as_deref(), Ok(filter), "{filter}");
        }
    }

    #[test]
    fn a_misspelt_level_is_refused_with_the_levels() {
        let error = parse_filter("infoo").unwrap_err();
        assert_eq!(
            error,
            "\"infoo\" is not a log level; use trace, debug, info, warn, error or off, or target=level \
             such as ctxsync=debug"
        );
        assert!(parse_filter("ctxsync=debug,warnn").unwrap_err().contains("\"warnn\" is not a log level"));
        assert!(parse_filter("ctxsync=debugg").unwrap_err().contains("use trace, debug"));
    }
}
