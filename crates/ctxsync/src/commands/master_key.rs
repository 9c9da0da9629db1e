//! `ctxsync master-key rotate`: every stored secret re-encrypted under a new master key.
//!
//! The current key (and `CTXSYNC_PREVIOUS_MASTER_KEY_FILE`, when a rotation is under way) open
//! what is stored; the new key seals it again, one config per transaction, and finally seals the
//! database's key check, after which the old key alone is refused. Interrupted at any point (a
//! kill, a lost connection), nothing is lost: each row is under one key or the other, and a rerun
//! with the same new key carries on.

use std::io::Write;

use anyhow::{Context, bail};
use ctxsync_store::{MasterKey, MasterKeys};

use crate::settings::MasterKeyRotateArgs;

/// Progress is reported every this many configs (and at the end).
const REPORT_EVERY: u64 = 50;

pub async fn rotate(args: MasterKeyRotateArgs) -> anyhow::Result<()> {
    let new_text = std::fs::read_to_string(&args.new_key_file)
        .with_context(|| format!("could not read --new-key-file {}", args.new_key_file.display()))?;
    let new = MasterKey::from_file(&args.new_key_file).context("--new-key-file is not usable")?;
    let Some((url, known)) = args.store.resolve_existing()? else {
        bail!("there is no ctxsync database at {}; nothing to rotate", args.store.database_name());
    };
    // A rerun after the key check was resealed: the data directory's key may still be the old one,
    // and the new one must be known to open the database.
    let mut previous: Vec<MasterKey> = std::iter::once(known.current).chain(known.previous).collect();
    previous.retain(|k| k.id() != new.id());
    let keys = MasterKeys { current: new.clone(), previous };
    let store = ctxsync_store::connect(&url, keys)
        .await
        .context("could not open the database with the current, previous or new master key")?;
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "re-encrypting the stored secrets of {} under key {}",
        args.store.database_name(),
        hex(&new.id())
    )?;
    let report = |done: u64, total: u64| {
        if done.is_multiple_of(REPORT_EVERY) || done == total {
            eprintln!("re-encrypted {done} of {total} configs");
        }
    };
    let done = store
        .reencrypt_secrets(&report)
        .await
        .context("the rotation stopped; run the same command again to carry on")?;
    writeln!(err, "{} configs re-encrypted, {} already under the new key", done.rewritten, done.already)?;
    match args.store.generated_key_file() {
        Some(path) => {
            crate::private::write(&path, format!("{}\n", new_text.trim()).as_bytes())
                .with_context(|| format!("the secrets are under the new key, but {} could not be replaced; copy --new-key-file there", path.display()))?;
            writeln!(
                err,
                "{} now holds the new key; the old key no longer opens this database",
                path.display()
            )?;
        }
        None => writeln!(
            err,
            "Done: from now on start ctxsync with CTXSYNC_MASTER_KEY_FILE={} (and without \
             CTXSYNC_PREVIOUS_MASTER_KEY_FILE); the old key no longer opens this database",
            args.new_key_file.display()
        )?,
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
