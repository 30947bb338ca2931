//! The edge Worker's redrive API from outside: archived dead letters back
//! through the normal path. [`redrive`] calls `POST /v1/redrive` until the
//! archive is empty; an object that still cannot land stays archived and
//! ends it with the reason. `edgehose redrive` and the soak bench use it.

use std::time::Duration;

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

/// How many objects are archived, and whether there are more than one
/// listing's page (`GET /v1/redrive`).
pub fn count(url: &str, key: &str) -> Result<(u64, bool), String> {
    let v = call(url, key, "GET")?;
    Ok((
        v["archived_objects"].as_u64().unwrap_or(0),
        v["more"].as_bool() == Some(true),
    ))
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
