//! The README and the book (`docs/`) as a reader takes them: the book
//! builds with mdBook, every link in it and in the README leads somewhere,
//! and every code block is run here or says why it cannot be
//! (`edgehose_tests::book` has the tags): the commands a reader types
//! against `make dev` are typed against `edgehose dev`, settings are parsed
//! by the code that reads them, and a block a named test runs names a test
//! that exists and uses its flags.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::BTreeSet;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use edgehose_local::tools::{cache_dir, http_get, repo_root};
use edgehose_shared::settings::Settings;
use edgehose_tests::book::{self, Block, Tag};
use edgehose_tests::events::wait_for;
use edgehose_tests::workspace_binary;

/// Every code block of the README and the book.
fn all_blocks() -> Vec<Block> {
    book::documents().iter().flat_map(|p| book::blocks(p)).collect()
}

#[test]
fn every_page_is_in_the_summary_and_every_code_block_has_a_tag() {
    let listed: BTreeSet<PathBuf> = book::pages().into_iter().collect();
    let on_disk: BTreeSet<PathBuf> = std::fs::read_dir(repo_root().join("docs/src"))
        .unwrap()
        .map(|e| Path::new("docs/src").join(e.unwrap().file_name()))
        .filter(|p| p.extension().is_some_and(|e| e == "md") && !p.ends_with("SUMMARY.md"))
        .collect();
    let orphans: Vec<_> = on_disk.difference(&listed).collect();
    assert!(orphans.is_empty(), "pages SUMMARY.md does not list: {orphans:?}");
    let missing: Vec<_> = listed.difference(&on_disk).collect();
    assert!(
        missing.is_empty(),
        "SUMMARY.md lists pages that do not exist: {missing:?}"
    );
    let untagged: Vec<String> = all_blocks()
        .iter()
        .filter_map(|b| b.tag.as_ref().err().map(|why| format!("{}: {why}", b.place())))
        .collect();
    assert!(
        untagged.is_empty(),
        "code blocks without a tag:\n{}",
        untagged.join("\n")
    );
}

/// mdBook from the bootstrap's cache.
fn mdbook() -> PathBuf {
    let bin = cache_dir().join("cargo-tools/bin/mdbook");
    assert!(bin.exists(), "{} is missing: run tools/bootstrap", bin.display());
    bin
}

/// The `href`s and `src`s of an HTML page, outside its code (where a
/// snippet's own markup is text).
fn html_targets(html: &str) -> Vec<String> {
    let mut markup = String::new();
    let mut rest = html;
    while let Some(at) = rest.find("<pre") {
        markup.push_str(&rest[..at]);
        rest = rest[at..].split_once("</pre>").map_or("", |(_, after)| after);
    }
    markup.push_str(rest);
    let mut out = Vec::new();
    for attribute in ["href=\"", "src=\""] {
        let mut rest = markup.as_str();
        while let Some(at) = rest.find(attribute) {
            let after = &rest[at + attribute.len()..];
            let end = after.find('"').unwrap();
            out.push(after[..end].replace("&amp;", "&"));
            rest = &after[end..];
        }
    }
    out
}

/// Whether a target leaves the repository (a web address, mail).
fn external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:") || target.starts_with("//")
}

