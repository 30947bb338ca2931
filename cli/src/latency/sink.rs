//! Event-to-sink latency: when did each sent event become visible where the
//! data lands? Watches a directory in Firehose's S3 layout (what
//! firehose-local writes, or a synced copy of the bucket) and notes, for every
//! `message_id` it finds, the modification time of the object it is in:
//! objects are written whole and renamed into place, so that is the moment a
//! reader could first see the event.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::firehose::store::objects;

/// The directory and what was found in it so far.
pub struct Sink {
    root: PathBuf,
    read: BTreeSet<PathBuf>,
    seen: BTreeMap<String, SystemTime>,
}

impl Sink {
    /// Watches `root`; objects already there are ignored (they hold earlier runs).
    pub fn new(root: &Path) -> Self {
        let mut sink = Self {
            root: root.to_path_buf(),
            read: BTreeSet::new(),
            seen: BTreeMap::new(),
        };
        sink.read = objects(&sink.root).into_iter().collect();
        sink
    }

    /// Reads objects that appeared since the last look.
    pub fn scan(&mut self) {
        for path in objects(&self.root) {
            // The functions' logs share the directory in local runs.
            if self.read.contains(&path) || path.extension().is_some_and(|e| e == "log") {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let at = meta.modified().unwrap_or_else(|_| SystemTime::now());
            for id in message_ids(&read_object(&path)) {
                self.seen.entry(id).or_insert(at);
            }
            self.read.insert(path);
        }
    }

    /// When `message_id` became visible, if it has.
    pub fn visible_at(&self, message_id: &str) -> Option<SystemTime> {
        self.seen.get(message_id).copied()
    }
}

/// An object's text, gunzipped when it is gzip.
fn read_object(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        let _ = flate2::read::MultiGzDecoder::new(bytes.as_slice()).read_to_string(&mut text);
        text
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The `message_id` of every JSON line that has one (the analyst shape the
/// transform writes, or an envelope's event).
fn message_ids(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            v.get("message_id")
                .or_else(|| v.get("event").and_then(|e| e.get("message_id")))
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_objects_are_read_and_their_ids_timed_but_old_ones_ignored() {
        let dir = std::env::temp_dir().join(format!("edgehose-sink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("2024/05/01/12")).unwrap();
        std::fs::write(dir.join("2024/05/01/12/old"), "{\"message_id\":\"before\"}\n").unwrap();
        let mut sink = Sink::new(&dir);
        std::fs::write(
            dir.join("2024/05/01/12/s-1"),
            "{\"message_id\":\"a\"}\nnot json\n{\"v\":1,\"event\":{\"message_id\":\"b\"}}\n",
        )
        .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"{\"message_id\":\"c\"}\n").unwrap();
        std::fs::write(dir.join("2024/05/01/12/s-2.gz"), gz.finish().unwrap()).unwrap();
        std::fs::create_dir_all(dir.join(".tmp")).unwrap();
        std::fs::write(dir.join(".tmp/partial"), "{\"message_id\":\"d\"}\n").unwrap();
        sink.scan();
        let mtime = std::fs::metadata(dir.join("2024/05/01/12/s-1"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(sink.visible_at("a"), Some(mtime));
        assert!(sink.visible_at("b").is_some() && sink.visible_at("c").is_some());
        assert_eq!((sink.visible_at("before"), sink.visible_at("d")), (None, None));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
