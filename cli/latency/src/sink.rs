//! Event-to-sink latency: when did each sent event become visible where the
//! data lands? A thread watches the place (a directory in Firehose's S3
//! layout, or a bucket) while the requests go out, reads every object that
//! appears and notes, for every `message_id` in it, when it became visible:
//!
//! - in a directory (what firehose-local writes, or a synced copy of a
//!   bucket) objects are written whole and renamed into place, so their
//!   modification time is that moment;
//! - in a bucket, the time the listing that first showed the object came
//!   back: an upper bound, late by at most the time between two listings
//!   ([`S3_EVERY`]) plus one listing's round trip. S3's own `LastModified`
//!   is not used: it has whole seconds and another machine's clock.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::s3::{Bucket, Location, credentials_from_env};
use edgehose_local::aws::firehose::store::objects;

use crate::error::{Error, Result};

/// How often a directory is looked at.
pub const DIR_EVERY: Duration = Duration::from_millis(50);
/// How often a bucket is listed (about $0.0006 of LIST requests a minute).
pub const S3_EVERY: Duration = Duration::from_millis(500);

/// Where delivered events are looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A directory in Firehose's S3 layout.
    Dir(PathBuf),
    /// A bucket and key prefix.
    S3 {
        /// Bucket and prefix.
        location: Location,
        /// The region requests are signed for first.
        region: String,
        /// An S3-compatible endpoint instead of AWS's.
        endpoint: Option<String>,
    },
}

impl Place {
    /// `s3://bucket/prefix` (signed for `region`, sent to `endpoint` when
    /// given) or a directory.
    pub fn parse(value: &str, region: &str, endpoint: Option<&str>) -> Result<Self> {
        if value.starts_with("s3://") {
            Ok(Place::S3 {
                location: Location::parse(value)?,
                region: region.to_owned(),
                endpoint: endpoint.map(str::to_owned),
            })
        } else if endpoint.is_some() {
            Err(Error::config(format!(
                "--sink-endpoint is for an s3:// sink, and --sink {value:?} is a directory"
            )))
        } else {
            Ok(Place::Dir(PathBuf::from(value)))
        }
    }

    /// How long to wait for the last event by default: Firehose's default
    /// buffer is 300 s (the regional template's 60 s) before an object is
    /// written, a local one a second.
    pub fn default_timeout(&self) -> Duration {
        match self {
            Place::Dir(_) => Duration::from_secs(60),
            Place::S3 { .. } => Duration::from_secs(400),
        }
    }

    /// For people.
    pub fn describe(&self) -> String {
        match self {
            Place::Dir(d) => d.display().to_string(),
            Place::S3 { location, .. } => format!("s3://{}/{}", location.bucket, location.prefix),
        }
    }
}

/// Where objects are listed and read.
trait Source: Send {
    /// The keys there now, with the time each became visible when the
    /// source knows it.
    fn list(&mut self) -> Result<Vec<(String, Option<SystemTime>)>>;
    /// An object's bytes.
    fn read(&mut self, key: &str) -> Result<Vec<u8>>;
}

struct DirSource(PathBuf);

impl Source for DirSource {
    fn list(&mut self) -> Result<Vec<(String, Option<SystemTime>)>> {
        Ok(objects(&self.0)
            .into_iter()
            // The functions' logs share the directory in local runs.
            .filter(|p| p.extension().is_none_or(|e| e != "log"))
            .filter_map(|p| {
                let at = std::fs::metadata(&p).and_then(|m| m.modified()).ok()?;
                Some((p.to_string_lossy().into_owned(), Some(at)))
            })
            .collect())
    }

    fn read(&mut self, key: &str) -> Result<Vec<u8>> {
        std::fs::read(key).map_err(|e| Error::file(key, e))
    }
}

struct S3Source {
    bucket: Bucket,
    prefix: String,
}

impl Source for S3Source {
    fn list(&mut self) -> Result<Vec<(String, Option<SystemTime>)>> {
        Ok(self
            .bucket
            .list(&self.prefix)?
            .into_iter()
            .map(|o| (o.key, None))
            .collect())
    }

    fn read(&mut self, key: &str) -> Result<Vec<u8>> {
        self.bucket.get(key)
    }
}

/// What the watching thread found so far.
#[derive(Default)]
struct Found {
    seen: BTreeMap<String, SystemTime>,
    objects: usize,
    problem: Option<String>,
}

