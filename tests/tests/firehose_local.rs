//! firehose-local as a Firehose: the JSON 1.1 operations, AWS's errors for
//! bad signatures, unknown streams and limits, boto3 as an independent
//! client, and the crash promise (a killed process loses nothing it
//! acknowledged).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use edgehose_local::aws::firehose::{self, Config, FirehoseLocal, store};
use edgehose_local::http::Response;
use edgehose_shared::sigv4::sign::Credentials;
use edgehose_tests::aws::AwsClient;
use edgehose_tests::events::wait_for;
use edgehose_tests::workspace_binary;
use serde_json::{Value, json};

fn temp_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("edgehose-fhl-{name}-{}", uuid::Uuid::new_v4()))
}

fn client(url: &str, secret: &str) -> AwsClient {
    AwsClient::new(url, Credentials::new(firehose::DEV_ACCESS_KEY_ID, secret))
}

fn call(c: &AwsClient, op: &str, body: &Value) -> Response {
    c.json("firehose", &format!("Firehose_20150804.{op}"), body).unwrap()
}

fn error(r: &Response) -> (u16, String) {
    let v: Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()));
    (r.status, v["__type"].as_str().unwrap_or_default().to_owned())
}

fn records(datas: &[Vec<u8>]) -> Value {
    json!(datas.iter().map(|d| json!({"Data": B64.encode(d)})).collect::<Vec<_>>())
}

