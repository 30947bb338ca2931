//! The tests' use of `moto_server` (started by `edgehose_local::aws::moto`): the
//! readers that check what landed, run as a consumer would.

use std::process::Command;

use edgehose_local::tools;

/// Runs one of the tests' Python readers (`tests/<script>`, with boto3 from
/// the bootstrap's environment) as `reader` against `args`, and reads the
/// JSON list it prints.
pub fn read_with(
    reader: &edgehose_shared::sigv4::sign::Credentials,
    script: &str,
    args: &[&str],
) -> Result<Vec<serde_json::Value>, String> {
    let python = tools::python()?;
    let script = tools::repo_root().join("tests").join(script);
    let out = Command::new(&python)
        .arg(&script)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", reader.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", reader.secret_access_key())
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .output()
        .map_err(|e| format!("{} {}: {e}", python.display(), script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{} printed no JSON list: {e}", script.display()))
}
