//! `edgehose redrive`: brings archived dead letters back through the normal
//! path, one command. It calls the edge Worker's `POST /v1/redrive` until
//! the archive is empty, printing each round; an object that still cannot
//! land stays archived and the command says why and fails.

use std::time::Duration;

use crate::args::{Args, Flag};

/// The flags of `edgehose redrive`.
pub const FLAGS: &[Flag] = &[
    ("url", true, "the edge Worker (http://127.0.0.1:8787, make dev's)"),
    (
        "admin-key",
        true,
        "its ADMIN_KEY secret ($ADMIN_KEY; make dev's when unset)",
    ),
    ("count", false, "only say how much is archived"),
    ("help", false, "this help"),
];

/// The `ADMIN_KEY` `edgehose dev` gives its Worker: a local stand-in.
pub const DEV_ADMIN_KEY: &str = "edgehose-dev-admin-key";

/// What a redrive did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Redriven {
    /// Archived objects sent and removed.
    pub objects: u64,
    /// Lines (events, and rejected lines) in them.
    pub events: u64,
}

/// Runs the command.
pub fn main(raw: &[String]) -> Result<(), String> {
    let args = Args::parse(raw, FLAGS)?;
    if args.switch("help") {
        println!(
            "edgehose redrive: send archived dead letters through the normal path again\n\n{}",
            crate::args::help(FLAGS)
        );
        return Ok(());
    }
    let url = args.get("url").unwrap_or("http://127.0.0.1:8787").trim_end_matches('/');
    let key = args
        .get("admin-key")
        .map(str::to_owned)
        .or_else(|| std::env::var("ADMIN_KEY").ok())
        .unwrap_or_else(|| DEV_ADMIN_KEY.to_owned());
    if args.switch("count") {
        let v = call(url, &key, "GET")?;
        println!(
            "{}{} archived objects",
            v["archived_objects"],
            if v["more"].as_bool() == Some(true) { "+" } else { "" }
        );
        return Ok(());
    }
    let done = redrive(url, &key, |v| {
        println!(
            "redrove {} events from {} objects; {} objects archived",
            v["redriven_events"], v["redriven_objects"], v["archived_objects"]
        );
    })?;
    println!(
        "done: {} events from {} objects are back on their way",
        done.events, done.objects
    );
    Ok(())
}

/// Calls `POST /v1/redrive` until nothing is archived; `each` sees every
/// round's answer. An object that does not land ends it with its reason.
pub fn redrive(url: &str, key: &str, mut each: impl FnMut(&serde_json::Value)) -> Result<Redriven, String> {
    let mut total = Redriven::default();
    loop {
        let v = call(url, key, "POST")?;
        each(&v);
        total.objects += v["redriven_objects"].as_u64().unwrap_or(0);
        total.events += v["redriven_events"].as_u64().unwrap_or(0);
        if let Some(e) = v["error"].as_str() {
            return Err(format!("{e} ({} objects redriven before it)", total.objects));
        }
        let left = v["archived_objects"].as_u64().unwrap_or(0);
        if left == 0 && v["more"].as_bool() != Some(true) {
            return Ok(total);
        }
        if v["redriven_objects"].as_u64() == Some(0) {
            return Err(format!("{left} objects are archived but none was redriven"));
        }
    }
}

fn call(url: &str, key: &str, method: &str) -> Result<serde_json::Value, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(300)))
        .http_status_as_error(false)
        .build()
        .into();
    let endpoint = format!("{url}/v1/redrive");
    let auth = format!("Bearer {key}");
    let response = if method == "GET" {
        agent.get(&endpoint).header("authorization", &auth).call()
    } else {
        agent.post(&endpoint).header("authorization", &auth).send_empty()
    };
    let mut response = response.map_err(|e| format!("{endpoint}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|_| format!("{endpoint} answered {status}: {body}"))?;
    if status != 200 {
        return Err(format!(
            "{endpoint} answered {status}: {}",
            v["message"].as_str().unwrap_or(&body)
        ));
    }
    Ok(v)
}