fn objects(dir: &std::path::Path) -> Vec<u8> {
    let store = store::Store::open(dir).unwrap();
    store
        .list("")
        .into_iter()
        .filter(|p| {
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            !rel.starts_with('.')
        })
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// Asserts `dir`'s objects hold the lines `{prefix}-0` to `{prefix}-{n-1}`,
/// each once, and that they had `landed` in time.
fn assert_holds_exactly(dir: &std::path::Path, landed: bool, prefix: &str, n: usize) {
    let mut got: Vec<String> = String::from_utf8(objects(dir))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    want.sort();
    assert!(landed, "{got:?}");
    assert_eq!(got, want);
}

#[test]
fn it_answers_like_firehose_for_good_calls_bad_signatures_and_limits() {
    let dir = temp_dir("api");
    let local = FirehoseLocal::start(Config::new("clicks", dir.clone())).unwrap();
    let good = client(local.url(), firehose::DEV_SECRET_ACCESS_KEY);

    let r = call(
        &good,
        "PutRecordBatch",
        &json!({"DeliveryStreamName": "clicks", "Records": records(&[b"a\n".to_vec(), b"b\n".to_vec()])}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["FailedPutCount"], 0);
    assert_eq!(v["RequestResponses"].as_array().unwrap().len(), 2);
    let r = call(
        &good,
        "PutRecord",
        &json!({"DeliveryStreamName": "clicks", "Record": {"Data": B64.encode("c\n")}}),
    );
    assert!(r.status == 200 && r.text().contains("RecordId"), "{}", r.text());

    let d = call(
        &good,
        "DescribeDeliveryStream",
        &json!({"DeliveryStreamName": "clicks"}),
    );
    let v: Value = serde_json::from_slice(&d.body).unwrap();
    assert_eq!(v["DeliveryStreamDescription"]["DeliveryStreamStatus"], "ACTIVE");
    let l = call(&good, "ListDeliveryStreams", &json!({}));
    assert_eq!(
        serde_json::from_slice::<Value>(&l.body).unwrap()["DeliveryStreamNames"],
        json!(["clicks"])
    );

    // Errors, with AWS's types.
    let unknown = call(
        &good,
        "PutRecordBatch",
        &json!({"DeliveryStreamName": "nope", "Records": records(&[b"x".to_vec()])}),
    );
    assert_eq!(error(&unknown), (400, "ResourceNotFoundException".into()));
    assert!(unknown.text().contains("nope"));
    let many = vec![b"x".to_vec(); 501];
    let too_many = call(
        &good,
        "PutRecordBatch",
        &json!({"DeliveryStreamName": "clicks", "Records": records(&many)}),
    );
    assert_eq!(error(&too_many), (400, "ValidationException".into()));
    assert!(too_many.text().contains("500"), "{}", too_many.text());
    let big = call(
        &good,
        "PutRecordBatch",
        &json!({"DeliveryStreamName": "clicks", "Records": records(&[vec![b'x'; 1_024_001]])}),
    );
    assert_eq!(error(&big), (400, "ValidationException".into()));
    assert!(big.text().contains("1024000"), "{}", big.text());
    let five = vec![vec![b'x'; 1_000_000]; 5];
    let over = call(
        &good,
        "PutRecordBatch",
        &json!({"DeliveryStreamName": "clicks", "Records": records(&five)}),
    );
    assert_eq!(error(&over), (400, "InvalidArgumentException".into()));
    assert!(over.text().contains("4 MB"), "{}", over.text());

    let wrong = client(local.url(), "not-the-secret");
    let r = call(
        &wrong,
        "PutRecordBatch",
        &json!({"DeliveryStreamName": "clicks", "Records": records(&[b"x".to_vec()])}),
    );
    assert_eq!(error(&r), (400, "InvalidSignatureException".into()));
    let stranger = AwsClient::new(local.url(), Credentials::new("AKIDSOMEONEELSE", "s"));
    let r = call(&stranger, "ListDeliveryStreams", &json!({}));
    assert_eq!(error(&r), (400, "UnrecognizedClientException".into()));
    let unsigned = edgehose_local::http::send(
        http::Request::post(format!("{}/", local.url()))
            .header("x-amz-target", "Firehose_20150804.ListDeliveryStreams")
            .body(b"{}".to_vec())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(error(&unsigned), (403, "MissingAuthenticationTokenException".into()));

    // Only the accepted records land, in Firehose's key layout.
    local.flush(Duration::from_secs(10)).unwrap();
    let mut lines: Vec<u8> = objects(&dir);
    lines.sort();
    assert_eq!(String::from_utf8(lines).unwrap().trim(), "\n\n\nabc".trim());
    let keys = store::Store::open(&dir).unwrap().list("");
    let key = keys.iter().find(|p| !p.to_string_lossy().contains("/.")).unwrap();
    let rel = key.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
    assert!(
        rel.len() > 14 && rel[..14].chars().filter(|c| *c == '/').count() == 4 && rel.contains("/clicks-1-"),
        "{rel}"
    );
    drop(local);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn boto3_works_against_it_unchanged() {
    let dir = temp_dir("boto3");
    let local = FirehoseLocal::start(Config::new("clicks", dir.clone())).unwrap();
    let python = edgehose_local::tools::python().unwrap();
    let script = r#"
import json, sys, boto3, botocore.exceptions
url, secret = sys.argv[1], sys.argv[2]
def client(secret):
    return boto3.client("firehose", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="AKIDEDGEHOSELOCAL", aws_secret_access_key=secret)
c = client(secret)
out = {}
r = c.put_record_batch(DeliveryStreamName="clicks", Records=[{"Data": b"boto-1\n"}, {"Data": b"boto-2\n"}])
out["failed"] = r["FailedPutCount"]
out["names"] = c.list_delivery_streams()["DeliveryStreamNames"]
out["status"] = c.describe_delivery_stream(DeliveryStreamName="clicks")["DeliveryStreamDescription"]["DeliveryStreamStatus"]
try:
    client("wrong").put_record(DeliveryStreamName="clicks", Record={"Data": b"x"})
except botocore.exceptions.ClientError as e:
    out["wrong_secret"] = e.response["Error"]["Code"]
try:
    c.put_record(DeliveryStreamName="nope", Record={"Data": b"x"})
except c.exceptions.ResourceNotFoundException as e:
    out["unknown_stream"] = e.response["Error"]["Code"]
print(json.dumps(out))
"#;
    let output = Command::new(python)
        .args(["-c", script, local.url(), firehose::DEV_SECRET_ACCESS_KEY])
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let v: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        v,
        json!({"failed": 0, "names": ["clicks"], "status": "ACTIVE",
               "wrong_secret": "InvalidSignatureException", "unknown_stream": "ResourceNotFoundException"})
    );
    local.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(String::from_utf8(objects(&dir)).unwrap(), "boto-1\nboto-2\n");
    drop(local);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_killed_firehose_local_delivers_what_it_acknowledged_when_it_starts_again() {
    let dir = temp_dir("crash");
    let port = edgehose_local::tools::free_port().unwrap();
    let start = || {
        Command::new(workspace_binary("edgehose"))
            .args([
                "firehose-local",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--stream",
                "clicks",
            ])
            .args(["--buffer-secs", "900", "--data-dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let url = format!("http://127.0.0.1:{port}");
    let good = client(&url, firehose::DEV_SECRET_ACCESS_KEY);
    let ready = |c: &AwsClient| {
        wait_for(Duration::from_secs(10), || {
            c.json("firehose", "Firehose_20150804.ListDeliveryStreams", &json!({}))
                .is_ok_and(|r| r.status == 200)
        })
    };
    let mut first = start();
    assert!(ready(&good));
    let datas: Vec<Vec<u8>> = (0..50).map(|i| format!("kept-{i}\n").into_bytes()).collect();
    let r = call(
        &good,
        "PutRecordBatch",
        &json!({"DeliveryStreamName": "clicks", "Records": records(&datas)}),
    );
    assert_eq!(r.status, 200);
    // Acknowledged, buffered for 15 minutes, then the process dies without warning.
    first.kill().unwrap();
    let _ = first.wait();
    assert!(objects(&dir).is_empty(), "nothing was delivered before the crash");

    let mut second = start();
    assert!(ready(&good));
    let flushed = edgehose_local::http::send(
        http::Request::post(format!("{url}/_edgehose/flush"))
            .body(Vec::new())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(flushed.status, 200, "{}", flushed.text());
    let landed = wait_for(Duration::from_secs(10), || objects(&dir).len() == datas.concat().len());
    let _ = second.kill();
    let _ = second.wait();
    assert_holds_exactly(&dir, landed, "kept", 50);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stopped_while_it_cannot_write_it_keeps_the_records_spooled_for_the_next_run() {
    let dir = temp_dir("blocked");
    let config = || {
        let mut c = Config::new("clicks", dir.clone());
        c.streams[0].prefix = "data/".to_owned();
        c.streams[0].buffer_interval = Duration::from_secs(900);
        c
    };
    let local = FirehoseLocal::start(config()).unwrap();
    let good = client(local.url(), firehose::DEV_SECRET_ACCESS_KEY);
    let datas: Vec<Vec<u8>> = (0..20).map(|i| format!("blocked-{i}\n").into_bytes()).collect();
    let r = call(
        &good,
        "PutRecordBatch",
        &json!({"DeliveryStreamName": "clicks", "Records": records(&datas)}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // A file where the destination's folder must go: every delivery fails.
    std::fs::write(dir.join("data"), b"in the way").unwrap();
    let (done, stopped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(local);
        let _ = done.send(());
    });
    assert!(
        stopped.recv_timeout(Duration::from_secs(30)).is_ok(),
        "firehose-local did not stop while its delivery kept failing"
    );
    std::fs::remove_file(dir.join("data")).unwrap();
    assert!(objects(&dir).is_empty(), "nothing could be delivered");

    // The next run over the same directory delivers them first.
    let again = FirehoseLocal::start(config()).unwrap();
    let landed = wait_for(Duration::from_secs(10), || objects(&dir).len() == datas.concat().len());
    drop(again);
    assert_holds_exactly(&dir, landed, "blocked", 20);
    let _ = std::fs::remove_dir_all(&dir);
}
