//! The edge Worker's redrive API from outside: archived dead letters back
//! through the normal path. [`redrive`] calls `POST /v1/redrive` until the
//! archive is empty; an object that still cannot land stays archived and
//! ends it with the reason. `edgehose redrive` and the soak bench use it.

use std::time::Duration;

use crate::error::{Error, Result};

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
pub fn count(url: &str, key: &str) -> Result<(u64, bool)> {
    let v = call(url, key, "GET")?;
    Ok((
        v["archived_objects"].as_u64().unwrap_or(0),
        v["more"].as_bool() == Some(true),
    ))
}

/// Calls `POST /v1/redrive` until nothing is archived; `each` sees every
/// round's answer. An object that does not land ends it with its reason.
pub fn redrive(url: &str, key: &str, mut each: impl FnMut(&serde_json::Value)) -> Result<Redriven> {
    let mut total = Redriven::default();
    loop {
        let v = call(url, key, "POST")?;
        each(&v);
        total.objects += v["redriven_objects"].as_u64().unwrap_or(0);
        total.events += v["redriven_events"].as_u64().unwrap_or(0);
        if let Some(e) = v["error"].as_str() {
            return Err(Error::protocol(format!(
                "{e} ({} objects redriven before it)",
                total.objects
            )));
        }
        let left = v["archived_objects"].as_u64().unwrap_or(0);
        if left == 0 && v["more"].as_bool() != Some(true) {
            return Ok(total);
        }
        if v["redriven_objects"].as_u64() == Some(0) {
            return Err(Error::protocol(format!(
                "{left} objects are archived but none was redriven"
            )));
        }
    }
}

fn call(url: &str, key: &str, method: &str) -> Result<serde_json::Value> {
    let endpoint = format!("{url}/v1/redrive");
    let request = http::Request::builder()
        .method(method)
        .uri(&endpoint)
        .header("authorization", format!("Bearer {key}"))
        .body(Vec::new())?;
    // A round redrives up to a listing's page of objects: minutes at worst.
    let response = crate::http::send_within(request, Duration::from_secs(300))?;
    let (status, body) = (response.status, response.text());
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|_| Error::protocol(format!("{endpoint} answered {status}: {body}")))?;
    if status != 200 {
        return Err(Error::protocol(format!(
            "{endpoint} answered {status}: {}",
            v["message"].as_str().unwrap_or(&body)
        )));
    }
    Ok(v)
}
