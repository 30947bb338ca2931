//! The way back for dead letters: `POST /v1/redrive` (bearer `ADMIN_KEY`,
//! which `request/admin.rs` checks first) takes the oldest archived objects
//! (`mod.rs` writes them), sends their lines through the normal path again
//! — judged, packed, signed, retried — and deletes each object once every
//! line in it has landed, keeping only what did not land of the others. Ids
//! are kept, so running it again after a failure can at worst land a line
//! twice under the same id. `GET /v1/redrive` says how much is archived and set aside.
//! `edgehose redrive` calls it until nothing is left.

use edgehose_shared::api::Reply;
use edgehose_shared::dead_letter::{
    PREFIX, REDRIVE_MAX_ATTEMPTS, SET_ASIDE_PREFIX, archive_body, redriven_body, redriven_key,
};
use edgehose_shared::deadline::Deadline;
use edgehose_shared::limits::DEAD_LETTER_WRITE_TIMEOUT_MS as WRITE_TIMEOUT_MS;
use edgehose_shared::outcome::Outcome;
use edgehose_shared::requeue::QueueBody;
use serde_json::json;
use worker::{Env, console_error, console_log};

use crate::clock::now;
use crate::config::EdgeConfig;
use crate::dead_letters;
use crate::js::Bucket;
use crate::receipts;
use crate::sinks::send::send;

/// The route.
pub const PATH: &str = "/v1/redrive";
/// Objects one call redrives at most (each within the consumer's retry budget).
const OBJECTS_PER_CALL: u32 = 10;
/// How far `GET` counts.
const COUNT_LIMIT: u32 = 1000;
/// How long one round may take: `edgehose redrive` calls again for more.
const ROUND_MS: u64 = 60_000;

/// Answers `GET` (counts) or `POST` (redrives a round), for every region:
/// each region's archive redriven to its own sink, the figures summed
/// (and, with regions, each region's under `regions`).
pub async fn handle(config: &EdgeConfig, env: &Env, method: &str) -> Reply {
    if !matches!(method, "GET" | "POST") {
        return reply(
            405,
            json!({"error": "method_not_allowed", "code": "method_not_allowed", "message": format!("{method} is not allowed here; use GET or POST")}),
        );
    }
    let mut total = serde_json::Map::new();
    let mut by_region = serde_json::Map::new();
    for region in config.each_region() {
        let prefix = region.binding_prefix();
        let answer = handle_region(region, env, method, &prefix).await;
        if answer.status != 200 {
            return answer;
        }
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
        for (k, v) in body.as_object().into_iter().flatten() {
            let sum = match (total.get(k), v) {
                (Some(serde_json::Value::Number(a)), serde_json::Value::Number(b)) => {
                    json!(a.as_u64().unwrap_or(0) + b.as_u64().unwrap_or(0))
                }
                (Some(serde_json::Value::Bool(a)), serde_json::Value::Bool(b)) => json!(*a || *b),
                (Some(serde_json::Value::String(a)), serde_json::Value::String(b)) => json!(format!("{a}; {b}")),
                (Some(a), serde_json::Value::Null) => a.clone(),
                _ => v.clone(),
            };
            total.insert(k.clone(), sum);
        }
        if let Some(r) = &region.residency {
            by_region.insert(r.name.clone(), body);
        }
    }
    if !by_region.is_empty() {
        total.insert("regions".into(), serde_json::Value::Object(by_region));
    }
    reply(200, serde_json::Value::Object(total))
}