/// A place being watched for one run's events; dropped, the watch stops.
pub struct Sink {
    found: Arc<Mutex<Found>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    /// Notes the objects already at `place` as old (they hold earlier runs)
    /// and starts looking for new ones, keeping the `message_id`s that start
    /// with `run` (a bucket also holds everyone else's events). A place that
    /// cannot be read at all (no credentials, access denied, no such bucket)
    /// is an error now, before anything is measured.
    pub fn watch(place: &Place, run: &str, tls: Arc<rustls::ClientConfig>, timeout: Duration) -> Result<Self> {
        let (mut source, every): (Box<dyn Source>, Duration) = match place {
            Place::Dir(dir) => (Box::new(DirSource(dir.clone())), DIR_EVERY),
            Place::S3 {
                location,
                region,
                endpoint,
            } => {
                let bucket = Bucket::new(
                    &location.bucket,
                    region,
                    endpoint.as_deref(),
                    credentials_from_env()?,
                    tls,
                    timeout,
                )?;
                let source = S3Source {
                    bucket,
                    prefix: location.prefix.clone(),
                };
                (Box::new(source), S3_EVERY)
            }
        };
        let mut read: BTreeSet<String> = source
            .list()
            .map_err(|e| Error::protocol(format!("the sink {}: {e}", place.describe())))?
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        let found = Arc::new(Mutex::new(Found::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (found, stop, run) = (found.clone(), stop.clone(), run.to_owned());
            std::thread::Builder::new()
                .name("latency-sink".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let problem = look(source.as_mut(), &run, &mut read, &found)
                            .err()
                            .map(|e| e.to_string());
                        lock(&found).problem = problem;
                        let mut slept = Duration::ZERO;
                        while slept < every && !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(10));
                            slept += Duration::from_millis(10);
                        }
                    }
                })
                .map_err(|e| Error::Local(edgehose_local::error::Error::process("starting the sink's watch", e)))?
        };
        Ok(Self {
            found,
            stop,
            thread: Some(thread),
        })
    }

    /// When `message_id` became visible, if it has.
    pub fn visible_at(&self, message_id: &str) -> Option<SystemTime> {
        lock(&self.found).seen.get(message_id).copied()
    }

    /// How many new objects were read so far.
    pub fn objects_read(&self) -> usize {
        lock(&self.found).objects
    }

    /// What went wrong the last time the place was looked at, if anything.
    pub fn problem(&self) -> Option<String> {
        lock(&self.found).problem.clone()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(found: &Mutex<Found>) -> std::sync::MutexGuard<'_, Found> {
    found.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Lists the place once and reads the objects not read before, noting the
/// ids that start with `run`. An object that cannot be read is tried again
/// next time, and does not hold up the others; the last such failure is the
/// answer.
fn look(source: &mut dyn Source, run: &str, read: &mut BTreeSet<String>, found: &Mutex<Found>) -> Result<()> {
    let listing = source.list()?;
    let listed_at = SystemTime::now();
    let mut problem = None;
    for (key, at) in listing {
        if read.contains(&key) {
            continue;
        }
        let bytes = match source.read(&key) {
            Ok(b) => b,
            Err(e) => {
                problem = Some(e);
                continue;
            }
        };
        let text = match text(&key, &bytes) {
            Ok(t) => t,
            Err(e) => {
                problem = Some(e);
                continue;
            }
        };
        let at = at.unwrap_or(listed_at);
        let ids = message_ids(&text, run);
        let mut found = lock(found);
        for id in ids {
            found.seen.entry(id).or_insert(at);
        }
        found.objects += 1;
        read.insert(key);
    }
    problem.map_or(Ok(()), Err)
}

/// An object's text, gunzipped when it is gzip. A gzip object that does not
/// inflate whole is an error naming `key` (not the part before the damage).
fn text(key: &str, bytes: &[u8]) -> Result<String> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_string(&mut text)
            .map_err(|e| Error::protocol(format!("{key}: a gzip object that does not inflate: {e}")))?;
        Ok(text)
    } else {
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// The `message_id` starting with `run` of every JSON line that has one
/// (the analyst shape the transform writes, or an envelope's event). Lines
/// without `run` anywhere are not parsed.
fn message_ids(text: &str, run: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains(run))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            v.get("message_id")
                .or_else(|| v.get("event").and_then(|e| e.get("message_id")))
                .and_then(|m| m.as_str())
                .filter(|m| m.starts_with(run))
                .map(str::to_owned)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for(sink: &Sink, id: &str) -> Option<SystemTime> {
        for _ in 0..200 {
            if let Some(at) = sink.visible_at(id) {
                return Some(at);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    #[test]
    fn new_objects_are_read_and_the_runs_ids_timed_but_old_ones_and_other_traffic_ignored() {
        let dir = std::env::temp_dir().join(format!("edgehose-sink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("2024/05/01/12")).unwrap();
        let obj = |name: &str, text: &str| std::fs::write(dir.join("2024/05/01/12").join(name), text).unwrap();
        obj("old", "{\"message_id\":\"r1-before\"}\n");
        let tls = super::super::probe::tls_config(None).unwrap();
        let sink = Sink::watch(&Place::Dir(dir.clone()), "r1-", tls, Duration::from_secs(1)).unwrap();
        std::fs::create_dir_all(dir.join(".tmp")).unwrap();
        std::fs::write(dir.join(".tmp/partial"), "{\"message_id\":\"r1-d\"}\n").unwrap();
        obj("f.log", "{\"message_id\":\"r1-e\"}\n");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"{\"message_id\":\"r1-c\"}\n").unwrap();
        std::fs::write(dir.join("2024/05/01/12/s-2.gz"), gz.finish().unwrap()).unwrap();
        obj(
            "s-1",
            "{\"message_id\":\"r1-a\"}\nnot json r1-\n{\"v\":1,\"event\":{\"message_id\":\"r1-b\"}}\n{\"message_id\":\"r2-x\",\"p\":\"r1-\"}\n",
        );
        let mtime = std::fs::metadata(dir.join("2024/05/01/12/s-1"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(wait_for(&sink, "r1-a"), Some(mtime));
        assert!(wait_for(&sink, "r1-b").is_some() && wait_for(&sink, "r1-c").is_some());
        let ignored = ["r1-before", "r1-d", "r1-e", "r2-x"].map(|id| sink.visible_at(id));
        assert_eq!(ignored, [None; 4]);
        assert_eq!(sink.problem(), None);
        drop(sink);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_gzip_object_is_an_error_naming_it() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, "{\"message_id\":\"r1-a\"}\n".repeat(50).as_bytes()).unwrap();
        let whole = gz.finish().unwrap();
        assert_eq!(text("k", &whole).unwrap().lines().count(), 50);
        let err = text("2024/05/01/12/s-3.gz", &whole[..whole.len() / 2])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("2024/05/01/12/s-3.gz: a gzip object that does not inflate"),
            "{err}"
        );
    }

    /// A source whose objects reading "AccessDenied" cannot be read.
    struct Flaky(Vec<(&'static str, &'static str)>);

    impl Source for Flaky {
        fn list(&mut self) -> Result<Vec<(String, Option<SystemTime>)>> {
            Ok(self.0.iter().map(|(k, _)| (k.to_string(), None)).collect())
        }
        fn read(&mut self, key: &str) -> Result<Vec<u8>> {
            let (_, text) = self
                .0
                .iter()
                .find(|(k, _)| *k == key)
                .ok_or_else(|| Error::protocol("gone"))?;
            match *text {
                "AccessDenied" => Err(Error::protocol(format!("{key}: {text}"))),
                _ => Ok(text.as_bytes().to_vec()),
            }
        }
    }

    #[test]
    fn an_object_that_cannot_be_read_holds_up_no_other_and_is_tried_again() {
        let mut source = Flaky(vec![
            ("a", "{\"message_id\":\"r-1\"}"),
            ("bad", "AccessDenied"),
            ("c", "{\"message_id\":\"r-2\"}"),
        ]);
        let (mut read, found) = (BTreeSet::new(), Mutex::new(Found::default()));
        let err = look(&mut source, "r-", &mut read, &found).unwrap_err().to_string();
        assert_eq!(err, "bad: AccessDenied");
        assert!(lock(&found).seen.contains_key("r-1") && lock(&found).seen.contains_key("r-2"));
        assert_eq!(read.len(), 2, "the unreadable object stays unread, to be tried again");
        source.0[1] = ("bad", "{\"message_id\":\"r-3\"}");
        look(&mut source, "r-", &mut read, &found).unwrap();
        assert!(lock(&found).seen.contains_key("r-3"));
        assert_eq!((read.len(), lock(&found).objects), (3, 3));
    }

    #[test]
    fn places_are_a_bucket_or_a_directory() {
        let s3 = Place::parse(
            "s3://edgehose-events/events/",
            "eu-west-1",
            Some("http://127.0.0.1:5000"),
        )
        .unwrap();
        assert_eq!(s3.describe(), "s3://edgehose-events/events/");
        assert!(matches!(&s3, Place::S3 { region, .. } if region == "eu-west-1"));
        assert_eq!(
            Place::parse("out/data", "us-east-1", None).unwrap(),
            Place::Dir("out/data".into())
        );
        assert!(Place::parse("out/data", "us-east-1", Some("http://127.0.0.1:5000")).is_err());
        assert!(Place::parse("s3://NO", "us-east-1", None).is_err());
    }
}