#[test]
fn the_book_builds_and_every_link_in_it_and_in_the_readme_resolves() {
    let out = std::env::temp_dir().join(format!("edgehose-book-{}", uuid::Uuid::new_v4()));
    let built = Command::new(mdbook())
        .arg("build")
        .arg(repo_root().join("docs"))
        .arg("--dest-dir")
        .arg(&out)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&built.stderr).into_owned() + &String::from_utf8_lossy(&built.stdout);
    assert!(built.status.success(), "mdbook build failed:\n{log}");
    assert!(!log.contains("WARN") && !log.contains("ERROR"), "mdbook warned:\n{log}");
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in book::pages() {
        let name = page.file_stem().unwrap().to_str().unwrap();
        let html_file = out.join(format!("{name}.html"));
        let html = std::fs::read_to_string(&html_file).unwrap_or_else(|e| panic!("{}: {e}", html_file.display()));
        for target in html_targets(&html) {
            if external(&target) {
                continue;
            }
            checked += 1;
            let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let file = if path.is_empty() {
                html_file.clone()
            } else {
                out.join(path)
            };
            // A link out of the book is to a file of the repository, relative to
            // the page's source.
            let exists = if file.exists() {
                true
            } else {
                repo_root().join("docs/src").join(path).exists()
            };
            if !exists {
                broken.push(format!("{}: {target} (no such file)", page.display()));
                continue;
            }
            if !fragment.is_empty() && file.extension().is_some_and(|e| e == "html") {
                let text = std::fs::read_to_string(&file).unwrap();
                if !text.contains(&format!("id=\"{fragment}\"")) {
                    broken.push(format!("{}: {target} (no such anchor)", page.display()));
                }
            }
        }
    }
    for target in book::links(Path::new("README.md")) {
        if external(&target) {
            continue;
        }
        checked += 1;
        let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
        let file = repo_root().join(path);
        if !file.exists() {
            broken.push(format!("README.md: {target} (no such file)"));
        } else if !fragment.is_empty() && !book::anchors(&file).iter().any(|a| a == fragment) {
            broken.push(format!("README.md: {target} (no such heading)"));
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 50, "only {checked} links checked: the scan is broken");
}

