//! Files and folders ctxsync creates are its owner's alone (0700 folders, 0600 files): they hold
//! the database, the master key and, in a demo folder, credentials.

use std::io::{self, Write};
use std::path::Path;

/// Creates `dir` and its missing parents, mode 0700; an existing folder keeps its mode.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Creates an empty `path` with mode 0600 unless it exists. SQLite keeps an existing file's mode
/// and gives its `-wal` and `-shm` files the same, so a database created this way stays private.
pub fn touch(path: &Path) -> io::Result<()> {
    match open_new(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        opened => opened.map(drop),
    }
}

/// Writes `contents` to `path` with mode 0600, replacing it whole (through a file beside it,
/// renamed over it) so a reader never sees half of it.
pub fn write(path: &Path, contents: &[u8]) -> io::Result<()> {
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let mut file = open_new(&partial)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

/// Creates or truncates `path` for writing; a file it creates has mode 0600 (an export holds the
/// tenant's people).
pub fn create(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// The mode of `path` when other users may read or enter it (any of the `0o007` bits), so the
/// service can say so at start; `None` when it is private or cannot be read.
pub fn open_to_others(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o007 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn open_new(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
