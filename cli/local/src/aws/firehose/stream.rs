//! One delivery stream's intake: the buffer that collects acknowledged
//! records and the spool that keeps them on disk until they are delivered
//! (see [`super::spool`] for what it promises).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::StreamConfig;
use super::spool::{Spool, spool_line};
use super::store::Store;
use crate::clock::now;
use crate::error::{Error, Result};

/// One acknowledged record.
#[derive(Debug, Clone)]
pub struct Record {
    /// The id returned to the client.
    pub id: String,
    /// When it arrived (ms since the epoch).
    pub arrival_ms: i64,
    /// Its bytes.
    pub data: Vec<u8>,
}

#[cfg(test)]
impl Record {
    /// A record of `n` bytes of `x`, arrived at the epoch (for tests).
    pub(crate) fn filled(id: &str, n: usize) -> Self {
        Self {
            id: id.into(),
            arrival_ms: 0,
            data: vec![b'x'; n],
        }
    }
}

/// The buffer being filled.
struct Buffer {
    records: Vec<Record>,
    bytes: usize,
    opened: Option<Instant>,
    /// The spool file being appended to.
    spool: Option<Spool>,
    /// Spool files of this buffer retired after a failed write: removed with
    /// the buffer once it is delivered.
    retired: Vec<PathBuf>,
}

/// A delivery stream and its delivery thread's state.
pub struct Stream {
    /// Its settings.
    pub config: StreamConfig,
    /// Its ARN.
    pub arn: String,
    /// When it was created (seconds since the epoch), for DescribeDeliveryStream.
    pub created: f64,
    /// Names this run's spool files, so a listing of leftovers never takes one.
    run: String,
    buffer: Mutex<Buffer>,
    wake: Condvar,
    flush_now: std::sync::atomic::AtomicBool,
    /// Held while a buffer is delivered: one at a time.
    pub(super) delivering: Mutex<()>,
}

impl Stream {
    /// A stream with an empty buffer.
    pub fn new(config: StreamConfig, arn: String) -> Self {
        Self {
            config,
            arn,
            created: now().as_millis() as f64 / 1000.0,
            run: uuid::Uuid::new_v4().to_string(),
            buffer: Mutex::new(Buffer {
                records: Vec::new(),
                bytes: 0,
                opened: None,
                spool: None,
                retired: Vec::new(),
            }),
            wake: Condvar::new(),
            flush_now: std::sync::atomic::AtomicBool::new(false),
            delivering: Mutex::new(()),
        }
    }

    /// Acknowledges records: spooled to disk, then buffered. The caller
    /// answers the client only after this returns `Ok`.
    pub fn accept(&self, store: &Store, records: Vec<Record>) -> Result<()> {
        let mut b = self.buffer.lock().map_err(|_| Error::Poisoned("a stream's buffer"))?;
        if b.spool.is_none() {
            let dir = store.spool_dir(&self.config.name);
            std::fs::create_dir_all(&dir).map_err(|e| Error::file(&dir, e))?;
            let path = dir.join(format!(
                "{:020}-{}-{}.ndjson",
                now().as_millis(),
                self.run,
                uuid::Uuid::new_v4()
            ));
            let file = std::fs::File::create(&path).map_err(|e| Error::file(&path, e))?;
            b.spool = Some(Spool {
                path,
                file: Box::new(file),
            });
        }
        let mut lines = String::new();
        for r in &records {
            lines.push_str(&spool_line(r));
        }
        if let Some(spool) = &mut b.spool
            && let Err(e) = spool.file.write_all(lines.as_bytes()).and_then(|()| spool.file.flush())
        {
            // Part of a line may be on disk: nothing more goes after it.
            let path = spool.path.clone();
            b.spool = None;
            b.retired.push(path.clone());
            return Err(Error::file(path, e));
        }
        b.opened.get_or_insert_with(Instant::now);
        for r in records {
            b.bytes += r.data.len();
            b.records.push(r);
        }
        if b.bytes >= self.config.buffer_bytes {
            self.wake.notify_all();
        }
        Ok(())
    }

