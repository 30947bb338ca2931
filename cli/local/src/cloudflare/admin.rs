//! The edge Worker's redrive API from outside: archived dead letters back
//! through the normal path. [`redrive`] calls `POST /v1/redrive` until the
//! archive is empty or a round makes no progress; what still cannot land
//! stays archived, and the reason ends it. `edgehose redrive` and the soak
//! bench use it.

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
    /// Objects the Worker set aside after they failed too many rounds.
    pub set_aside: u64,
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
/// round's answer. Objects that do not land are skipped (the Worker sets
/// one aside after failing it in several rounds); once a round brings no
/// progress, it ends with the reasons of what is still archived.
pub fn redrive(url: &str, key: &str, mut each: impl FnMut(&serde_json::Value)) -> Result<Redriven> {
    let mut total = Redriven::default();
    loop {
        let v = call(url, key, "POST")?;
        each(&v);
        let moved = v["redriven_objects"].as_u64().unwrap_or(0);
        total.objects += moved;
        total.events += v["redriven_events"].as_u64().unwrap_or(0);
        total.set_aside += v["set_aside_now"].as_u64().unwrap_or(0);
        let left = v["archived_objects"].as_u64().unwrap_or(0);
        if left == 0 && v["more"].as_bool() != Some(true) {
            return Ok(total);
        }
        if moved == 0 && v["set_aside_now"].as_u64().unwrap_or(0) == 0 {
            let why = v["error"].as_str().unwrap_or("none was redriven");
            return Err(Error::protocol(format!(
                "{left} objects are still archived: {why} ({} objects redriven before)",
                total.objects
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
