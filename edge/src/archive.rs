//! The dead letters' durable home. A queue keeps messages for days, then
//! they are gone; so this Worker also consumes its dead-letter queue and
//! writes each batch as one NDJSON object to the `DEAD_LETTERS` R2 bucket,
//! under `dead-letters/YYYY/MM/DD/HH/`, acking the batch only once the
//! object is stored. The lines are kept as they came (ids and all), so
//! `redrive.rs` can send them through the normal path again. A message that
//! is not text is kept as a `rejected` line holding its body as text.

use edgehose_shared::rejected::Rejected;
use edgehose_shared::timestamp::Timestamp;
use edgehose_shared::validate::{Reason, Violation};
use wasm_bindgen::JsValue;
use worker::{Env, console_error, console_log};

use crate::clock::now;
use crate::js::{Bucket, QueueBatch};

/// The bucket binding.
pub const DEAD_LETTERS: &str = "DEAD_LETTERS";
/// Where archived dead letters are kept in it.
pub const PREFIX: &str = "dead-letters/";

/// The `DEAD_LETTERS` binding, when there is one.
pub fn bucket(env: &Env) -> Option<JsValue> {
    js_sys::Reflect::get(env, &JsValue::from_str(DEAD_LETTERS))
        .ok()
        .filter(|b| !b.is_undefined() && !b.is_null())
}

/// Archives a batch from the dead-letter queue.
pub async fn archive(env: &Env, batch: &QueueBatch) {
    let messages = batch.messages();
    let keep_all = vec![true; messages.len()];
    let Some(binding) = bucket(env) else {
        console_error!(
            "edgehose: {} dead letters stay in the dead-letter queue: there is no {DEAD_LETTERS} bucket binding to archive them in",
            messages.len()
        );
        batch.settle(&keep_all);
        return;
    };
    let mut text = String::new();
    for (i, m) in messages.iter().enumerate() {
        match &m.body {
            Some(body) => {
                for line in body.lines().filter(|l| !l.is_empty()) {
                    text.push_str(line);
                    text.push('\n');
                }
            }
            None => {
                let (kind, content) = batch.body_as_text(i);
                let why = [Violation::new(
                    Reason::NotAnEnvelope,
                    "",
                    format!(
                        "queue message {} was not text; its body, as {kind}, is the envelope",
                        m.id
                    ),
                )];
                text.push_str(&Rejected::new("", None, &why, &content).to_line());
                text.push('\n');
            }
        }
    }
    let at = now();
    let first = messages.first().map_or("", |m| m.id.as_str());
    let key = format!("{PREFIX}{}{:013}-{first}.ndjson", hour_path(at), at.as_millis());
    match Bucket(&binding).put(&key, text.as_bytes()).await {
        Ok(()) => {
            console_log!(
                "edgehose: archived {} dead letters ({} lines) as {key}",
                messages.len(),
                text.lines().count()
            );
            batch.settle(&vec![false; messages.len()]);
        }
        Err(e) => {
            console_error!(
                "edgehose: could not archive {} dead letters ({e}); the queue redelivers them",
                messages.len()
            );
            batch.settle(&keep_all);
        }
    }
}

/// `YYYY/MM/DD/HH/` of `t`, UTC.
fn hour_path(t: Timestamp) -> String {
    let b = t.rfc3339_bytes();
    let s = String::from_utf8_lossy(&b);
    format!("{}/{}/{}/{}/", &s[0..4], &s[5..7], &s[8..10], &s[11..13])
}
