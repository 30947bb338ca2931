//! Where dead letters go. Lines that could not be delivered are written
//! straight to the `DEAD_LETTERS` R2 archive, under a key made from the
//! lines (a second write of the same lines stores nothing new), where
//! `edgehose redrive` brings them back. No queue stands between: a queue that
//! refuses (over its rate, in an incident) cannot drop them. Where R2 fails
//! too, the lines go back to an events queue, whose consumer tries them again
//! later; only where that fails as well are they lost, and then the log says
//! LOST with every id and the isolate counts them (`GET /healthz`).
//!
//! The rest of where dead letters go: `queue_consumer.rs` archives what
//! Cloudflare moves to the dead-letter queue, `redrive.rs` brings archived
//! lines back (`/v1/redrive`), and `find.rs` says where one event id is in
//! the archive (`GET /v1/dead-letters`).

pub(crate) mod find;
pub(crate) mod queue_consumer;
pub(crate) mod redrive;

use edgehose_shared::dead_letter::{archive_body, archive_key};
use edgehose_shared::deadline::Deadline;
use edgehose_shared::limits::DEAD_LETTER_WRITE_TIMEOUT_MS;
use edgehose_shared::outcome::{LineAccount, Outcome, why};
use edgehose_shared::timestamp::Timestamp;
use wasm_bindgen::JsValue;
use worker::{Env, console_error};

use crate::clock::now;
use crate::config::EdgeConfig;
use crate::js::Bucket;
use crate::queue::produce::{self, Write};
use crate::receipts;

/// The bucket binding (with `REGIONS`, each region's: `EU_DEAD_LETTERS`).
pub const DEAD_LETTERS: &str = "DEAD_LETTERS";

/// The archive binding of the region whose bindings start with `prefix`
/// (`""` without regions), when there is one.
pub fn bucket(env: &JsValue, prefix: &str) -> Option<JsValue> {
    crate::js::binding(env, &format!("{prefix}{DEAD_LETTERS}"))
}

/// Writes `lines` to the archive of the region of `prefix` as one object
/// under their content key, tried twice, each write inside what is left of
/// `deadline`. The key, or why they could not be stored.
pub async fn archive<S: AsRef<str>>(
    env: &JsValue,
    prefix: &str,
    lines: &[S],
    deadline: Deadline,
) -> Result<String, String> {
    let Some(binding) = bucket(env, prefix) else {
        return Err(format!("there is no {prefix}{DEAD_LETTERS} bucket binding"));
    };
    let key = archive_key(lines, now());
    let body = archive_body(lines);
    let mut why = String::from("no time was left to write it");
    for _ in 0..2 {
        let timeout_ms = deadline.step_ms(now(), DEAD_LETTER_WRITE_TIMEOUT_MS);
        if timeout_ms == 0 {
            break;
        }
        match Bucket(&binding).put(&key, body.as_bytes(), 0, timeout_ms).await {
            Ok(()) => return Ok(key),
            Err(e) => why = e,
        }
    }
    Err(format!("the archive refused {key}: {why}"))
}

/// Dead-letters lines from the request path (direct mode, a window):
/// the archive, else back to an events queue, else LOST, logged by id.
/// `reason` is in words and as an outcome reason (`shared::outcome::why`).
pub async fn dead_letter(
    config: &EdgeConfig,
    env: &Env,
    lines: &[String],
    (reason, code): (&str, &str),
    deadline: Deadline,
) {
    if lines.is_empty() {
        return;
    }
    let ids = ids(lines).join(",");
    let archived = match archive(env, &config.binding_prefix(), lines, deadline).await {
        Ok(key) => {
            receipts::count_dead_letters(lines, code);
            console_error!(
                "edgehose: {} events dead-lettered to {key} ({reason}); ids: {ids}",
                lines.len()
            );
            return;
        }
        Err(e) => e,
    };
    // The queue's consumer delivers them when the sink is back, later.
    let later = Write {
        tries: 1,
        delay_seconds: 0,
        deadline,
    };
    match produce::enqueue(config, env, lines, later).await {
        Ok(()) => console_error!(
            "edgehose: {} undelivered events ({reason}) could not be archived ({archived}); handed to the events queue instead; ids: {ids}",
            lines.len()
        ),
        Err((unsent, refused)) => lost(&unsent, &format!("{reason}; {archived}; {refused}")),
    }
}

/// Logs lines kept nowhere, with every id, and counts them.
pub fn lost(lines: &[String], why: &str) {
    receipts::count_lines(lines, Outcome::Lost, why::NOWHERE);
    console_error!(
        "edgehose: LOST {} events ({why}); ids: {}",
        lines.len(),
        ids(lines).join(",")
    );
}

/// The envelope ids of some lines, for the log (`?` for a line without one).
pub fn ids<S: AsRef<str>>(lines: &[S]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let id = LineAccount::of(l.as_ref(), Timestamp::from_millis(0)).id;
            if id.is_empty() { "?".to_owned() } else { id }
        })
        .collect()
}
