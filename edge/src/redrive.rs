//! The way back for dead letters: `POST /v1/redrive` (bearer `ADMIN_KEY`)
//! takes the oldest archived objects (`archive.rs`), sends their lines
//! through the normal path again — judged, packed, signed, retried — and
//! deletes each object only once every line in it has landed. Ids are kept,
//! so running it again after a failure can at worst land a line twice under
//! the same id. `GET /v1/redrive` says how much is archived. `edgehose
//! redrive` calls it until nothing is left.

use edgehose_shared::api::Reply;
use edgehose_shared::sigv4::verify::constant_time_eq;
use serde_json::json;
use worker::{Env, console_error, console_log};

use crate::archive::{self, PREFIX};
use crate::config::EdgeConfig;
use crate::js::Bucket;
use crate::send::send;

/// The route.
pub const PATH: &str = "/v1/redrive";
/// Objects one call redrives at most (each within the consumer's retry budget).
const OBJECTS_PER_CALL: u32 = 10;
/// How far `GET` counts.
const COUNT_LIMIT: u32 = 1000;

/// Whether a request may redrive: `Authorization: Bearer <ADMIN_KEY>`.
pub fn check(config: &EdgeConfig, authorization: Option<&str>) -> Result<(), Reply> {
    let Some(admin) = config.admin_key.as_deref() else {
        return Err(reply(
            404,
            json!({"error": "not_found", "code": "not_found", "message": "redrive is off: set the ADMIN_KEY secret to turn it on"}),
        ));
    };
    let presented = authorization.and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
    if constant_time_eq(presented.as_bytes(), admin.as_bytes()) {
        Ok(())
    } else {
        Err(reply(
            401,
            json!({"error": "invalid_key", "code": "invalid_key", "message": "redrive needs Authorization: Bearer <ADMIN_KEY>"}),
        ))
    }
}

/// Answers `GET` (counts) or `POST` (redrives a round).
pub async fn handle(config: &EdgeConfig, env: &Env, method: &str) -> Reply {
    let Some(binding) = archive::bucket(env) else {
        return reply(
            500,
            json!({"error": "misconfigured", "code": "misconfigured", "message": "there is no DEAD_LETTERS bucket binding"}),
        );
    };
    let bucket = Bucket(&binding);
    let result = match method {
        "GET" => count(&bucket)
            .await
            .map(|(objects, more)| json!({"archived_objects": objects, "more": more})),
        "POST" => round(config, &bucket).await,
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

/// Redrives up to [`OBJECTS_PER_CALL`] objects, oldest first; stops at the
/// first that does not land whole (it stays archived).
async fn round(config: &EdgeConfig, bucket: &Bucket<'_>) -> Result<serde_json::Value, String> {
    let (keys, _) = bucket.list(PREFIX, OBJECTS_PER_CALL).await?;
    let (mut objects, mut events) = (0usize, 0usize);
    let mut failure = None;
    for key in keys {
        let Some(text) = bucket.get(&key).await? else { continue };
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        match send(config, &lines, config.consumer_retry).await {
            Ok(()) => {
                bucket.delete(&key).await?;
                objects += 1;
                events += lines.len();
            }
            Err(lost) => {
                failure = Some(format!(
                    "{key}: {} of its {} lines did not land ({}); it stays archived",
                    lost.lines.len(),
                    lines.len(),
                    lost.reason
                ));
                break;
            }
        }
    }
    let (left, more) = count(bucket).await?;
    console_log!("edgehose: redrove {events} events from {objects} archived objects; {left} objects left");
    Ok(json!({
        "redriven_objects": objects,
        "redriven_events": events,
        "archived_objects": left,
        "more": more,
        "error": failure,
    }))
}

async fn count(bucket: &Bucket<'_>) -> Result<(usize, bool), String> {
    let (keys, more) = bucket.list(PREFIX, COUNT_LIMIT).await?;
    Ok((keys.len(), more))
}

fn reply(status: u16, body: serde_json::Value) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_string(),
    }
}
