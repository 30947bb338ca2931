//! PostHog's door through the API ([`crate::posthog`]): the start calls the
//! SDKs make answered, a capture's events read and enveloped, and the v1
//! route's answer of one result per event — PostHog's four from the
//! verdicts of [`crate::verdicts`]:
//!
//! | edgehose | PostHog | when |
//! |---|---|---|
//! | `ok` | `ok` | valid by the edge's rules |
//! | `ok`, labelled | `warning` | kept in a labelled lane (past a rate limit, a bot verdict): `details` says which |
//! | `rejected` | `drop` | it breaks a rule: kept under the error prefix with its reasons, never in the table; `details` names them |
//! | not kept | `retry` | the queue or the sink could not take the request: the whole batch, with `Retry-After` |

use serde_json::{Map, Value, json};

use super::{
    Accepted, ApiConfig, ApiError, Body, Ingest, Prepared, Reply, RequestContext, cors_headers, credentialed_cors,
    identify, preflight, with_verdicts,
};
use crate::clock::RandomSource;
use crate::decode;
use crate::envelope::{self, Dialect, EdgeMeta};
use crate::label::Label;
use crate::posthog::{self, Route, Start};
use crate::timestamp::Timestamp;

/// Answers a start call: `/flags/`, `/decide/`, `/array/<token>/config[.js]`.
pub(super) fn posthog_start(
    head: &super::RequestHead<'_>,
    config: &ApiConfig,
    start: Start<'_>,
) -> Result<Prepared, ApiError> {
    let allow = match start {
        Start::Flags => "GET, POST, OPTIONS",
        Start::RemoteConfig { .. } => "GET, HEAD, OPTIONS",
    };
    let taken = match (&start, head.method) {
        (_, "OPTIONS") => return preflight(head, config, None),
        (Start::Flags, "GET" | "POST") | (Start::RemoteConfig { .. }, "GET" | "HEAD") => true,
        _ => false,
    };
    if !taken {
        return Err(ApiError::MethodNotAllowed {
            method: head.method.to_owned(),
            allow,
        });
    }
    if let Some(origin) = head.origin
        && !config.origins.allows(origin)
    {
        return Err(ApiError::OriginNotAllowed(origin.to_owned()));
    }
    let mut headers = if config.identity.is_some() {
        credentialed_cors(head.origin, config)
    } else {
        cors_headers(head.origin, config)
    };
    let body = match start {
        Start::Flags => {
            headers.push(("cache-control", "no-store".to_owned()));
            posthog::flags_answer()
        }
        Start::RemoteConfig { token, script } => {
            // The token in the path is the site's write key: a mistyped one
            // is told here, before its events are refused.
            if config.write_keys.is_enabled() {
                identify(config, token, head.origin, head.received_at)?;
            }
            headers.push(("cache-control", "public, max-age=300".to_owned()));
            if script {
                headers.push(("content-type", "application/javascript".to_owned()));
                posthog::remote_config_script(token)
            } else {
                posthog::REMOTE_CONFIG.to_owned()
            }
        }
    };
    Ok(Prepared::Reply(Reply {
        status: 200,
        headers,
        body,
    }))
}

/// Reads, checks and envelopes a PostHog request's events.
pub(super) fn accept_posthog(
    ingest: &Ingest,
    route: Route,
    body: Body<'_>,
    edge: &EdgeMeta<'_>,
    config: &ApiConfig,
    received_at: Timestamp,
    random: &dyn RandomSource,
) -> Result<Accepted, Reply> {
    let refuse = |e: ApiError| e.reply(ingest.cors.clone());
    // Gzip named by `Content-Encoding`, or (posthog-js's gzip-js) by its
    // first bytes alone: inflated by the shell's runtime, or here.
    let sniffed = body.content_encoding.is_none_or(|e| e.trim().is_empty())
        && (body.inflated.is_some() || posthog::is_gzip(body.bytes));
    let encoding = if sniffed { Some("gzip") } else { body.content_encoding };
    let bytes =
        decode::decompress_with(body.bytes, encoding, body.inflated, &config.limits).map_err(|e| refuse(e.into()))?;
    let request = match route {
        Route::Capture => posthog::unwrap_capture(&bytes, body.content_type, ingest.query.as_deref())
            .and_then(|payload| posthog::read_capture(&payload, &config.limits)),
        Route::AnalyticsV1 => posthog::read_v1(&bytes, &config.limits),
    }
    .map_err(|e| refuse(e.into()))?;
    let key_id = if ingest.key_in_body {
        let presented = request.token.as_deref().ok_or(ApiError::MissingKey).map_err(refuse)?;
        identify(config, presented, ingest.origin.as_deref(), received_at).map_err(refuse)?
    } else {
        ingest.key_id.clone()
    };
    let ctx = RequestContext {
        received_at,
        key_id: key_id.as_deref(),
        edge,
        content_type: body.content_type,
        dialect: Dialect::PostHog {
            sent_at: request.sent_at,
        },
    };
    let lines: Vec<String> = request
        .events
        .iter()
        .map(|e| match &ingest.sdk_info {
            Some(sdk) => envelope::wrap_event(&ctx, &posthog::with_library(e, sdk), random),
            None => envelope::wrap_event(&ctx, e, random),
        })
        .collect();
    let (answer, per_event) = match route {
        Route::Capture => (
            with_verdicts(ingest, config, &lines, posthog::CAPTURE_ANSWER.to_owned()),
            false,
        ),
        Route::AnalyticsV1 => (v1_answer(&lines, config), true),
    };
    Ok(Accepted {
        reply: Reply {
            status: 200,
            headers: ingest.cors.clone(),
            body: answer,
        },
        count: lines.len(),
        cell: ingest.cell(ctx.key_id, received_at),
        quarantined: 0,
        lines,
        label: Label::default(),
        per_event,
    })
}

