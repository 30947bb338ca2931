//! `edgehose trace <id>`: every place one event id is, and every place
//! looked. The destination's objects (landed as an event, kept as a
//! `rejected` line, or under the error prefix as Firehose's error record),
//! the dead-letter archive (archived, set aside, redriven: searched by the
//! Worker itself, `GET /v1/dead-letters`), and, under `make dev`, what
//! firehose-local still buffers and what the Worker's queues still hold. On
//! AWS the destination is listed hour by hour over the window the id's
//! time (a UUIDv7's) or `--since` gives. "Not found" comes only with the
//! list of places searched.

use std::io::Read as _;
use std::path::PathBuf;

use base64::Engine as _;
use edgehose_latency::s3::Bucket;
use edgehose_local::http::send;
use edgehose_shared::dead_letter::{hours_between, lines_with_id};
use edgehose_shared::rejected::is_rejected_line;
use edgehose_shared::sigv4::uri_encode;
use edgehose_shared::timestamp::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// The most destination objects one trace reads on S3.
pub const MOST_S3_OBJECTS: usize = 5_000;

/// One place the id is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    /// `landed`, `rejected`, `processing_failed`, `dead_lettered`,
    /// `set_aside`, `redriven`, `buffered` (firehose-local) or `queued`.
    pub fate: String,
    /// Where: an object and line, a key, a queue.
    pub location: String,
    /// What the line says (reasons, the error code, the note).
    pub detail: String,
}

/// The answer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Trace {
    /// The id.
    pub id: String,
    /// Every place it is.
    pub found: Vec<Place>,
    /// Every place searched.
    pub looked: Vec<String>,
    /// Places that could not be searched to the end, and why.
    pub incomplete: Vec<String>,
}

/// The Worker that searches its archive.
#[derive(Debug, Clone)]
pub struct Worker {
    /// Its URL.
    pub url: String,
    /// Its `ADMIN_KEY`.
    pub admin_key: String,
}

/// The destination on S3.
pub struct S3Destination {
    /// The bucket.
    pub bucket: Bucket,
    /// The delivery stream's `Prefix` (`events/` …), before `YYYY/MM/DD/HH/`.
    pub prefix: String,
    /// The `ErrorOutputPrefix` up to the output type (`errors/`).
    pub error_prefix: String,
}

/// What to search.
pub struct Options {
    /// The id.
    pub id: String,
    /// The window (ms since the epoch) the event was received in.
    pub from_ms: i64,
    /// Its end.
    pub to_ms: i64,
    /// The archive, through the Worker.
    pub worker: Worker,
    /// Under `make dev`: the data directory and the stream's name.
    pub local: Option<(PathBuf, String)>,
    /// On AWS: the bucket.
    pub s3: Option<S3Destination>,
}

/// The receive time of a UUIDv7 id (its first 48 bits), if it is one.
pub fn uuid_v7_time(id: &str) -> Option<Timestamp> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) || hex.as_bytes()[12] != b'7' {
        return None;
    }
    i64::from_str_radix(&hex[..12], 16).ok().map(Timestamp::from_millis)
}

/// Searches every place.
pub fn trace(o: &mut Options) -> Result<Trace> {
    let mut t = Trace {
        id: o.id.clone(),
        ..Trace::default()
    };
    if let Some((dir, stream)) = &o.local {
        local_destination(&mut t, dir, stream);
        local_buffer(&mut t, dir, stream);
        local_queues(&mut t, &o.worker.url)?;
    }
    if let Some(s3) = o.s3.as_mut() {
        s3_destination(&mut t, s3, o.from_ms, o.to_ms)?;
    }
    archive(&mut t, &o.worker, o.from_ms, o.to_ms)?;
    Ok(t)
}

/// Counts the lines of one object holding the id.
fn search_object(t: &mut Trace, location: &str, bytes: &[u8]) {
    let inflated;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        if flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).is_err() {
            t.incomplete.push(format!("{location}: not readable gzip"));
            return;
        }
        inflated = out;
        &inflated
    } else {
        bytes
    };
    let text = String::from_utf8_lossy(bytes);
    if !text.contains(&t.id) && !text.contains("rawData") {
        return;
    }
    for (n, line) in text.lines().enumerate() {
        if line.contains("\"rawData\"") {
            let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
            let raw = base64::engine::general_purpose::STANDARD
                .decode(v["rawData"].as_str().unwrap_or_default())
                .unwrap_or_default();
            let raw = String::from_utf8_lossy(&raw);
            let error = format!(
                "{}: {}",
                v["errorCode"].as_str().unwrap_or("?"),
                v["errorMessage"].as_str().unwrap_or("")
            );
            for (m, inner) in lines_with_id(&raw, &t.id) {
                // A line the edge judged invalid rides as its `rejected`
                // line, in a record of its own that the transform fails.
                let (fate, detail) = if is_rejected_line(inner) {
                    let reasons: Value = serde_json::from_str(inner).unwrap_or(Value::Null);
                    (
                        "rejected",
                        format!("{}; under the error prefix, {error}", reasons["rejected"]),
                    )
                } else {
                    ("processing_failed", error.clone())
                };
                t.found.push(Place {
                    fate: fate.into(),
                    location: format!("{location} line {} (record line {m})", n + 1),
                    detail,
                });
            }
        } else if let Some((_, line)) = lines_with_id(line, &t.id).into_iter().next() {
            let (fate, detail) = if is_rejected_line(line) {
                let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
                ("rejected", v["rejected"].to_string())
            } else {
                ("landed", String::new())
            };
            t.found.push(Place {
                fate: fate.into(),
                location: format!("{location} line {}", n + 1),
                detail,
            });
        }
    }
}

