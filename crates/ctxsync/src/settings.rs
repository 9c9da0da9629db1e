//! Operator settings: the command line (`Cli`, raw input, every flag also an environment
//! variable) and the resolved settings the service starts from.
//!
//! The variable names are a contract (GUIDE section 3): scripts and deployments rely on them.

use std::net::{SocketAddr, ToSocketAddrs};
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use ctxsync_api::RateLimitSettings;
use ctxsync_core::{ConfigId, DeletionGuard, Schedule};
use ctxsync_sources::{BaseUrl, Endpoints};
use ctxsync_store::{MasterKey, MasterKeys};
use ctxsync_sync::SyncSettings;
use url::Url;

use crate::connections::{ConnectionLimits, DEFAULT_MAX_CONNECTIONS};
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "ctxsync",
    version,
    about = "Entity context sync for your SIEM, with a Datadog-compatible API"
)]
pub struct Cli {
    /// A TOML file of settings (`listen = "0.0.0.0:8080"`, keys as the variable names without
    /// the CTXSYNC_ prefix, lowercase). Flags and environment variables take precedence over it.
    /// (`--config-file`, so it does not clash with the `--config ID` of `sync`, `export` and
    /// `events`.)
    #[arg(long = "config-file", id = "config_file", global = true, env = "CTXSYNC_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (SQLite in the data directory unless CTXSYNC_DATABASE_URL says otherwise).
    Serve(Box<ServeArgs>),
    /// Serve the API together with local fake Okta, Google Workspace and Entra ID servers, to try
    /// everything without a real identity provider.
    Demo(DemoArgs),
    /// Run one sync of a config in the foreground, with a progress bar, and print its summary.
    #[command(after_help = "Exit status: 0 the run succeeded; 3 it completed but its deletions are held \
        for review (see `ctxsync holds`); 1 it failed, was interrupted or could not start.")]
    Sync(Box<SyncCommandArgs>),
    /// Review and decide runs whose deletions are held (a mass deletion or an incomplete listing).
    Holds(HoldsArgs),
    /// Write a config's entities and memberships as NDJSON.
    Export(ExportArgs),
    /// Write change events as NDJSON, oldest first; with --follow, keep writing new ones.
    Events(EventsArgs),
    /// Manage API and application keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage the master key that encrypts stored credentials.
    MasterKey {
        #[command(subcommand)]
        command: MasterKeyCommand,
    },
    /// Ask a running `serve` whether it is ready (GET /readyz), for a container's or a service
    /// manager's health check.
    #[command(after_help = "Exit status: 0 it answered 200; 1 it answered anything else, nothing in \
        time, or could not be reached. Nothing is printed on success, the reason otherwise.")]
    Healthcheck(HealthcheckArgs),
    /// Write a shell completion script to standard output.
    Completions(CompletionsArgs),
    /// Write the manual page to standard output, or with --dir a page per command into a folder.
    Man(ManArgs),
}