    /// Asks the delivery thread to deliver what is buffered now.
    pub fn request_flush(&self) {
        self.flush_now.store(true, Ordering::SeqCst);
        self.wake.notify_all();
    }

    /// Records buffered and not yet delivered.
    pub fn buffered(&self) -> usize {
        self.buffer.lock().map(|b| b.records.len()).unwrap_or(0)
    }

    /// Spool files of earlier runs in `store`, oldest first.
    pub fn leftovers(&self, store: &Store) -> Vec<PathBuf> {
        let ours = format!("-{}-", self.run);
        let mut files: Vec<PathBuf> = std::fs::read_dir(store.spool_dir(&self.config.name))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().contains(&ours)));
        files.sort();
        files
    }

    /// Waits until the buffer is due (size or interval hint, a flush request,
    /// or `stop`), then takes it with its spool files.
    pub(super) fn take_when_due(&self, stop: &std::sync::atomic::AtomicBool) -> Option<(Vec<Record>, Vec<PathBuf>)> {
        let mut b = self.buffer.lock().ok()?;
        loop {
            let stopping = stop.load(Ordering::SeqCst);
            let forced = self.flush_now.swap(false, Ordering::SeqCst);
            let due = b.bytes >= self.config.buffer_bytes
                || b.opened.is_some_and(|o| o.elapsed() >= self.config.buffer_interval);
            if !b.records.is_empty() && (due || forced || stopping) {
                let records = std::mem::take(&mut b.records);
                let mut spools = std::mem::take(&mut b.retired);
                spools.extend(b.spool.take().map(|s| s.path));
                b.bytes = 0;
                b.opened = None;
                return Some((records, spools));
            }
            if stopping {
                return None;
            }
            b = self.wake.wait_timeout(b, Duration::from_millis(50)).ok()?.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::firehose::spool::read_spool;

    fn stream_in(dir: &std::path::Path) -> (Store, Stream) {
        let store = Store::open(dir).unwrap();
        let stream = Stream::new(StreamConfig::new("s"), "arn".into());
        (store, stream)
    }

    fn spooled(store: &Store) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(store.spool_dir("s"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        let mut ids: Vec<String> = files.iter().flat_map(|p| read_spool(p)).map(|r| r.id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn only_other_runs_spool_files_are_leftovers_whenever_they_are_listed() {
        let dir = std::env::temp_dir().join(format!("edgehose-spool-{}", uuid::Uuid::new_v4()));
        let (store, earlier) = stream_in(&dir);
        earlier.accept(&store, vec![Record::filled("old", 3)]).unwrap();
        let (_, now) = stream_in(&dir);
        // A call acknowledged before the listing: its file is this run's.
        now.accept(&store, vec![Record::filled("new", 3)]).unwrap();
        let leftovers = now.leftovers(&store);
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        assert_eq!(read_spool(&leftovers[0])[0].id, "old");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Writes half of what it is given to the real file, then fails.
    struct HalfThenFail(std::fs::File);

    impl Write for HalfThenFail {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write_all(&buf[..buf.len() / 2])?;
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_that_fails_half_way_does_not_swallow_the_next_record() {
        let dir = std::env::temp_dir().join(format!("edgehose-spool-{}", uuid::Uuid::new_v4()));
        let (store, stream) = stream_in(&dir);
        stream.accept(&store, vec![Record::filled("1", 3)]).unwrap();
        {
            let mut b = stream.buffer.lock().unwrap();
            let spool = b.spool.as_mut().unwrap();
            let file = std::fs::OpenOptions::new().append(true).open(&spool.path).unwrap();
            spool.file = Box::new(HalfThenFail(file));
        }
        assert!(stream.accept(&store, vec![Record::filled("2", 3)]).is_err());
        stream.accept(&store, vec![Record::filled("3", 3)]).unwrap();
        // "2" was refused (its caller was told); "1" and "3" are both kept.
        assert_eq!(spooled(&store), ["1", "3"]);
        // Both files go with the buffer once it is delivered.
        let stop = std::sync::atomic::AtomicBool::new(true);
        let (records, spools) = stream.take_when_due(&stop).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(spools.len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
