use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::{self, FormatFields};

use crate::settings::LogFormat;

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
pub fn init(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    init_with(filter, format, std::io::stderr)
}

/// [`init`] with another writer of stderr (one that draws around a progress bar).
pub fn init_with<W>(filter: &str, format: LogFormat, writer: W) -> anyhow::Result<()>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("CTXSYNC_LOG {filter:?} is not a valid filter: {e}"))?;
    // A second initialisation (several commands in one test process) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber(
        filter,
        format,
        writer,
        std::io::stderr().is_terminal(),
    ));
    Ok(())
}

/// The subscriber [`init_with`] installs. JSON lines carry `timestamp`, `level`, `target`, the
/// event's fields (`message` among them) at the top level, and the request's or run's span; in
/// text, every value has its control characters escaped, so no caller-chosen string (a JSON key,
/// a header) can start a line of its own.
fn subscriber<W>(
    filter: EnvFilter,
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Json => Box::new(
            builder.json().flatten_event(true).with_current_span(true).with_span_list(false).finish(),
        ),
        LogFormat::Text => Box::new(builder.with_ansi(ansi).fmt_fields(escaped_fields()).finish()),
    }
}

/// Text fields as `name=value`, the message bare, each value with control characters escaped.
fn escaped_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    format::debug_fn(|writer, field, value| {
        let raw = format!("{value:?}");
        let value = escape_controls(&raw);
        match field.name() {
            "message" => write!(writer, "{value}"),
            name => write!(writer, "{name}={value}"),
        }
    })
    .delimited(" ")
}

/// `\n`, `\r`, `\t` and `\u{…}` for every control character, the rest as it is.
fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect::<String>()
        .into()
}

/// Warns about `CTXSYNC_*` variables that no setting reads: usually a typo that would otherwise
/// be silently ignored.
pub fn warn_unknown_variables() {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CTXSYNC_") && !crate::settings::known_variable(name) {
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

    /// A writer into a shared buffer, to read what a subscriber wrote.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(format: LogFormat, log: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = subscriber(EnvFilter::new("debug"), format, move || writer.clone(), false);
        tracing::subscriber::with_default(subscriber, log);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    const FORGED: &str = "data.attributes.x\nINFO ctxsync: forged\r\u{1b}[31m";

    fn forge() {
        let span = tracing::info_span!("request", request_id = "r-1");
        let _entered = span.enter();
        tracing::debug!(error = %FORGED, key = FORGED, "request rejected: {FORGED}");
    }

    #[test]
    fn text_lines_cannot_be_forged() {
        let out = logged(LogFormat::Text, forge);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(!out.contains('\r') && !out.contains('\u{1b}'), "{out:?}");
        assert!(
            out.contains(r"request rejected: data.attributes.x\nINFO ctxsync: forged\r\u{1b}[31m"),
            "{out}"
        );
        assert!(out.contains(r"error=data.attributes.x\nINFO"), "{out}");
        assert!(out.contains("request_id"), "{out}");
    }

    #[test]
    fn json_lines_carry_time_level_target_message_fields_and_span() {
        let out = logged(LogFormat::Json, forge);
        assert_eq!(out.lines().count(), 1, "{out}");
        let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert!(line["timestamp"].is_string(), "{line}");
        assert_eq!(line["level"], "DEBUG");
        assert_eq!(line["target"], module_path!());
        assert_eq!(line["message"], format!("request rejected: {FORGED}"));
        assert_eq!(line["error"], FORGED);
        assert_eq!(line["key"], FORGED);
        assert_eq!(line["span"]["request_id"], "r-1");
    }
}
