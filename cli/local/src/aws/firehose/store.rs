//! Where delivered data lands: a directory laid out like the S3 bucket
//! Firehose writes to, with every object written atomically, and the spool
//! that keeps acknowledged records across a crash.

use std::io::Write;
use std::path::{Path, PathBuf};

use edgehose_shared::timestamp::Timestamp;

use crate::error::{Error, Result};

/// The data directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// A store under `root` (created when missing).
    pub fn open(root: &Path) -> Result<Self> {
        for dir in [root.to_path_buf(), root.join(TMP_DIR), root.join(SPOOL_DIR)] {
            std::fs::create_dir_all(&dir).map_err(|e| Error::file(&dir, e))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes one object at `key` (a path relative to the root): first to a
    /// temporary file, then renamed into place, so a reader never sees half
    /// an object and a crash leaves no partial one.
    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<PathBuf> {
        // An object key is a name under the root, never a way out of it.
        if key.starts_with('/') || key.split('/').any(|part| part == ".." || part == ".") {
            return Err(Error::config(format!(
                "object key {key:?} would leave the data directory"
            )));
        }
        let target = self.root.join(key);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::file(parent, e))?;
        }
        // Made again if it went (a data directory emptied while running).
        let tmp_dir = self.root.join(TMP_DIR);
        std::fs::create_dir_all(&tmp_dir).map_err(|e| Error::file(&tmp_dir, e))?;
        let tmp = tmp_dir.join(uuid::Uuid::new_v4().simple().to_string());
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &target)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::file(&target, e)
        })?;
        Ok(target)
    }

    /// The spool directory of one stream.
    pub fn spool_dir(&self, stream: &str) -> PathBuf {
        self.root.join(SPOOL_DIR).join(stream)
    }

    /// Every object under `prefix` (a key prefix ending in `/`), oldest first.
    pub fn list(&self, prefix: &str) -> Vec<PathBuf> {
        objects(&self.root.join(prefix))
    }
}

/// Every file under `dir` except hidden ones (a name starting with `.`, as
/// the temporary and spool directories do), sorted: the objects of a data
/// directory, whoever reads it.
pub fn objects(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => dirs.push(e.path()),
                Ok(_) => out.push(e.path()),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Temporary files, renamed into place when complete.
const TMP_DIR: &str = ".tmp";
/// Acknowledged records not yet delivered.
const SPOOL_DIR: &str = ".spool";

/// `YYYY/MM/DD/HH/`, the UTC time prefix Firehose adds to every key (the
/// edge's dead-letter archive files by the same hours).
pub use edgehose_shared::dead_letter::hour_path;

/// `<stream>-1-YYYY-MM-DD-HH-MM-SS-<random>`, Firehose's object name
/// (stream, stream version, time, a unique suffix).
pub fn object_name(stream: &str, t: Timestamp) -> String {
    let s = t.to_rfc3339();
    format!(
        "{stream}-1-{}-{}-{}-{}-{}-{}-{}",
        &s[0..4],
        &s[5..7],
        &s[8..10],
        &s[11..13],
        &s[14..16],
        &s[17..19],
        uuid::Uuid::new_v4()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_firehose_layout() {
        let t = Timestamp::parse_rfc3339("2026-11-21T09:05:07.250Z").unwrap();
        assert_eq!(hour_path(t), "2026/11/21/09/");
        let name = object_name("clicks", t);
        assert!(name.starts_with("clicks-1-2026-11-21-09-05-07-"), "{name}");
        assert_eq!(name.len(), "clicks-1-2026-11-21-09-05-07-".len() + 36);
    }

    #[test]
    fn an_object_appears_whole_or_not_at_all() {
        let dir = std::env::temp_dir().join(format!("edgehose-store-{}", uuid::Uuid::new_v4()));
        let store = Store::open(&dir).unwrap();
        let path = store.put("a/b/c", b"hello").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        assert_eq!(store.list("a/"), vec![path]);
        // Nothing is left in the temporary folder.
        assert_eq!(std::fs::read_dir(dir.join(TMP_DIR)).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
