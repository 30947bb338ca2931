//! `GET /v1/dead-letters?id=<id>&from=<ms>&to=<ms>` (behind the admin
//! key, `request/admin.rs`): where one event id is in the `DEAD_LETTERS`
//! archive — archived, set aside, or noted as redriven — searched hour by
//! hour over the archive's `YYYY/MM/DD/HH/` keys, so `edgehose trace` finds
//! it on Cloudflare as under `make dev`. The answer says every prefix it
//! searched and any it could not search to the end.

use edgehose_shared::api::{Reply, query_param};
use edgehose_shared::dead_letter::{PREFIX, REDRIVEN_PREFIX, SET_ASIDE_PREFIX, hours_between, lines_with_id};
use edgehose_shared::timestamp::Timestamp;
use serde_json::{Value, json};
use worker::Env;

use crate::clock::now;
use crate::dead_letters;
use crate::js::Bucket;

/// The route.
pub const PATH: &str = "/v1/dead-letters";
/// The longest window one call searches: a week of hours.
const MOST_HOURS: usize = 7 * 24;
/// Objects listed under one hour's prefix at most (one `list` call).
const OBJECTS_PER_HOUR: u32 = 1000;
/// Objects read by one call at most: each read is a subrequest, and an
/// invocation may make 1,000 (<https://developers.cloudflare.com/workers/platform/limits/#subrequests>),
/// some of them the lists.
const MOST_READS: usize = 600;
/// The window searched when none is given: the last day.
const DEFAULT_WINDOW_MS: i64 = 24 * 3_600_000;

/// Answers the search.
pub async fn handle(env: &Env, query: Option<&str>, prefixes: &[String]) -> Reply {
    let param = |name: &str| query.and_then(|q| query_param(q, name));
    let Some(id) = param("id").filter(|i| !i.is_empty()) else {
        return reply(400, error("invalid_parameter", "give the event id: ?id=<id>"));
    };
    let number = |name: &str| {
        param(name).map(|v| {
            v.parse::<i64>()
                .map_err(|_| format!("{name}={v} is not ms since the epoch"))
        })
    };
    let now = now();
    let (from, to) = match (number("from").transpose(), number("to").transpose()) {
        (Ok(from), Ok(to)) => {
            let to = to.map_or(now, Timestamp::from_millis);
            (
                from.map_or(to.add_millis(-DEFAULT_WINDOW_MS), Timestamp::from_millis),
                to,
            )
        }
        (Err(e), _) | (_, Err(e)) => return reply(400, error("invalid_parameter", &e)),
    };
    let hours = hours_between(from, to);
    if hours.len() > MOST_HOURS {
        return reply(
            400,
            error(
                "invalid_parameter",
                &format!(
                    "from–to spans {} hours; one search takes at most {MOST_HOURS}",
                    hours.len()
                ),
            ),
        );
    }
    let (mut searched, mut incomplete, mut found) = (Vec::new(), Vec::new(), Vec::new());
    let mut reads = 0usize;
    // Every region's archive (one without regions).
    for region in prefixes {
        let Some(binding) = dead_letters::bucket(env, region) else {
            return reply(
                500,
                error(
                    "misconfigured",
                    &format!("there is no {region}DEAD_LETTERS bucket binding"),
                ),
            );
        };
        let bucket = Bucket(&binding);
        // Archived and set aside under the hour their earliest event arrived;
        // redrive notes under the hour of the redrive, which is later.
        let mut prefixes: Vec<(&str, String)> = Vec::new();
        for h in &hours {
            prefixes.push(("archived", format!("{PREFIX}{h}")));
            prefixes.push(("set_aside", format!("{SET_ASIDE_PREFIX}{h}")));
        }
        for h in hours_between(from, now).into_iter().take(MOST_HOURS) {
            prefixes.push(("redriven", format!("{REDRIVEN_PREFIX}{h}")));
        }
        for (kind, prefix) in prefixes {
            let (keys, more) = match bucket.list(&prefix, OBJECTS_PER_HOUR).await {
                Ok(listed) => listed,
                Err(e) => {
                    incomplete.push(format!("{prefix}: could not be listed ({e})"));
                    continue;
                }
            };
            if more {
                incomplete.push(format!(
                    "{prefix}: more than {OBJECTS_PER_HOUR} objects; the first searched"
                ));
            }
            let mut read_here = 0;
            for key in keys {
                if reads == MOST_READS {
                    incomplete.push(format!("{prefix}: stopped at {MOST_READS} objects read in one call"));
                    break;
                }
                reads += 1;
                read_here += 1;
                let text = match bucket.get(&key).await {
                    Ok(Some((text, _))) => text,
                    Ok(None) => continue,
                    Err(e) => {
                        incomplete.push(format!("{key}: could not be read ({e})"));
                        continue;
                    }
                };
                for (line, text) in lines_with_id(&text, &id) {
                    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                    let mut hit = json!({"where": kind, "key": key, "line": line, "text": text, "from": v.get("from"), "at": v.get("at")});
                    if !region.is_empty() {
                        hit["region"] = json!(region.trim_end_matches('_').to_ascii_lowercase());
                    }
                    found.push(hit);
                }
            }
            if read_here > 0 {
                searched.push(format!("{region}{prefix} ({read_here} objects)"));
            }
        }
    }
    reply(
        200,
        json!({"id": id, "from": from.as_millis(), "to": to.as_millis(), "searched": searched, "incomplete": incomplete, "found": found}),
    )
}

fn error(code: &str, message: &str) -> Value {
    json!({"error": code, "code": code, "message": message})
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_string(),
    }
}
