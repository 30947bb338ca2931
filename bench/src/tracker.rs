//! `edgehose-bench tracker` (`make bench-tracker`): the browser tracker's
//! size, as a page pays for it — `tracker/edgehose.min.js` built afresh from
//! its source by `tools/build-tracker`, raw and gzipped (level 9, what a CDN
//! serves), against its 2 KB target, beside Segment's analytics-next bundle
//! for scale.

use std::path::Path;
use std::process::Command;

use crate::harness::report;
use crate::repo_root;

/// The target: under 2 KB gzipped.
pub const TARGET_GZIP_BYTES: usize = 2048;

/// `bytes`, gzipped at level 9.
pub fn gzipped(bytes: &[u8]) -> usize {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = gz.write_all(bytes);
    gz.finish().map(|v| v.len()).unwrap_or(0)
}

/// Runs the benchmark; see the module docs.
pub fn main(write: crate::harness::report::Write) -> Result<(), String> {
    let root = repo_root();
    let dir = root.join("target/bench/tracker");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let out = dir.join("edgehose.min.js");
    let status = Command::new(root.join("tools/build-tracker"))
        .arg(&out)
        .status()
        .map_err(|e| format!("tools/build-tracker: {e}"))?;
    if !status.success() {
        return Err("tools/build-tracker failed".into());
    }
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let built = read(&out)?;
    let source = read(&root.join("tracker/edgehose.js"))?;
    let committed = read(&root.join("tracker/edgehose.min.js"))?;
    let segment = read(&crate::cache_dir().join("npm/node_modules/@segment/analytics-next/dist/umd/index.js")).ok();
    let gz = gzipped(&built);
    let mut t = format!(
        "### Browser tracker size ({})\n\n`make bench-tracker` — `tracker/edgehose.min.js` built from `tracker/edgehose.js` by `tools/build-tracker` (esbuild, minified), gzipped at level 9.\n\n| file | bytes | gzipped |\n|---|---|---|\n",
        report::today()
    );
    t.push_str(&format!(
        "| `tracker/edgehose.js` (source, with its comments) | {} | {} |\n",
        source.len(),
        gzipped(&source)
    ));
    t.push_str(&format!("| **`edgehose.min.js`** | {} | **{gz}** |\n", built.len()));
    if let Some(s) = &segment {
        t.push_str(&format!(
            "| Segment's `analytics-next` (`dist/umd/index.js`, for scale; it loads more chunks as features need them) | {} | {} |\n",
            s.len(),
            gzipped(s)
        ));
    }
    t.push_str(&format!(
        "\nTarget: under {} bytes gzipped — **{}** ({gz} bytes). The committed file {} the fresh build.\n",
        TARGET_GZIP_BYTES,
        if gz < TARGET_GZIP_BYTES { "met" } else { "missed" },
        if built == committed {
            "is"
        } else {
            "is NOT (run tools/build-tracker)"
        }
    ));
    let json = serde_json::json!({
        "date": report::today(), "source_bytes": source.len(), "min_bytes": built.len(), "min_gzip_bytes": gz,
        "committed_matches": built == committed, "target_gzip_bytes": TARGET_GZIP_BYTES,
        "analytics_next_gzip_bytes": segment.as_deref().map(gzipped),
    });
    report::publish("tracker", &t, Some(&json), write.file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_shrinks_repetition_and_counts_its_own_header() {
        let text = "edgehose ".repeat(1000);
        let n = gzipped(text.as_bytes());
        assert!(n > 18 && n < 200, "{n}");
    }
}