/// The source of every test file a `test=` tag may name.
fn test_sources() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for dir in ["tests/tests", "regional/tests", "shared/tests", "edge/tests"] {
        let Ok(entries) = std::fs::read_dir(repo_root().join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out
}

#[test]
fn each_block_a_named_test_runs_names_one_that_exists_and_uses_its_flags() {
    let sources = test_sources();
    let mut wrong = Vec::new();
    let mut named = 0;
    for block in all_blocks() {
        let Ok(Tag::Test(function)) = &block.tag else { continue };
        named += 1;
        let Some((file, source)) = sources.iter().find(|(_, s)| s.contains(&format!("fn {function}("))) else {
            wrong.push(format!("{}: no test named {function}", block.place()));
            continue;
        };
        for flag in block
            .text
            .split_whitespace()
            .filter(|w| w.starts_with("--") && w.len() > 2)
        {
            let flag = flag
                .split('=')
                .next()
                .unwrap()
                .trim_matches(|c: char| c == '"' || c == '\'');
            if !source.contains(flag) {
                wrong.push(format!("{}: {} never uses {flag}", block.place(), file.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(named > 0, "no block names a test: the scan is broken");
}

/// Secrets a settings block names without a value (they go in with
/// `wrangler secret put`), as a deployment would have them.
const SECRETS: [(&str, &str); 3] = [
    ("HASH_SECRET", "a secret of thirty-two bytes, ok"),
    ("TOKEN_SECRETS", "0123456789abcdef0123456789abcdef"),
    ("WRITE_KEYS", "web:wk_web_0123456789,bikes:wk_bikes_0123456789"),
];

/// Parses a block's settings with the parsers the edge and the Lambdas use,
/// or says what they refused.
fn parse_settings(pairs: &[(String, String)]) -> Result<(), String> {
    let lookup = |name: &str| -> Option<String> {
        if let Some((_, v)) = pairs.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        SECRETS
            .iter()
            .find(|(k, _)| name.ends_with(k))
            .map(|(_, v)| (*v).to_owned())
    };
    let s = Settings::new(lookup);
    edgehose_shared::api::ApiConfig::from_settings(&s).map_err(|e| e.to_string())?;
    let policy = edgehose_shared::residency::Policy::from_settings(&s).map_err(|e| e.to_string())?;
    for region in policy.iter().flat_map(|p| p.regions()) {
        edgehose_shared::failover::FailoverPolicy::from_settings(&s, &region.prefix()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[test]
fn every_settings_and_event_block_is_read_by_the_code_that_reads_it() {
    let limits = edgehose_shared::limits::Limits::default();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for block in all_blocks() {
        if block.tag != Ok(Tag::Check) {
            continue;
        }
        checked += 1;
        let verdict = match block.language.as_str() {
            "toml" => match book::toml_settings(&block.text) {
                Ok(pairs) if pairs.is_empty() => Err("sets nothing".to_owned()),
                Ok(pairs) => parse_settings(&pairs),
                Err(e) => Err(e),
            },
            "json" => edgehose_shared::validate::validate_event(block.text.trim(), &limits)
                .map(|_| ())
                .map_err(|v| format!("{v:?}")),
            other => Err(format!("no check for {other} blocks")),
        };
        if let Err(why) = verdict {
            wrong.push(format!("{}: {why}", block.place()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(checked >= 5, "only {checked} blocks checked: the scan is broken");
}

/// `edgehose dev` on the ports and in the directory the README names, in a
/// directory of its own, stopped with Ctrl-C when dropped.
struct Dev {
    child: Child,
    dir: PathBuf,
}

impl Dev {
    fn start() -> Self {
        for port in [8787, 8788, 4573] {
            assert!(
                TcpListener::bind(("127.0.0.1", port)).is_ok(),
                "port {port} is taken: the book's commands run against `edgehose dev` on the ports it names; stop `make dev` first"
            );
        }
        let dir = std::env::temp_dir().join(format!("edgehose-book-dev-{}", uuid::Uuid::new_v4()));
        let bin = workspace_binary("edgehose");
        // The README's `target/release/edgehose`, as a reader's checkout has it.
        std::fs::create_dir_all(dir.join("target/release")).unwrap();
        std::os::unix::fs::symlink(&bin, dir.join("target/release/edgehose")).unwrap();
        let log = std::fs::File::create(dir.join("dev.log")).unwrap();
        let mut command = Command::new(&bin);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .args(["dev", "--quiet"])
            .current_dir(&dir)
            .env("EDGEHOSE_BIN_DIR", bin.parent().unwrap())
            .env_remove("EDGEHOSE_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut dev = Self { child, dir };
        let up = wait_for(Duration::from_secs(180), || {
            assert!(dev.child.try_wait().unwrap().is_none(), "dev exited:\n{}", dev.log());
            http_get("http://127.0.0.1:8787/healthz").is_ok() && http_get("http://127.0.0.1:8788/healthz").is_ok()
        });
        assert!(up, "dev did not come up:\n{}", dev.log());
        dev
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dev.log")).unwrap_or_default()
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -INT -{}", self.child.id())])
            .status();
        if !wait_for(Duration::from_secs(60), || !matches!(self.child.try_wait(), Ok(None))) {
            let _ = self.child.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a block says its commands print: each `# → text` line.
fn expected(block: &Block) -> Vec<String> {
    block
        .text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# →").map(|t| t.trim().to_owned()))
        .collect()
}

/// Runs a block as a reader's shell would, stopping at the first command
/// that fails; its output, or why it failed.
fn run(block: &Block, dir: &Path) -> Result<String, String> {
    let mut child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &block.text])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            return Err("still running after 120 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    if !child.wait().unwrap().success() {
        return Err(format!("failed:\n{stdout}{stderr}"));
    }
    let mut rest = stdout.as_str();
    for want in expected(block) {
        match rest.find(&want) {
            Some(at) => rest = &rest[at + want.len()..],
            None => return Err(format!("printed no {want:?} (in order):\n{stdout}{stderr}")),
        }
    }
    Ok(stdout)
}

/// Turns off the faults a block may have set on either side.
fn heal() {
    for (url, plan) in [
        ("http://127.0.0.1:4573/_edgehose/faults", "{}"),
        (
            "http://127.0.0.1:8787/_edgehose/faults",
            r#"{"queue_refuse":0,"r2_fail":0}"#,
        ),
    ] {
        let healed = Command::new("curl")
            .args(["-sf", "-X", "PUT", url, "-d", plan])
            .output()
            .unwrap();
        assert!(healed.status.success(), "PUT {url}: {healed:?}");
    }
}

#[test]
fn every_command_a_reader_types_against_make_dev_runs_as_written() {
    let blocks: Vec<Block> = all_blocks().into_iter().filter(|b| b.tag == Ok(Tag::Run)).collect();
    assert!(
        blocks.len() >= 5,
        "only {} run blocks: the scan is broken",
        blocks.len()
    );
    let dev = Dev::start();
    let mut failed = Vec::new();
    for block in &blocks {
        if let Err(why) = run(block, &dev.dir) {
            failed.push(format!("{}: {why}\n{}", block.place(), block.text));
        }
        // Each block as a reader trying one page at a time meets it: the
        // faults a block set (an outage, a share of failures) are off again.
        heal();
    }
    assert!(
        failed.is_empty(),
        "{}\n--- dev's log:\n{}",
        failed.join("\n\n"),
        dev.log()
    );
}
