//! The API Gateway path against `moto_server` with SigV4 + IAM on: handler
//! calls, and the real `ingest-api` binary behind a Lambda Runtime API fed
//! AWS's own API Gateway HTTP API event shape.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::Duration;

use edgehose_local::aws::lambda_runtime::{Outcome, RuntimeApi};
use edgehose_regional::ingest::IngestApi;
use edgehose_sample::ride_sample;
use edgehose_shared::settings::Settings;
use edgehose_tests::events::{landed, wait_for};
use edgehose_tests::sandbox::Sandbox;
use lambda_http::Body;

fn sandbox() -> Sandbox {
    Sandbox::start().unwrap_or_else(|e| panic!("could not start the moto sandbox: {e}"))
}

fn settings(sandbox: &Sandbox, secret: &str) -> Vec<(String, String)> {
    [
        ("FIREHOSE_STREAM", sandbox.stream.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("FIREHOSE_ENDPOINT", &sandbox.moto.endpoint()),
        ("AWS_ACCESS_KEY_ID", sandbox.edge.access_key_id()),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("RETRY_BASE_DELAY_MS", "10"),
        ("RETRY_BUDGET_MS", "3000"),
        ("MAX_EVENTS", "50"),
        ("ALLOW_ANONYMOUS", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn api(pairs: Vec<(String, String)>) -> IngestApi {
    IngestApi::from_settings(&Settings::new(move |n: &str| {
        pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
    }))
    .unwrap()
}

fn post(body: &str, ct: &str) -> lambda_http::Request {
    http::Request::builder()
        .method("POST")
        .uri("/v1/events")
        .header("content-type", ct)
        .body(Body::Text(body.to_owned()))
        .unwrap()
}

async fn call(api: &IngestApi, req: lambda_http::Request) -> (u16, serde_json::Value) {
    let resp = api.handle(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap_or_default(),
        _ => serde_json::Value::Null,
    };
    (status, body)
}

#[tokio::test(flavor = "current_thread")]
async fn accepted_events_are_in_firehose_before_the_200() {
    let sandbox = sandbox();
    let api = api(settings(&sandbox, sandbox.edge.secret_access_key()));
    let events: Vec<String> = (0..20).map(|i| ride_sample("apigw", i)).collect();
    let (status, body) = call(&api, post(&events.join("\n"), "application/x-ndjson")).await;
    assert_eq!((status, body), (200, serde_json::json!({"accepted": 20})));
    // Synchronous: already there, no waiting.
    let got = landed(&sandbox);
    assert_eq!(got.len(), 20);
    assert_eq!(got["apigw-3"][0].event.as_ref().unwrap().get(), events[3]);
}

#[tokio::test(flavor = "current_thread")]
async fn the_same_rate_limits_and_bot_rules_hold_on_the_api_gateway_path() {
    let sandbox = sandbox();
    let mut pairs = settings(&sandbox, sandbox.edge.secret_access_key());
    pairs.push(("RATE_LIMITS".into(), r#"{"*":{"key":{"events":10}}}"#.into()));
    let api = api(pairs);
    let mut statuses = Vec::new();
    let mut last = serde_json::Value::Null;
    edgehose_tests::events::at_a_window_start();
    for i in 0..15 {
        let mut req = post(&ride_sample("limited", i), "application/json");
        req.headers_mut().insert("user-agent", "curl/8.5.0".parse().unwrap());
        let (status, body) = call(&api, req).await;
        statuses.push(status);
        last = body;
    }
    // Ten events a window for the key: the rest of the flood is refused,
    // naming the limit.
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((refused, &statuses[..10]), (5, &[200; 10][..]), "{statuses:?}");
    assert_eq!(last["code"], "rate_limited");
    assert!(
        last["message"].as_str().unwrap().contains("RATE_LIMITS.*.key"),
        "{last}"
    );
    // What was let through landed, labelled by the user-agent rule.
    let got = landed(&sandbox);
    assert_eq!(got.len(), 15 - refused);
    let label = got.values().next().unwrap()[0].label.clone().unwrap();
    assert_eq!(
        (label.bot.as_deref(), label.signal.as_deref()),
        (Some("tool"), Some("user_agent:curl"))
    );
}

#[tokio::test(flavor = "current_thread")]
async fn it_answers_every_error_like_the_edge() {
    let sandbox = sandbox();
    let api = api(settings(&sandbox, sandbox.edge.secret_access_key()));
    let many = format!("[{}]", vec![r#"{"event":"a"}"#; 51].join(","));
    let (status, body) = call(&api, post(&many, "application/json")).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("too_many_events")));
    let (status, body) = call(&api, post("{}", "image/png")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (415, Some("unsupported_content_type"))
    );
    let wrong = http::Request::builder()
        .method("GET")
        .uri("/v1/events")
        .body(Body::Empty)
        .unwrap();
    assert_eq!(call(&api, wrong).await.0, 405);
    // A broken body is acknowledged and quarantined, as at the edge.
    let (status, _) = call(&api, post("{\"event\": nope", "application/json")).await;
    assert_eq!(status, 200);
    assert!(landed(&sandbox).values().any(|e| e[0].quarantine.is_some()));
}

#[tokio::test(flavor = "current_thread")]
async fn a_wrong_secret_is_a_5xx_naming_the_refusal_not_a_panic() {
    let sandbox = sandbox();
    let api = api(settings(&sandbox, "not-the-secret"));
    let (status, body) = call(&api, post(&ride_sample("wrong", 1), "application/json")).await;
    assert_eq!((status, body["error"].as_str()), (500, Some("misconfigured")));
    // The settings are named; what Firehose said is for the log, not the client.
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("AWS_SECRET_ACCESS_KEY"), "{body}");
    assert!(!message.contains("SignatureDoesNotMatch"), "{body}");
    assert!(landed(&sandbox).is_empty());
}

fn apigw_event(body: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/aws-example-apigw-v2-request.json"
    ))
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["routeKey"] = "POST /v1/events".into();
    v["rawPath"] = "/v1/events".into();
    v["rawQueryString"] = "".into();
    v["requestContext"]["http"]["method"] = "POST".into();
    v["requestContext"]["http"]["path"] = "/v1/events".into();
    v["headers"] = serde_json::json!({"content-type": "application/json"});
    v["body"] = body.into();
    v["isBase64Encoded"] = false.into();
    v
}

#[test]
fn without_write_keys_the_binary_answers_500_naming_the_setting_with_cors_and_says_why_once() {
    let sandbox = sandbox();
    let runtime = RuntimeApi::start().unwrap();
    let mut env = settings(&sandbox, sandbox.edge.secret_access_key());
    env.retain(|(k, _)| k != "ALLOW_ANONYMOUS");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let function = runtime
        .spawn(env!("CARGO_BIN_EXE_ingest-api").as_ref(), "edgehose-ingest-api", &env)
        .unwrap();
    for _ in 0..2 {
        let mut event = apigw_event(&ride_sample("closed", 1));
        event["headers"]["origin"] = "https://shop.example".into();
        let Outcome::Response(resp) = runtime.invoke(&event, Duration::from_secs(30)).unwrap() else {
            panic!("{}", function.log())
        };
        assert_eq!(resp["statusCode"], 500, "{resp}\n{}", function.log());
        assert!(resp["body"].as_str().unwrap().contains("setting WRITE_KEYS"), "{resp}");
        assert_eq!(
            resp["headers"]["access-control-allow-origin"], "https://shop.example",
            "{resp}"
        );
    }
    assert_eq!(
        function.log().matches("misconfigured, answering 500").count(),
        1,
        "{}",
        function.log()
    );
    assert!(function.log().contains("ALLOW_ANONYMOUS"), "{}", function.log());
    assert!(landed(&sandbox).is_empty());
}

#[test]
fn the_binary_serves_api_gateway_events_and_logs_a_refusal_clearly() {
    let sandbox = sandbox();
    let runtime = RuntimeApi::start().unwrap();
    let env = settings(&sandbox, sandbox.edge.secret_access_key());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let function = runtime
        .spawn(env!("CARGO_BIN_EXE_ingest-api").as_ref(), "edgehose-ingest-api", &env)
        .unwrap();
    let Outcome::Response(resp) = runtime
        .invoke(&apigw_event(&ride_sample("bin", 1)), Duration::from_secs(30))
        .unwrap()
    else {
        panic!("{}", function.log())
    };
    assert_eq!(resp["statusCode"], 200, "{resp}\n{}", function.log());
    assert_eq!(resp["body"], r#"{"accepted":1}"#);
    assert!(wait_for(Duration::from_secs(5), || landed(&sandbox).contains_key("bin-1")));

    let wrong = settings(&sandbox, "not-the-secret");
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let runtime = RuntimeApi::start().unwrap();
    let function = runtime
        .spawn(env!("CARGO_BIN_EXE_ingest-api").as_ref(), "edgehose-ingest-api", &wrong)
        .unwrap();
    let Outcome::Response(resp) = runtime
        .invoke(&apigw_event(&ride_sample("bin", 2)), Duration::from_secs(30))
        .unwrap()
    else {
        panic!("{}", function.log())
    };
    assert_eq!(resp["statusCode"], 500);
    let logged = wait_for(Duration::from_secs(5), || {
        function.log().contains("events not delivered to Firehose")
    });
    assert!(logged, "{}", function.log());
    assert!(function.log().contains("SignatureDoesNotMatch"));
    assert!(!function.log().contains("not-the-secret"), "the secret is never logged");
}

#[test]
fn a_real_segment_sdk_delivers_through_api_gateway_and_ingest_api() {
    let sandbox = sandbox();
    let mut env = settings(&sandbox, sandbox.edge.secret_access_key());
    env.retain(|(k, _)| k != "ALLOW_ANONYMOUS");
    env.push(("WRITE_KEYS".into(), "server:wk_server_0123456789".into()));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let port = edgehose_local::tools::free_port().unwrap();
    let gateway = edgehose_local::aws::api_gateway::ApiGateway::start(
        &format!("127.0.0.1:{port}"),
        env!("CARGO_BIN_EXE_ingest-api").as_ref(),
        &pairs,
        None,
    )
    .unwrap();
    // The API Gateway path answers only once Firehose holds the events, so
    // the SDK's flush returns with everything in the bucket.
    let sent = edgehose_tests::clients::Sdk::AnalyticsPython
        .run(gateway.url(), "wk_server_0123456789", "apigw")
        .unwrap();
    assert_eq!(sent.len(), 7);
    let landed = landed(&sandbox);
    for (call, id) in &sent {
        let copies = landed
            .get(id)
            .unwrap_or_else(|| panic!("{call} {id} did not land: {}", gateway.log()));
        assert_eq!(copies.len(), 1, "{id}");
        let env = &copies[0];
        assert_eq!(
            (env.format.as_deref(), env.key_id.as_deref()),
            (Some("segment"), Some("server"))
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn snowplow_and_the_identity_cookie_are_answered_on_the_api_gateway_path_as_at_the_edge() {
    let sandbox = sandbox();
    let mut pairs = settings(&sandbox, sandbox.edge.secret_access_key());
    pairs.push(("IDENTITY_COOKIE_DAYS".into(), "30".into()));
    pairs.push(("ALLOWED_ORIGINS".into(), "*".into()));
    let api = api(pairs);
    let eid = "6e1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let body = format!(
        r#"{{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[{{"e":"se","eid":"{eid}","p":"srv","tv":"t","se_ca":"c","se_ac":"a"}}]}}"#
    );
    let req = http::Request::builder()
        .method("POST")
        .uri("/com.snowplowanalytics.snowplow/tp2")
        .header("content-type", "application/json; charset=UTF-8")
        .header("origin", "https://shop.example")
        .body(Body::Text(body))
        .unwrap();
    let resp = api.handle(req).await.unwrap();
    let header = |r: &lambda_http::Response<Body>, name: &str| {
        r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    assert_eq!(resp.status().as_u16(), 200);
    assert!(matches!(resp.body(), Body::Text(t) if t == "ok"));
    assert_eq!(
        header(&resp, "content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    // Credentials: the origin named, never *.
    assert_eq!(
        header(&resp, "access-control-allow-origin").as_deref(),
        Some("https://shop.example")
    );
    assert_eq!(
        header(&resp, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    let cookie = header(&resp, "set-cookie").expect("the identity cookie is set");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let id = pair.split_once('=').unwrap().1.to_owned();

    // The pixel, with the cookie brought back: a GIF, the same visitor.
    let pixel_eid = "7e1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let req = http::Request::builder()
        .method("GET")
        .uri(format!("/i?e=pv&eid={pixel_eid}&p=web&tv=pixel"))
        .header("cookie", pair.as_str())
        .body(Body::Empty)
        .unwrap();
    let resp = api.handle(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header(&resp, "content-type").as_deref(), Some("image/gif"));
    assert!(matches!(resp.body(), Body::Binary(b) if b.starts_with(b"GIF89a") && b.len() == 43));
    // Synchronous: both in Firehose already, each with the visitor's id.
    let got = landed(&sandbox);
    for e in [eid, pixel_eid] {
        let envelope = &got[e][0];
        assert_eq!(envelope.format.as_deref(), Some("snowplow"));
        assert_eq!(envelope.nuid.as_deref(), Some(id.as_str()), "{e}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn posthog_is_answered_on_the_api_gateway_path_as_at_the_edge() {
    use std::io::Write as _;
    let sandbox = sandbox();
    let mut pairs = settings(&sandbox, sandbox.edge.secret_access_key());
    pairs.retain(|(k, _)| k != "ALLOW_ANONYMOUS");
    pairs.push(("WRITE_KEYS".into(), "web:phc_web_0123456789".into()));
    pairs.push(("ALLOWED_ORIGINS".into(), "https://shop.example".into()));
    let api = api(pairs);
    let uuid = |n: u8| format!("0193a2b4-0000-7000-8000-0000000001{n:02}");
    // posthog-js: gzip-js, named by nothing but its first bytes, the token in
    // each event's properties; API Gateway hands the function its bytes.
    let body = format!(
        r#"{{"api_key":"phc_web_0123456789","batch":[{{"event":"$pageview","uuid":"{}","properties":{{"token":"phc_web_0123456789","distinct_id":"d1","$lib":"web"}}}}]}}"#,
        uuid(1)
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(body.as_bytes()).unwrap();
    let req = http::Request::builder()
        .method("POST")
        .uri("/e/?ver=1.455.2")
        .header("content-type", "text/plain")
        .header("origin", "https://shop.example")
        .body(Body::Binary(gz.finish().unwrap()))
        .unwrap();
    let (status, answer) = call(&api, req).await;
    assert_eq!((status, answer), (200, serde_json::json!({"status": 1})));
    // v1: a result per event, the library from its header.
    let v1 = format!(
        r#"{{"created_at":"2024-05-01T12:30:00Z","batch":[{{"event":"e","distinct_id":"d1","uuid":"{}","properties":{{}}}},{{"event":"e","distinct_id":"null","uuid":"{}"}}]}}"#,
        uuid(2),
        uuid(3)
    );
    let req = http::Request::builder()
        .method("POST")
        .uri("/i/v1/analytics/events")
        .header("content-type", "application/json")
        .header("authorization", "Bearer phc_web_0123456789")
        .header("posthog-sdk-info", "posthog-python/7.91.1")
        .body(Body::Text(v1))
        .unwrap();
    let (status, answer) = call(&api, req).await;
    assert_eq!(status, 200);
    assert_eq!(answer["results"][uuid(2)]["result"], "ok", "{answer}");
    assert_eq!(answer["results"][uuid(3)]["result"], "drop", "{answer}");
    // The start call, answered here too.
    let req = http::Request::builder()
        .method("GET")
        .uri("/array/phc_web_0123456789/config")
        .body(Body::Empty)
        .unwrap();
    let (status, config) = call(&api, req).await;
    assert_eq!(
        (status, config["hasFeatureFlags"].clone()),
        (200, serde_json::json!(false))
    );
    // Synchronous: in Firehose already, the token out, the library in.
    let got = landed(&sandbox);
    let first = &got[&uuid(1)][0];
    assert_eq!(
        (first.format.as_deref(), first.key_id.as_deref()),
        (Some("posthog"), Some("web"))
    );
    assert!(
        !first.event.as_ref().unwrap().get().contains("phc_web"),
        "{:?}",
        first.event
    );
    let v1_event = got[&uuid(2)][0].event.as_ref().unwrap().get();
    assert!(v1_event.contains(r#""$lib":"posthog-python""#), "{v1_event}");
    assert!(
        got.contains_key(&uuid(3)),
        "a dropped event is kept too, for its reasons"
    );
}