/// The v1 answer: each event's verdict as PostHog's `ok` or `drop`.
fn v1_answer(lines: &[String], config: &ApiConfig) -> String {
    let rules = crate::judge::Rules {
        limits: &config.limits,
        sources: &config.sources,
    };
    let results: Map<String, Value> = crate::verdicts::results(lines, rules)
        .into_iter()
        .map(|(id, verdict)| {
            let result = match verdict["result"].as_str() {
                Some("ok") => json!({"result": "ok"}),
                _ => json!({"result": "drop", "details": details_of(&verdict["details"])}),
            };
            (id, result)
        })
        .collect();
    json!({ "results": results }).to_string()
}

/// A verdict's violations as one line: `missing_field distinct_id: …; …`.
fn details_of(details: &Value) -> String {
    match details {
        Value::Array(violations) => violations
            .iter()
            .map(|v| {
                let reason = v["reason"].as_str().unwrap_or("invalid");
                match v["field"].as_str().filter(|f| !f.is_empty()) {
                    Some(field) => format!("{reason} {field}: {}", v["message"].as_str().unwrap_or_default()),
                    None => format!("{reason}: {}", v["message"].as_str().unwrap_or_default()),
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        Value::Object(o) => o.get("reason").and_then(Value::as_str).unwrap_or("invalid").to_owned(),
        _ => "invalid".to_owned(),
    }
}

impl Accepted {
    /// The answer when the request could not be kept (`why`: the queue or
    /// the sink refused): `503` with `Retry-After`; on PostHog's v1 route,
    /// `200` with every event `retry` and `Retry-After`, which the SDKs
    /// answer by sending those events again.
    pub fn unavailable(&self, why: String, cors: Vec<(&'static str, String)>) -> Reply {
        if !self.per_event {
            return ApiError::Unavailable(why).reply(cors);
        }
        let results: Map<String, Value> = ids_of(&self.lines)
            .map(|id| (id, json!({"result": "retry", "details": why})))
            .collect();
        let mut headers = cors;
        headers.push(("retry-after", posthog::V1_RETRY_AFTER_S.to_string()));
        Reply {
            status: 200,
            headers,
            body: json!({ "results": results }).to_string(),
        }
    }

    /// Marks a per-event answer's `ok` events `warning` when the request's
    /// events were labelled (`label`, by [`crate::guard::settle`]): kept,
    /// in the lane the label names; a bot quarantine is a `drop`.
    pub(crate) fn label_answer(&mut self, label: &Label) {
        if !self.per_event || label.is_empty() {
            return;
        }
        let Ok(mut answer) = serde_json::from_str::<Value>(&self.reply.body) else {
            return;
        };
        let quarantined = crate::judge::quarantined_bot(Some(label));
        let what = match (&label.limited, &label.bot) {
            (Some(scope), _) => format!("past the {scope} rate limit: kept in the limited lane"),
            (None, Some(bot)) => format!("bot verdict {bot}: kept in the bots' lane"),
            (None, None) => "labelled".to_owned(),
        };
        if let Some(results) = answer["results"].as_object_mut() {
            for result in results.values_mut() {
                if result["result"] != "ok" {
                    continue;
                }
                *result = match &quarantined {
                    Some(why) => json!({"result": "drop", "details": format!("bot: {}", why.message)}),
                    None => json!({"result": "warning", "details": what}),
                };
            }
        }
        self.reply.body = answer.to_string();
    }
}

/// The envelope ids of lines, in order.
fn ids_of(lines: &[String]) -> impl Iterator<Item = String> + '_ {
    lines
        .iter()
        .filter_map(|l| crate::envelope::Envelope::parse(l).ok().map(|e| e.id.into_owned()))
}
