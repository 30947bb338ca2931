//! Where the bootstrap put the tools edgehose runs (node, workerd, Python), and
//! small process helpers.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// The edgehose cache directory: `EDGEHOSE_CACHE`, else
/// `$XDG_CACHE_HOME/edgehose`, else `~/.cache/edgehose` (the bootstrap's rule).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = env("EDGEHOSE_CACHE") {
        return PathBuf::from(dir);
    }
    let base = env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache"));
    base.join("edgehose")
}

/// The Python interpreter of the bootstrap's virtual environment.
pub fn python() -> Result<PathBuf> {
    installed(
        env("EDGEHOSE_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| cache_dir().join("venv/bin/python")),
    )
}

/// A program from the bootstrap's npm tools (`node`, `wrangler`, `workerd`, …).
pub fn npm_bin(name: &str) -> Result<PathBuf> {
    installed(cache_dir().join("npm/node_modules/.bin").join(name))
}

/// A release binary of this workspace (`$EDGEHOSE_BIN_DIR`, else
/// `target/release`); if it is not built, an error naming the `make` target
/// that builds it.
pub fn release_binary(name: &str, built_by: &str) -> Result<PathBuf> {
    let dir = std::env::var_os("EDGEHOSE_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release"));
    let path = dir.join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(Error::missing(format!(
            "{} is not built: run `{built_by}` (it builds everything first)",
            path.display()
        )))
    }
}

/// `path`, if the bootstrap installed it; else how to get it.
fn installed(path: PathBuf) -> Result<PathBuf> {
    if path.exists() {
        Ok(path)
    } else {
        Err(Error::missing(format!(
            "{} does not exist: run `make dev` or `make test` (or `make bootstrap`) once to install the tools",
            path.display()
        )))
    }
}

/// The repository's root directory (this crate lives in `cli/local/`).
pub fn repo_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A free TCP port on loopback (bound, then released for the caller).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Error::network("binding 127.0.0.1:0", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::network("127.0.0.1:0", e))
}

/// A log file opened for appending (made if absent), when there is one.
pub fn append_to(path: Option<&std::path::Path>) -> Result<Option<std::fs::File>> {
    path.map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| Error::file(p, e))
    })
    .transpose()
}

/// The body of a `GET`, for the local services' status endpoints.
pub fn http_get(url: &str) -> Result<String> {
    let request = http::Request::get(url).body(Vec::new())?;
    Ok(crate::http::send_within(request, std::time::Duration::from_secs(2))?.text())
}

/// The edge Worker's `GET /healthz` as the operator sees it (the isolate's
/// figures are shown only for `Authorization: Bearer <ADMIN_KEY>`).
pub fn healthz(url: &str, admin_key: &str) -> Result<serde_json::Value> {
    let request = http::Request::get(format!("{url}/healthz"))
        .header("authorization", format!("Bearer {admin_key}"))
        .body(Vec::new())?;
    let body = crate::http::send_within(request, std::time::Duration::from_secs(2))?.text();
    serde_json::from_str(&body).map_err(|e| crate::error::Error::json(format!("{url}/healthz: {body}"), e))
}

/// The string members of a JSON object, in any collection of pairs (no
/// members when it is not an object; members that are not strings are left
/// out): Lambda response headers, Firehose partition keys.
pub fn string_members<C: FromIterator<(String, String)>>(value: &serde_json::Value) -> C {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
        .collect()
}
