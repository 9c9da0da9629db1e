use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

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
