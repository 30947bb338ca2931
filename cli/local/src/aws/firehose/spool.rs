//! The spool: every acknowledged record on disk, one JSON line each, until
//! it is delivered.
//!
//! What firehose-local promises: a record is written to the stream's spool
//! (one file per buffer, named for this run) before its call is answered,
//! and the spool file is removed only after every record in it is in the
//! destination or the error prefix. A write that fails part way retires its
//! file (its torn last line is skipped when read back) so the next record
//! starts a new one. Only other runs' files are leftovers, whenever they are
//! listed. A process that is killed loses nothing it acknowledged: the next
//! start delivers what the spool holds first. Delivery is at least once: a
//! crash between writing an object and removing its spool delivers that
//! buffer again. The spool is not fsynced per call, so an operating-system
//! crash or power loss can lose the last moments (Firehose itself keeps
//! records in memory across its own availability zones; this is one disk).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::stream::Record;

/// An open spool file.
pub struct Spool {
    /// Where it is.
    pub path: PathBuf,
    /// Appended to.
    pub file: Box<dyn Write + Send>,
}

/// One record as a spool line.
pub fn spool_line(r: &Record) -> String {
    format!(
        "{}\n",
        serde_json::json!({"id": r.id, "t": r.arrival_ms, "d": B64.encode(&r.data)})
    )
}

/// Reads a spool file written by the stream's `accept`; a torn last line (the
/// process died mid-write, before the call was answered) is skipped.
pub fn read_spool(path: &std::path::Path) -> Vec<Record> {
    let Ok(f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_str(&line).ok()?;
            Some(Record {
                id: v["id"].as_str()?.to_owned(),
                arrival_ms: v["t"].as_i64()?,
                data: B64.decode(v["d"].as_str()?).ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_file_reads_back_and_a_torn_last_line_is_skipped() {
        let dir = std::env::temp_dir().join(format!("edgehose-spool-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.ndjson");
        let a = Record {
            id: "1".into(),
            arrival_ms: 5,
            data: b"{\"x\":1}\n".to_vec(),
        };
        std::fs::write(&path, format!("{}{{\"id\":\"2\",\"t\":", spool_line(&a))).unwrap();
        let back = read_spool(&path);
        assert_eq!(back.len(), 1);
        assert_eq!(
            (back[0].id.as_str(), back[0].arrival_ms, back[0].data.as_slice()),
            ("1", 5, a.data.as_slice())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