fn local_destination(t: &mut Trace, dir: &std::path::Path, stream: &str) {
    let prefix = format!("{stream}-1-");
    let mut objects = 0;
    for path in edgehose_local::aws::firehose::store::objects(dir) {
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        {
            continue;
        }
        objects += 1;
        match std::fs::read(&path) {
            Ok(bytes) => search_object(t, &path.display().to_string(), &bytes),
            Err(e) => t.incomplete.push(format!("{}: {e}", path.display())),
        }
    }
    t.looked.push(format!(
        "{objects} objects of stream {stream} in {} (events, rejected lines, processing-failed)",
        dir.display()
    ));
}

fn local_buffer(t: &mut Trace, dir: &std::path::Path, stream: &str) {
    let spool = dir.join(".spool").join(stream);
    let mut files = 0;
    if let Ok(entries) = std::fs::read_dir(&spool) {
        for e in entries.flatten() {
            files += 1;
            for record in edgehose_local::aws::firehose::spool::read_spool(&e.path()) {
                let text = String::from_utf8_lossy(&record.data);
                for (n, _) in lines_with_id(&text, &t.id) {
                    t.found.push(Place {
                        fate: "buffered".into(),
                        location: format!("firehose-local's buffer, record {} line {n}", record.id),
                        detail: "acknowledged by Firehose, not yet written to the destination".into(),
                    });
                }
            }
        }
    }
    t.looked.push(format!(
        "firehose-local's buffer ({files} spool files in {})",
        spool.display()
    ));
}

fn local_queues(t: &mut Trace, worker: &str) -> Result<()> {
    let url = format!(
        "{}/_edgehose/queued?id={}",
        worker.trim_end_matches('/'),
        uri_encode(t.id.as_bytes(), false)
    );
    let answer = get_json(http::Request::get(&url).body(Vec::new())?)?;
    for f in answer["found"].as_array().into_iter().flatten() {
        t.found.push(Place {
            fate: "queued".into(),
            location: "the Worker's events queue".into(),
            detail: format!(
                "{} cop{} waiting, tried {} times by the consumer",
                f["copies"],
                if f["copies"] == 1 { "y" } else { "ies" },
                f["tries"]
            ),
        });
    }
    t.looked.push("the Worker's queues (make dev's stand-in)".into());
    Ok(())
}

fn s3_destination(t: &mut Trace, s3: &mut S3Destination, from_ms: i64, to_ms: i64) -> Result<()> {
    let (from, to) = (Timestamp::from_millis(from_ms), Timestamp::from_millis(to_ms));
    let mut prefixes: Vec<String> = hours_between(from, to)
        .into_iter()
        .map(|h| format!("{}{h}", s3.prefix))
        .collect();
    // Firehose files errors by day: errors/processing-failed/YYYY/MM/DD/.
    let mut days: Vec<String> = hours_between(from, to)
        .into_iter()
        .map(|h| h[..11].to_owned())
        .collect();
    days.dedup();
    prefixes.extend(days.iter().map(|d| format!("{}processing-failed/{d}", s3.error_prefix)));
    let mut read = 0usize;
    for prefix in prefixes {
        let objects = s3
            .bucket
            .list(&prefix)
            .map_err(|e| Error::Answer(format!("listing {prefix}: {e}")))?;
        let mut here = 0;
        for o in objects {
            if read == MOST_S3_OBJECTS {
                t.incomplete.push(format!(
                    "{prefix}: stopped at {MOST_S3_OBJECTS} objects read (narrow --since)"
                ));
                break;
            }
            read += 1;
            here += 1;
            match s3.bucket.get(&o.key) {
                Ok(bytes) => search_object(t, &format!("s3 {}", o.key), &bytes),
                Err(e) => t.incomplete.push(format!("{}: {e}", o.key)),
            }
        }
        t.looked.push(format!("s3 {prefix} ({here} objects)"));
    }
    Ok(())
}