#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Re-encrypt every stored secret under a new master key. On SQLite, stop the service first;
    /// on PostgreSQL, replicas may run if they know both keys (README, "Master-key rotation").
    /// Safe to interrupt and run again.
    Rotate(MasterKeyRotateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct MasterKeyRotateArgs {
    /// The new key (32 random bytes, base64), e.g. made with `openssl rand -base64 32`.
    #[arg(long)]
    pub new_key_file: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key and an application key in an org (created if missing).
    Create(KeysCreateArgs),
    /// List keys (never their values): id, org, kind, scopes, status, created, last used.
    List(KeysListArgs),
    /// Stop a key now (every replica within two seconds).
    Revoke(KeysIdArgs),
    /// Issue a new key of the same kind, org and scopes; the old one works for --grace more.
    Rotate(KeysRotateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct KeysListArgs {
    /// Only this org's keys.
    #[arg(long)]
    pub org: Option<String>,
    /// One JSON object a line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct KeysIdArgs {
    /// The key's id, as `keys list` shows it.
    pub id: uuid::Uuid,
    /// Print the key as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct KeysRotateArgs {
    /// The key's id, as `keys list` shows it.
    pub id: uuid::Uuid,
    /// How long the old key keeps working, e.g. `24h`; `0s` stops it now.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// When the new key stops working, e.g. `90d`; never when not given.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub expires_in: Option<Duration>,
    /// Print the new key as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Where the SQLite database and the generated master key live.
    #[arg(long, env = "CTXSYNC_DATA_DIR", default_value = "./ctxsync-data")]
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; overrides the data directory's database. Several replicas
    /// share one PostgreSQL database.
    #[arg(long, env = "CTXSYNC_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The 32-byte master key for secrets at rest, base64.
    #[arg(long, env = "CTXSYNC_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// A file holding the master key (base64).
    #[arg(long, env = "CTXSYNC_MASTER_KEY_FILE", conflicts_with = "master_key")]
    pub master_key_file: Option<PathBuf>,
    /// During a master-key rotation: a file holding the previous master key, so that secrets it
    /// sealed still read until `ctxsync master-key rotate` has re-encrypted them.
    #[arg(long, env = "CTXSYNC_PREVIOUS_MASTER_KEY_FILE")]
    pub previous_master_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    #[command(flatten)]
    pub base_urls: BaseUrlArgs,
    /// Allow source hosts that resolve to loopback or private addresses.
    #[arg(long, env = "CTXSYNC_ALLOW_PRIVATE_SOURCES", default_value = "false", value_parser = BoolishValueParser::new())]
    pub allow_private_sources: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    /// Default time between syncs of one config; a config's `settings.sync_interval` overrides it.
    #[arg(long, env = "CTXSYNC_SYNC_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub sync_interval: Duration,
    /// Default time between full syncs (which also find deletions); `settings.full_sync_interval`
    /// overrides it.
    #[arg(long, env = "CTXSYNC_FULL_SYNC_INTERVAL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub full_sync_interval: Duration,
    /// Syncs running at the same time in this process.
    #[arg(long, env = "CTXSYNC_SYNC_CONCURRENCY", default_value = "4")]
    pub sync_concurrency: NonZeroUsize,
    /// How long a replica's claim on a config lasts without renewal (renewed every third of it):
    /// when a replica dies, another takes its configs over after this long.
    #[arg(long, env = "CTXSYNC_SYNC_LEASE", default_value = "60s", value_parser = humantime::parse_duration)]
    pub sync_lease: Duration,
    /// A run that would delete more than this percentage of a kind's stored entities (and more
    /// than CTXSYNC_DELETION_GUARD_MIN of them, or all of them) holds its deletions until they
    /// are confirmed; `settings.deletion_guard_percent` overrides it, 100 turns the guard off.
    #[arg(long, env = "CTXSYNC_DELETION_GUARD_PERCENT", default_value = "20")]
    pub deletion_guard_percent: f64,
    /// Deletions of a kind up to this many are never held for their share alone;
    /// `settings.deletion_guard_min` overrides it.
    #[arg(long, env = "CTXSYNC_DELETION_GUARD_MIN", default_value = "10")]
    pub deletion_guard_min: u64,
}

impl SyncArgs {
    pub fn settings(&self) -> anyhow::Result<SyncSettings> {
        if self.sync_interval < Duration::from_secs(1) || self.full_sync_interval < Duration::from_secs(1) {
            bail!("CTXSYNC_SYNC_INTERVAL and CTXSYNC_FULL_SYNC_INTERVAL must be at least 1s");
        }
        if self.sync_lease < Duration::from_secs(3) {
            bail!("CTXSYNC_SYNC_LEASE must be at least 3s (it is renewed every third of it)");
        }
        if !(0.0..=100.0).contains(&self.deletion_guard_percent) {
            bail!("CTXSYNC_DELETION_GUARD_PERCENT must be a number from 0 to 100");
        }
        Ok(SyncSettings {
            schedule: Schedule { interval: self.sync_interval, full_interval: self.full_sync_interval },
            concurrency: self.sync_concurrency.get(),
            lease: self.sync_lease,
            guard: DeletionGuard {
                share: self.deletion_guard_percent / 100.0,
                floor: self.deletion_guard_min,
            },
            ..SyncSettings::default()
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct SyncCommandArgs {
    /// The config to sync.
    #[arg(long)]
    pub config: ConfigId,
    /// List everything, even when an incremental run would do.
    #[arg(long)]
    pub full: bool,
    /// List everything from the start, even when a stopped full run could be gone on with.
    #[arg(long)]
    pub restart: bool,
    /// Fail at once when another live worker is syncing the config, instead of waiting for it.
    /// (A lease left by a process of this host that no longer exists is taken over either way.)
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub sources: SourceArgs,
    #[command(flatten)]
    pub sync: SyncArgs,
    /// Log filter.
    #[arg(long, env = "CTXSYNC_LOG", default_value = "warn", value_parser = telemetry::parse_filter)]
    pub log: String,
    /// Log line format: `text` (for people) or `json` (one object a line, for collectors).
    #[arg(long, env = "CTXSYNC_LOG_FORMAT", default_value = "text", value_enum)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Args)]
pub struct HoldsArgs {
    #[command(subcommand)]
    pub command: HoldsCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum HoldsCommand {
    /// A config's runs whose deletions wait for a decision, newest first.
    List(HoldsListArgs),
    /// One run's hold and every deletion it holds.
    Show(HoldsRunArgs),
    /// Apply a held run's deletions (recording their change events and history).
    Confirm(HoldsRunArgs),
    /// Drop a held run's deletions and keep the entities.
    Discard(HoldsRunArgs),
}

#[derive(Debug, Clone, Args)]
pub struct HoldsListArgs {
    /// The config whose held runs to list.
    #[arg(long)]
    pub config: ConfigId,
    /// One JSON object a line (the API's sync run resource).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct HoldsRunArgs {
    /// The config the run belongs to.
    #[arg(long)]
    pub config: ConfigId,
    /// The held run.
    #[arg(long)]
    pub run: uuid::Uuid,
    /// JSON output, one object a line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The config whose entities to write.
    #[arg(long)]
    pub config: ConfigId,
    /// Where to write; standard output when absent.
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    /// Only this config's events (every config's, of every org, when absent).
    #[arg(long)]
    pub config: Option<ConfigId>,
    /// Only events observed since then: a duration back from now (`1h`, `7d`) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Keep polling for new events until interrupted (Ctrl-C).
    #[arg(long)]
    pub follow: bool,
    /// How often --follow polls.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub poll: Duration,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to serve on: an IP address or a host name (resolved at start), and a port.
    #[arg(long, env = "CTXSYNC_LISTEN", default_value = "127.0.0.1:8080", value_parser = listen_address)]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub sources: SourceArgs,
    #[command(flatten)]
    pub sync: SyncArgs,
    /// Make sure this API key exists in the default org (with CTXSYNC_BOOTSTRAP_APP_KEY).
    #[arg(long, env = "CTXSYNC_BOOTSTRAP_API_KEY", hide_env_values = true, requires = "bootstrap_app_key")]
    pub bootstrap_api_key: Option<String>,
    /// Make sure this application key exists in the default org, with every permission.
    #[arg(long, env = "CTXSYNC_BOOTSTRAP_APP_KEY", hide_env_values = true, requires = "bootstrap_api_key")]
    pub bootstrap_app_key: Option<String>,
    /// Requests an org may make per rate-limit period (per replica).
    #[arg(long, env = "CTXSYNC_RATE_LIMIT", default_value = "6000")]
    pub rate_limit: NonZeroU32,
    /// The rate-limit period, e.g. `60s` or `1m`.
    #[arg(long, env = "CTXSYNC_RATE_LIMIT_PERIOD", default_value = "60s", value_parser = humantime::parse_duration)]
    pub rate_limit_period: Duration,
    /// How long change events are kept; older ones are deleted every hour.
    #[arg(long, env = "CTXSYNC_EVENT_RETENTION", default_value = "90d", value_parser = humantime::parse_duration)]
    pub event_retention: Duration,
    /// Client connections served at once; further ones wait until one closes. Lowered at start
    /// when the open-file limit cannot hold that many.
    #[arg(long, env = "CTXSYNC_MAX_CONNECTIONS", default_value_t = NonZeroUsize::new(DEFAULT_MAX_CONNECTIONS).expect("non-zero"))]
    pub max_connections: NonZeroUsize,
    /// Log filter (tracing's EnvFilter syntax), e.g. `info` or `ctxsync=debug`.
    #[arg(long, env = "CTXSYNC_LOG", default_value = "info", value_parser = telemetry::parse_filter)]
    pub log: String,
    /// Log line format: `text` (for people) or `json` (one object a line, for collectors).
    #[arg(long, env = "CTXSYNC_LOG_FORMAT", default_value = "text", value_enum)]
    pub log_format: LogFormat,
    /// Address of the Prometheus `/metrics` listener, e.g. `127.0.0.1:9464`; none when unset.
    #[arg(long, env = "CTXSYNC_METRICS_LISTEN", value_parser = listen_address)]
    pub metrics_listen: Option<SocketAddr>,
    /// The address sources reach this service at, for the push endpoints they deliver to, e.g.
    /// `https://ctxsync.example.com`; the host a request came to when unset (Entra ID push,
    /// whose subscriptions ctxsync makes, needs it).
    #[arg(long, env = "CTXSYNC_PUBLIC_URL", value_parser = public_url)]
    pub public_url: Option<String>,
}

/// An `http` or `https` URL without a query: push endpoints' paths are appended to it.
fn public_url(value: &str) -> Result<String, String> {
    let url =
        Url::parse(value.trim()).map_err(|e| format!("not a URL ({e}), e.g. https://ctxsync.example.com"))?;
    if !matches!(url.scheme(), "http" | "https") || url.query().is_some() || url.host_str().is_none() {
        return Err("must be an http or https URL without a query, e.g. https://ctxsync.example.com".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Address to serve on: an IP address or a host name (resolved at start), and a port.
    #[arg(long, env = "CTXSYNC_LISTEN", default_value = "127.0.0.1:8080", value_parser = listen_address)]
    pub listen: SocketAddr,
    /// The demo's own folder: its database, master key, keys and the fakes' credentials, kept
    /// for the next run. (Not CTXSYNC_DATA_DIR, so a demo never lands in a real data folder.)
    #[arg(long, default_value = "./ctxsync-demo")]
    pub data_dir: PathBuf,
    /// Users in each fake tenant (groups and devices scale with it).
    #[arg(long, default_value = "5000")]
    pub users: usize,
    /// Whether the fake tenants keep changing (users suspended, reactivated, added, renamed,
    /// moved between groups every few seconds): `on` or `off`.
    #[arg(long, default_value = "on", action = clap::ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub churn: bool,
    /// Log filter.
    #[arg(long, env = "CTXSYNC_LOG", default_value = "info", value_parser = telemetry::parse_filter)]
    pub log: String,
    /// Log line format: `text` (for people) or `json` (one object a line, for collectors).
    #[arg(long, env = "CTXSYNC_LOG_FORMAT", default_value = "text", value_enum)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Args)]
pub struct KeysCreateArgs {
    /// The org the keys belong to; created when it does not exist.
    #[arg(long, default_value = "default")]
    pub org: String,
    /// Comma-separated scopes of the application key (integrations_read, manage_integrations);
    /// none means every permission of the org.
    #[arg(long, default_value = "")]
    pub scopes: String,
    /// When both keys stop working, e.g. `90d`; never when not given.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub expires_in: Option<Duration>,
    /// Print the key pair as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// The address `serve` listens on; an unspecified one (0.0.0.0, [::]) is asked on loopback.
    #[arg(long, env = "CTXSYNC_LISTEN", default_value = "127.0.0.1:8080", value_parser = listen_address)]
    pub listen: SocketAddr,
    /// The URL to ask instead of /readyz on --listen (http:// only).
    #[arg(long)]
    pub url: Option<Url>,
    /// How long to wait for the answer.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write ctxsync.1 and one page per subcommand (ctxsync-serve.1, …) into this folder, made
    /// when missing.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Resolved settings of a running service. `Debug` leaves out what would unlock something: the
/// database URL's password and the bootstrap keys (the master key redacts itself).
pub struct ServeSettings {
    pub listen: SocketAddr,
    /// Where `/metrics` is served, when anywhere.
    pub metrics_listen: Option<SocketAddr>,
    pub database_url: String,
    pub master_key: MasterKeys,
    pub endpoints: Endpoints,
    pub bootstrap: Option<(String, String)>,
    pub rate_limit: RateLimitSettings,
    pub sync: SyncSettings,
    /// How long change events are kept.
    pub event_retention: Duration,
    pub connections: ConnectionLimits,
    /// `CTXSYNC_PUBLIC_URL`.
    pub public_url: Option<String>,
}

impl std::fmt::Debug for ServeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let database_url = match Url::parse(&self.database_url) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("[redacted]"));
                url.to_string()
            }
            _ => self.database_url.clone(),
        };
        f.debug_struct("ServeSettings")
            .field("listen", &self.listen)
            .field("metrics_listen", &self.metrics_listen)
            .field("database_url", &database_url)
            .field("master_key", &self.master_key)
            .field("endpoints", &self.endpoints)
            .field("bootstrap", &self.bootstrap.as_ref().map(|_| "[redacted]"))
            .field("rate_limit", &self.rate_limit)
            .field("sync", &self.sync)
            .field("event_retention", &self.event_retention)
            .field("connections", &self.connections)
            .field("public_url", &self.public_url)
            .finish()
    }
}

impl StoreArgs {
    /// The database URL and master key, creating the data directory (and a master key in it)
    /// on first start.
    pub fn resolve(&self) -> anyhow::Result<(String, MasterKeys)> {
        let master_key = match self.given_master_key()? {
            Some(key) => key,
            None => MasterKey::load_or_generate(&self.data_dir).with_context(|| {
                format!("could not load or create the master key in {}", self.data_dir.display())
            })?,
        };
        let database_url = self.database_url()?;
        if self.database_url.is_none() {
            let created = crate::private::create_dir(&self.data_dir)
                .and_then(|()| crate::private::touch(&self.data_dir.join(DATABASE_FILE)));
            created.with_context(|| {
                format!("could not create the data directory {}", self.data_dir.display())
            })?;
        } else if let Some(file) = sqlite_file(&database_url)
            && file.parent().is_none_or(|dir| dir.as_os_str().is_empty() || dir.is_dir())
        {
            // Before SQLite creates it with the umask's mode (and its -wal and -shm files after it).
            crate::private::touch(&file).with_context(|| format!("could not create {}", file.display()))?;
        }
        Ok((database_url, self.with_previous(master_key)?))
    }

    /// The current key with the previous one, when `CTXSYNC_PREVIOUS_MASTER_KEY_FILE` names it.
    fn with_previous(&self, current: MasterKey) -> anyhow::Result<MasterKeys> {
        let previous = match &self.previous_master_key_file {
            None => Vec::new(),
            Some(path) => vec![MasterKey::from_file(path).with_context(|| {
                format!("CTXSYNC_PREVIOUS_MASTER_KEY_FILE {} is not usable", path.display())
            })?],
        };
        Ok(MasterKeys { current, previous })
    }

    /// Where `resolve` takes the current master key from when none is given: the data
    /// directory's generated `master.key`, which a rotation replaces; `None` when it is given.
    pub fn generated_key_file(&self) -> Option<PathBuf> {
        (self.master_key.is_none() && self.master_key_file.is_none())
            .then(|| self.data_dir.join("master.key"))
    }

    /// Warns about the database's folder or file when other users may read them: they hold the
    /// tenants' people and, in the data folder, the master key. (Created by ctxsync they are
    /// private; an operator's existing folder keeps its mode.)
    pub fn warn_if_open_to_others(&self) {
        let database =
            self.database_url.as_deref().map_or_else(|| Some(self.data_dir.join(DATABASE_FILE)), sqlite_file);
        let Some(database) = database else { return };
        let folder = database.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        for path in [folder, database.as_path()] {
            if let Some(mode) = crate::private::open_to_others(path) {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:o}"),
                    "readable by other users of this machine; it holds ctxsync's data: chmod go-rwx it"
                );
            }
        }
    }

    /// As [`StoreArgs::resolve`] for commands that work on what `serve` or `demo` stored
    /// (`sync`, `export`, `events`), creating nothing: `None` when there is no database file
    /// yet, so a mistyped folder is reported rather than turned into an empty database.
    pub fn resolve_existing(&self) -> anyhow::Result<Option<(String, MasterKeys)>> {
        let database_url = self.database_url()?;
        if sqlite_file(&database_url).is_some_and(|file| !file.exists()) {
            return Ok(None);
        }
        let master_key = match self.given_master_key()? {
            Some(key) => key,
            None => {
                let path = self.data_dir.join("master.key");
                if !path.exists() {
                    bail!(
                        "there is no master key at {}: set CTXSYNC_MASTER_KEY or CTXSYNC_MASTER_KEY_FILE \
                         to the key the database {} was written with",
                        path.display(),
                        self.database_name()
                    );
                }
                MasterKey::from_file(&path).with_context(|| format!("{} is not usable", path.display()))?
            }
        };
        Ok(Some((database_url, self.with_previous(master_key)?)))
    }

    /// The database as messages name it: the SQLite file, or the PostgreSQL server and database
    /// without the credentials its URL may hold.
    pub fn database_name(&self) -> String {
        let Some(url) = &self.database_url else {
            return self.data_dir.join(DATABASE_FILE).display().to_string();
        };
        if let Some(file) = sqlite_file(url) {
            return file.display().to_string();
        }
        match Url::parse(url) {
            Ok(u) => {
                let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
                format!("{}://{}{port}{}", u.scheme(), u.host_str().unwrap_or_default(), u.path())
            }
            Err(_) => "the CTXSYNC_DATABASE_URL database".to_string(),
        }
    }

    /// The folder of the SQLite database file, where `ctxsync demo` leaves its marker.
    pub fn database_folder(&self) -> Option<PathBuf> {
        let url = self.database_url().ok()?;
        Some(sqlite_file(&url)?.parent()?.to_path_buf())
    }

    fn postgres(&self) -> bool {
        self.database_url
            .as_deref()
            .is_some_and(|url| url.starts_with("postgres:") || url.starts_with("postgresql:"))
    }

    fn database_url(&self) -> anyhow::Result<String> {
        Ok(match &self.database_url {
            Some(url) if url.starts_with("sqlite:") || self.postgres() => url.clone(),
            Some(_) => bail!("CTXSYNC_DATABASE_URL must start with sqlite:// or postgres://"),
            None => format!("sqlite://{}", self.data_dir.join(DATABASE_FILE).display()),
        })
    }

    /// The key `CTXSYNC_MASTER_KEY` or `CTXSYNC_MASTER_KEY_FILE` gives; `None` when neither is
    /// set, which only SQLite allows.
    fn given_master_key(&self) -> anyhow::Result<Option<MasterKey>> {
        Ok(Some(match (&self.master_key, &self.master_key_file) {
            (Some(key), _) => MasterKey::from_base64(key).context("CTXSYNC_MASTER_KEY is not usable")?,
            (None, Some(path)) => MasterKey::from_file(path)
                .with_context(|| format!("CTXSYNC_MASTER_KEY_FILE {} is not usable", path.display()))?,
            // A key generated into one replica's data directory would lock the others out.
            (None, None) if self.postgres() => bail!(
                "with a PostgreSQL CTXSYNC_DATABASE_URL, set CTXSYNC_MASTER_KEY or \
                 CTXSYNC_MASTER_KEY_FILE: every replica must use the same master key"
            ),
            (None, None) => return Ok(None),
        }))
    }
}

/// `CTXSYNC_LISTEN`: an address, or a host name resolved once at start to its first IPv4 address
/// (the default is IPv4 too), else its first address.
pub fn listen_address(raw: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = raw.parse() {
        return Ok(address);
    }
    let Some((host, port)) = raw.rsplit_once(':').filter(|(host, _)| !host.is_empty()) else {
        return Err("must be host:port, such as 127.0.0.1:8080 or localhost:8080".into());
    };
    let port: u16 = port.parse().map_err(|_| format!("{port:?} is not a port number (0 to 65535)"))?;
    let addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host:?} ({e}); use an address such as 127.0.0.1:{port}"))?
        .collect();
    addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or(addresses.first())
        .copied()
        .ok_or_else(|| format!("{host:?} has no address; use an address such as 127.0.0.1:{port}"))
}

/// The database's file name in a data directory.
pub const DATABASE_FILE: &str = "ctxsync.db";

/// The file a `sqlite:` URL names (`sqlite://data/ctxsync.db`, `sqlite:///var/lib/x.db?mode=rwc`);
/// `None` for other URLs and in-memory databases.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

impl SourceArgs {
    pub fn endpoints(&self) -> Endpoints {
        let mut endpoints = self
            .base_urls
            .0
            .iter()
            .fold(Endpoints::default(), |e, (base, url)| e.with(base.env, url.clone()));
        endpoints.allow_private = self.allow_private_sources;
        endpoints
    }
}

/// The base URL of every host a source talks to, as the flags and variables the sources name
/// (`--graph-base-url`, `CTXSYNC_GRAPH_BASE_URL`): a new source brings its own.
#[derive(Debug, Clone, Default)]
pub struct BaseUrlArgs(Vec<(&'static BaseUrl, Url)>);

impl clap::FromArgMatches for BaseUrlArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Ok(BaseUrlArgs(
            ctxsync_sources::base_urls()
                .filter_map(|base| matches.get_one::<Url>(base.flag).map(|url| (base, url.clone())))
                .collect(),
        ))
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for BaseUrlArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        ctxsync_sources::base_urls().fold(cmd, |cmd, base| {
            cmd.arg(
                clap::Arg::new(base.flag)
                    .long(base.flag)
                    .env(base.env)
                    .value_name("URL")
                    .value_parser(clap::value_parser!(Url))
                    .help(base.help),
            )
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl ServeArgs {
    pub fn resolve(&self) -> anyhow::Result<ServeSettings> {
        let (database_url, master_key) = self.store.resolve()?;
        let bootstrap = match (&self.bootstrap_api_key, &self.bootstrap_app_key) {
            (Some(api), Some(app)) if !api.trim().is_empty() && !app.trim().is_empty() => {
                Some((api.trim().to_owned(), app.trim().to_owned()))
            }
            (None, None) => None,
            _ => bail!(
                "CTXSYNC_BOOTSTRAP_API_KEY and CTXSYNC_BOOTSTRAP_APP_KEY must both be set and non-empty"
            ),
        };
        if self.rate_limit_period.is_zero() {
            bail!("CTXSYNC_RATE_LIMIT_PERIOD must be longer than zero");
        }
        if self.event_retention.is_zero() {
            bail!("CTXSYNC_EVENT_RETENTION must be longer than zero");
        }
        Ok(ServeSettings {
            listen: self.listen,
            metrics_listen: self.metrics_listen,
            database_url,
            master_key,
            endpoints: self.sources.endpoints(),
            bootstrap,
            rate_limit: RateLimitSettings { limit: self.rate_limit, period: self.rate_limit_period },
            sync: self.sync.settings()?,
            event_retention: self.event_retention,
            connections: ConnectionLimits {
                max_connections: self.max_connections.get(),
                ..ConnectionLimits::default()
            },
            public_url: self.public_url.clone(),
        })
    }
}

/// Every variable of the settings contract: these and each source's base URLs (see
/// [`known_variable`]); anything else starting with CTXSYNC_ is probably a typo.
const SERVICE_VARIABLES: &[&str] = &[
    "CTXSYNC_CONFIG",
    "CTXSYNC_LISTEN",
    "CTXSYNC_DATA_DIR",
    "CTXSYNC_DATABASE_URL",
    "CTXSYNC_MASTER_KEY",
    "CTXSYNC_MASTER_KEY_FILE",
    "CTXSYNC_PREVIOUS_MASTER_KEY_FILE",
    "CTXSYNC_BOOTSTRAP_API_KEY",
    "CTXSYNC_BOOTSTRAP_APP_KEY",
    "CTXSYNC_ALLOW_PRIVATE_SOURCES",
    "CTXSYNC_SYNC_INTERVAL",
    "CTXSYNC_FULL_SYNC_INTERVAL",
    "CTXSYNC_SYNC_CONCURRENCY",
    "CTXSYNC_SYNC_LEASE",
    "CTXSYNC_DELETION_GUARD_PERCENT",
    "CTXSYNC_DELETION_GUARD_MIN",
    "CTXSYNC_RATE_LIMIT",
    "CTXSYNC_RATE_LIMIT_PERIOD",
    "CTXSYNC_EVENT_RETENTION",
    "CTXSYNC_MAX_CONNECTIONS",
    "CTXSYNC_LOG",
    "CTXSYNC_LOG_FORMAT",
    "CTXSYNC_METRICS_LISTEN",
    "CTXSYNC_PUBLIC_URL",
];

/// Every variable of the settings contract, the sources' base URLs after the service's own.
pub fn known_variables() -> impl Iterator<Item = &'static str> {
    SERVICE_VARIABLES.iter().copied().chain(ctxsync_sources::base_urls().map(|b| b.env))
}

pub fn known_variable(name: &str) -> bool {
    known_variables().any(|known| known == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_out_passwords_and_keys() {
        let settings = ServeSettings {
            listen: "127.0.0.1:8080".parse().unwrap(),
            metrics_listen: None,
            database_url: "postgres://ctxsync:hunter2@db.internal/ctxsync".into(),
            master_key: MasterKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
                .unwrap()
                .into(),
            endpoints: Endpoints::default(),
            bootstrap: Some(("api-key-value".into(), "app-key-value".into())),
            rate_limit: RateLimitSettings {
                limit: NonZeroU32::new(10).unwrap(),
                period: Duration::from_secs(1),
            },
            sync: SyncSettings::default(),
            event_retention: Duration::from_secs(1),
            connections: ConnectionLimits::default(),
            public_url: None,
        };
        let printed = format!("{settings:?}");
        for secret in ["hunter2", "api-key-value", "app-key-value", "MDEyMzQ1"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("db.internal"), "{printed}");
    }

    #[test]
    fn a_public_url_is_an_http_address_without_a_query() {
        assert_eq!(public_url("https://ctxsync.example.com/"), Ok("https://ctxsync.example.com".into()));
        assert_eq!(public_url("http://10.0.0.5:8080/ctx"), Ok("http://10.0.0.5:8080/ctx".into()));
        for bad in ["ctxsync.example.com", "ftp://x.example", "https://x.example/?a=1", "https://"] {
            assert!(public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_takes_addresses_and_host_names() {
        assert_eq!(listen_address("0.0.0.0:9000"), Ok("0.0.0.0:9000".parse().unwrap()));
        assert_eq!(listen_address("[::1]:8080"), Ok("[::1]:8080".parse().unwrap()));
        assert_eq!(listen_address("localhost:0"), Ok("127.0.0.1:0".parse().unwrap()));
    }

    #[test]
    fn listen_says_what_is_wrong() {
        assert_eq!(
            listen_address("localhost").unwrap_err(),
            "must be host:port, such as 127.0.0.1:8080 or localhost:8080"
        );
        assert_eq!(
            listen_address("localhost:http").unwrap_err(),
            "\"http\" is not a port number (0 to 65535)"
        );
        let unknown = listen_address("no-such-host.invalid:8080").unwrap_err();
        assert!(
            unknown.starts_with("cannot resolve \"no-such-host.invalid\"")
                && unknown.ends_with("use an address such as 127.0.0.1:8080"),
            "{unknown}"
        );
    }
}
