//! Machine description and `BENCHMARKS.md` section rewriting.

use std::path::Path;

use edgehose_shared::timestamp::Timestamp;

/// `"<cpu model>, <n> cores, <memory>"` of this machine.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")
                .map(|r| r.trim().trim_end_matches("kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    format!("{model}, {cores} cores, {} GiB", (mem_kb as f64 / 1_048_576.0).round())
}

/// Today's date (UTC), `YYYY-MM-DD`.
pub fn today() -> String {
    let iso = Timestamp::from_system_time(std::time::SystemTime::now()).to_rfc3339();
    iso[..10].to_owned()
}

/// `--write FILE`, which every benchmark takes: the Markdown file whose
/// section it rewrites.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct Write {
    /// Rewrite this benchmark's section of this Markdown file (BENCHMARKS.md).
    #[arg(long = "write", value_name = "FILE")]
    pub to: Option<String>,
}

impl Write {
    /// The file, if one was given.
    pub fn file(&self) -> Option<String> {
        self.to.clone()
    }
}

/// Prints a benchmark's table, keeps its raw results in
/// `target/bench/<name>/<name>.json`, and rewrites its section of the
/// Markdown file given, if any (`--write`).
pub fn publish(name: &str, table: &str, json: Option<&serde_json::Value>, write: Option<String>) -> Result<(), String> {
    println!("\n{table}");
    if let Some(json) = json {
        let dir = crate::repo_root().join("target/bench").join(name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_string_pretty(json).unwrap_or_default(),
        )
        .map_err(|e| e.to_string())?;
    }
    if let Some(file) = write {
        write_section(Path::new(&file), name, table)?;
        println!("wrote the {name} section of {file}");
    }
    Ok(())
}

/// Replaces the text between `<!-- bench:NAME:begin -->` and
/// `<!-- bench:NAME:end -->` in `file` (appending the section if absent).
pub fn write_section(file: &Path, name: &str, body: &str) -> Result<(), String> {
    let (begin, end) = (
        format!("<!-- bench:{name}:begin -->"),
        format!("<!-- bench:{name}:end -->"),
    );
    let text = std::fs::read_to_string(file).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let section = format!("{begin}\n{}\n{end}", body.trim_end());
    let new = match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) if e > b => format!("{}{section}{}", &text[..b], &text[e + end.len()..]),
        _ => format!("{}\n\n{section}\n", text.trim_end()),
    };
    std::fs::write(file, new).map_err(|e| format!("{}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_replaced_in_place_and_appended_when_missing() {
        let f = std::env::temp_dir().join(format!("edgehose-report-{}.md", std::process::id()));
        std::fs::write(&f, "# B\n\nintro\n").unwrap();
        write_section(&f, "edge", "one").unwrap();
        write_section(&f, "other", "x").unwrap();
        write_section(&f, "edge", "two\n").unwrap();
        let t = std::fs::read_to_string(&f).unwrap();
        assert_eq!(
            t,
            "# B\n\nintro\n\n<!-- bench:edge:begin -->\ntwo\n<!-- bench:edge:end -->\n\n<!-- bench:other:begin -->\nx\n<!-- bench:other:end -->\n"
        );
        let _ = std::fs::remove_file(f);
    }

    #[test]
    fn today_is_a_plausible_date() {
        let t = today();
        assert_eq!(t.len(), 10);
        assert!(t.as_str() >= "2026-01-01", "{t}");
    }
}