fn archive(t: &mut Trace, worker: &Worker, from_ms: i64, to_ms: i64) -> Result<()> {
    let url = format!(
        "{}/v1/dead-letters?id={}&from={from_ms}&to={to_ms}",
        worker.url.trim_end_matches('/'),
        uri_encode(t.id.as_bytes(), false)
    );
    let request = http::Request::get(&url)
        .header("authorization", format!("Bearer {}", worker.admin_key))
        .body(Vec::new())?;
    let answer = get_json(request)?;
    for f in answer["found"].as_array().into_iter().flatten() {
        let fate = match f["where"].as_str() {
            Some("archived") => "dead_lettered",
            Some(other) => other,
            None => "?",
        };
        let detail = if fate == "redriven" {
            format!(
                "redriven from {} at {}",
                f["from"].as_str().unwrap_or("?"),
                f["at"]
                    .as_i64()
                    .map_or("?".into(), |ms| Timestamp::from_millis(ms).to_rfc3339())
            )
        } else {
            String::new()
        };
        t.found.push(Place {
            fate: fate.into(),
            location: format!("R2 {} line {}", f["key"].as_str().unwrap_or("?"), f["line"]),
            detail,
        });
    }
    for s in answer["searched"].as_array().into_iter().flatten() {
        t.looked.push(format!("R2 {}", s.as_str().unwrap_or_default()));
    }
    if answer["searched"].as_array().is_none_or(Vec::is_empty) {
        t.looked
            .push("R2 dead-letter archive (no objects in the window)".into());
    }
    for s in answer["incomplete"].as_array().into_iter().flatten() {
        t.incomplete.push(format!("R2 {}", s.as_str().unwrap_or_default()));
    }
    Ok(())
}

fn get_json(request: http::Request<Vec<u8>>) -> Result<Value> {
    let uri = request.uri().to_string();
    let response = send(request)?;
    if response.status != 200 {
        return Err(Error::Answer(format!(
            "{uri}: HTTP {} {}",
            response.status,
            response.text()
        )));
    }
    serde_json::from_slice(&response.body).map_err(|e| Error::Answer(format!("{uri}: {e}")))
}

/// The answer for people.
pub fn text(t: &Trace) -> String {
    let mut out = String::new();
    if t.found.is_empty() {
        out.push_str(&format!("{}: not found\n", t.id));
    } else {
        out.push_str(&format!("{}:\n", t.id));
        for p in &t.found {
            out.push_str(&format!("  {:<18} {}", p.fate, p.location));
            if !p.detail.is_empty() {
                out.push_str(&format!("  ({})", p.detail));
            }
            out.push('\n');
        }
    }
    out.push_str("looked in:\n");
    for l in &t.looked {
        out.push_str(&format!("  {l}\n"));
    }
    if !t.incomplete.is_empty() {
        out.push_str("not searched to the end:\n");
        for l in &t.incomplete {
            out.push_str(&format!("  {l}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_v7_gives_its_time_and_other_ids_none() {
        let t = uuid_v7_time("0192d1a4-5b3c-7def-8123-456789abcdef").unwrap();
        assert_eq!(t.as_millis(), 0x0192_d1a4_5b3c);
        assert!(uuid_v7_time("0192d1a4-5b3c-4def-8123-456789abcdef").is_none(), "v4");
        assert!(uuid_v7_time("m-1").is_none());
    }

    #[test]
    fn an_object_is_searched_line_by_line_error_records_through_their_raw_data() {
        let mut t = Trace {
            id: "e-1".into(),
            ..Trace::default()
        };
        let landed = r#"{"id":"e-1","event":"x","received_at":"2024-05-01T12:30:00.250Z"}"#;
        let other = r#"{"id":"e-2","event":"e-1","received_at":"2024-05-01T12:30:00.250Z"}"#;
        search_object(&mut t, "a", format!("{other}\n{landed}\n").as_bytes());
        let envelope = r#"{"v":1,"id":"e-1","received_at":1714566600250,"event_time":1,"event":{}}"#;
        let record = serde_json::json!({"rawData": base64::engine::general_purpose::STANDARD.encode(envelope), "errorCode": "Lambda.ProcessingFailed", "errorMessage": "invalid"});
        search_object(&mut t, "b", record.to_string().as_bytes());
        assert_eq!(
            t.found
                .iter()
                .map(|p| (p.fate.as_str(), p.location.as_str()))
                .collect::<Vec<_>>(),
            [
                ("landed", "a line 2"),
                ("processing_failed", "b line 1 (record line 1)")
            ]
        );
        assert!(t.found[1].detail.starts_with("Lambda.ProcessingFailed"));
    }
}
