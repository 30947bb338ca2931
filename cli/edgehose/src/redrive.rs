//! `edgehose redrive`: archived dead letters back through the normal path,
//! one command, printing each round.

use edgehose_local::cloudflare::admin::{DEV_ADMIN_KEY, count, redrive};

/// `edgehose redrive`'s options.
#[derive(Debug, clap::Args)]
#[command(about = "Send archived dead letters through the normal path again")]
pub struct RedriveArgs {
    /// The edge Worker (make dev's by default).
    #[arg(long, default_value = "http://127.0.0.1:8787")]
    url: String,
    /// Its ADMIN_KEY secret (make dev's when unset).
    #[arg(long, env = "ADMIN_KEY", default_value = DEV_ADMIN_KEY, hide_default_value = true, hide_env_values = true)]
    admin_key: String,
    /// Only say how much is archived.
    #[arg(long)]
    count: bool,
}

/// Runs the command.
pub fn run(args: RedriveArgs) -> Result<(), String> {
    let url = args.url.trim_end_matches('/');
    if args.count {
        let (objects, more) = count(url, &args.admin_key)?;
        println!("{objects}{} archived objects", if more { "+" } else { "" });
        return Ok(());
    }
    let done = redrive(url, &args.admin_key, |v| {
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
