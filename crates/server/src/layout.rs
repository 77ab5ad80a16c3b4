//! The data directory's layout rules: the directory is 0700, the SQLite database and its
//! `-wal`/`-shm` files are 0600 (the database is created empty at 0600 before SQLite opens it,
//! and SQLite gives its side files the database's mode; files of older stores are tightened
//! at start), and a master key file inside the data directory is warned about at every start
//! (a copy of the directory would hold both the data and its key).
//!
//! Must not: read or print key material.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::MasterKeySource;

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// Creates the data directory if needed and makes it 0700.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating data dir {}", dir.display()))?;
    set_mode(dir, 0o700).with_context(|| format!("making data dir {} private", dir.display()))
}

/// Creates `path` empty with mode 0600 if it does not exist (an empty file is a valid empty
/// SQLite database).
pub fn precreate_private(path: &Path) -> anyhow::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating database file {}", path.display())),
    }
}

/// Makes the database and its `-wal`/`-shm` files (those that exist) 0600.
pub fn restrict_db_files(db: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        match set_mode(&path, 0o600) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("making {} private", path.display())),
        }
    }
    Ok(())
}

/// Whether `key` lies inside `dir` (compared after resolving both, when they exist).
fn inside(key: &Path, dir: &Path) -> bool {
    let resolve = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let key = match key.parent() {
        Some(parent) => resolve(parent).join(key.file_name().unwrap_or_default()),
        None => key.to_path_buf(),
    };
    key.starts_with(resolve(dir))
}

/// Warns (stderr, every start) while the master key file sits inside the data directory.
pub fn warn_key_inside(source: &MasterKeySource, dir: &Path) {
    let (MasterKeySource::File(p) | MasterKeySource::GenerateAt(p)) = source else {
        return;
    };
    if inside(p, dir) {
        eprintln!(
            "authd: warning: the master key file {} is inside the data directory {}: a copy of \
             the directory holds both the data and its key. Move the key file out (pass \
             --master-key-file) and back it up separately from the data",
            p.display(),
            dir.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_inside_only_under_the_directory() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        fs::create_dir(&data).unwrap();
        assert!(inside(&data.join("master.key"), &data));
        assert!(inside(&data.join(".").join("master.key"), &data));
        assert!(!inside(&d.path().join("master.key"), &data));
        assert!(!inside(&d.path().join("data2").join("master.key"), &data));
    }
}
