//! `edgehose token`: mints a signed ingest token (`shared::token`) for a
//! write key, bound to an origin and an expiry, with the first of the
//! `TOKEN_SECRETS` the Worker checks it with. What a customer's backend does
//! for each page it serves (docs/src/abuse.md, "Signed ingest tokens", has the same in
//! a few lines of Node and Python).

use std::time::Duration;

use edgehose_local::clock::now;
use edgehose_shared::token::{MAX_LIFETIME_S, MIN_SECRET_BYTES, mint};

use crate::duration::span;

/// `edgehose token`'s options.
#[derive(Debug, clap::Args)]
#[command(about = "Mint a signed ingest token for a write key")]
pub struct TokenArgs {
    /// The write key's id (WRITE_KEYS' `id` in id:key).
    #[arg(long)]
    key: String,
    /// The page's origin (`https://shop.example`), or * for any caller.
    #[arg(long)]
    origin: String,
    /// How long it lives (at most a day).
    #[arg(long, default_value = "1h", value_parser = span)]
    ttl: Duration,
    /// The secrets, as the Worker's TOKEN_SECRETS (the first signs).
    #[arg(long, env = "TOKEN_SECRETS", hide_env_values = true)]
    secrets: String,
}

/// Runs the command.
pub fn run(args: TokenArgs) -> Result<(), String> {
    let secret = args.secrets.split(',').next().unwrap_or_default().trim();
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "TOKEN_SECRETS: the first secret is shorter than {MIN_SECRET_BYTES} bytes"
        ));
    }
    if args.ttl.as_secs() as i64 > MAX_LIFETIME_S {
        return Err(format!("--ttl {} s: a token lives a day at most", args.ttl.as_secs()));
    }
    if args.key.is_empty() || args.key.contains('.') {
        return Err("--key: a write key's id, without dots".into());
    }
    let expiry = now().add_millis(args.ttl.as_millis() as i64);
    println!("{}", mint(secret.as_bytes(), &args.key, &args.origin, expiry));
    Ok(())
}