/// [`handle`] for the archive of one region (bindings starting `prefix`).
async fn handle_region(config: &EdgeConfig, env: &Env, method: &str, prefix: &str) -> Reply {
    let Some(binding) = dead_letters::bucket(env, prefix) else {
        return reply(
            500,
            json!({"error": "misconfigured", "code": "misconfigured", "message": format!("there is no {prefix}DEAD_LETTERS bucket binding")}),
        );
    };
    let bucket = Bucket(&binding);
    let result = match method {
        "GET" => match (count(&bucket, PREFIX).await, count(&bucket, SET_ASIDE_PREFIX).await) {
            (Ok((objects, more)), Ok((aside, _))) => {
                Ok(json!({"archived_objects": objects, "more": more, "set_aside_objects": aside}))
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        "POST" => {
            let round = round(config, &bucket).await;
            receipts::flush(env);
            round
        }
        m => {
            return reply(
                405,
                json!({"error": "method_not_allowed", "code": "method_not_allowed", "message": format!("{m} is not allowed here; use GET or POST")}),
            );
        }
    };
    match result {
        Ok(body) => reply(200, body),
        Err(e) => {
            console_error!("edgehose: redrive: {e}");
            reply(
                503,
                json!({"error": "unavailable", "code": "unavailable", "message": format!("the archive could not be read: {e}")}),
            )
        }
    }
}

/// Redrives up to [`OBJECTS_PER_CALL`] objects, oldest first, within
/// [`ROUND_MS`]; an object that does not land is skipped, not a stop. An
/// object whose lines all land is removed; one that lands in part keeps
/// only the lines that did not. A failure counts against an object when the
/// sink took something else in the same round, or refused it for good (a
/// sink that is down takes nothing, and blames no object); after
/// [`REDRIVE_MAX_ATTEMPTS`] counted failures it is set aside under
/// [`SET_ASIDE_PREFIX`], so one poison object cannot block the archive.
async fn round(config: &EdgeConfig, bucket: &Bucket<'_>) -> Result<serde_json::Value, String> {
    struct Failed {
        key: String,
        left: String,
        failed_before: u32,
        partial: bool,
        fatal: bool,
        why: String,
        /// The lines that landed, counted redriven once the object keeps only the rest.
        landed: Vec<String>,
    }
    let deadline = Deadline::after(now(), ROUND_MS);
    let (keys, _) = bucket.list(PREFIX, OBJECTS_PER_CALL).await?;
    let (mut objects, mut events, mut set_aside) = (0usize, 0usize, 0usize);
    let mut failed: Vec<Failed> = Vec::new();
    for key in keys {
        if deadline.passed(now()) {
            break;
        }
        let Some((text, failed_before)) = bucket.get(&key).await? else {
            continue;
        };
        let lines = QueueBody::parse(&text).lines;
        match send(config, &lines, config.consumer_retry, deadline).await {
            Ok(()) => {
                note_redriven(bucket, &key, &lines).await;
                bucket.delete(&key).await?;
                receipts::count_lines(&lines, Outcome::Redriven, "");
                objects += 1;
                events += lines.len();
            }
            Err(lost) => {
                events += lines.len() - lost.lines.len();
                let left: Vec<&str> = lost.lines.iter().map(|(i, _)| lines[*i]).collect();
                let landed = lines
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !lost.lines.iter().any(|(j, _)| j == i))
                    .map(|(_, l)| (*l).to_owned())
                    .collect();
                failed.push(Failed {
                    why: format!(
                        "{key}: {} of its {} lines did not land ({})",
                        lost.lines.len(),
                        lines.len(),
                        lost.reason
                    ),
                    left: archive_body(&left),
                    partial: left.len() < lines.len(),
                    fatal: lost.fatal,
                    key,
                    failed_before,
                    landed,
                });
            }
        }
    }
    let mut failures = Vec::new();
    for f in failed {
        let counts = objects > 0 || f.fatal;
        let failed_now = f.failed_before + u32::from(counts);
        let timeout_ms = WRITE_TIMEOUT_MS;
        if failed_now >= REDRIVE_MAX_ATTEMPTS {
            let aside = format!("{SET_ASIDE_PREFIX}{}", f.key.strip_prefix(PREFIX).unwrap_or(&f.key));
            note_redriven(bucket, &f.key, &f.landed).await;
            bucket.put(&aside, f.left.as_bytes(), failed_now, timeout_ms).await?;
            bucket.delete(&f.key).await?;
            receipts::count_lines(&f.landed, Outcome::Redriven, "");
            set_aside += 1;
            console_error!(
                "edgehose: redrive set aside {aside} after {failed_now} failed rounds: {}",
                f.why
            );
        } else if counts || f.partial {
            // Only what did not land stays archived, with its count.
            note_redriven(bucket, &f.key, &f.landed).await;
            bucket.put(&f.key, f.left.as_bytes(), failed_now, timeout_ms).await?;
            receipts::count_lines(&f.landed, Outcome::Redriven, "");
        }
        failures.push(format!(
            "{}; failed rounds {failed_now} of {REDRIVE_MAX_ATTEMPTS}",
            f.why
        ));
    }
    let (left, more) = count(bucket, PREFIX).await?;
    let (aside, _) = count(bucket, SET_ASIDE_PREFIX).await?;
    console_log!(
        "edgehose: redrove {events} events from {objects} archived objects; {left} objects left, {aside} set aside"
    );
    Ok(json!({
        "redriven_objects": objects,
        "redriven_events": events,
        "archived_objects": left,
        "set_aside_objects": aside,
        "set_aside_now": set_aside,
        "more": more,
        "error": (!failures.is_empty()).then(|| failures.join("; ")),
    }))
}

/// Notes which events of the archived object `key` were redriven (for
/// `edgehose trace`), before the object changes. A note that cannot be
/// written costs only that trail, never the events: it is logged.
async fn note_redriven<S: AsRef<str>>(bucket: &Bucket<'_>, key: &str, lines: &[S]) {
    if lines.is_empty() {
        return;
    }
    let at = now();
    let ids = dead_letters::ids(lines);
    let body = redriven_body(&ids, key, at);
    if let Err(e) = bucket
        .put(&redriven_key(key, at), body.as_bytes(), 0, WRITE_TIMEOUT_MS)
        .await
    {
        console_error!(
            "edgehose: redrive could not note that {} events of {key} were redriven ({e})",
            ids.len()
        );
    }
}

async fn count(bucket: &Bucket<'_>, prefix: &str) -> Result<(usize, bool), String> {
    let (keys, more) = bucket.list(prefix, COUNT_LIMIT).await?;
    Ok((keys.len(), more))
}

fn reply(status: u16, body: serde_json::Value) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_string(),
    }
}
