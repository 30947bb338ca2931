//! The ledger as a page a person would rather look at than read: per key, a
//! chart of every minute (a bar as high as the events accepted, split into
//! where they went: landed, rejected, dead-lettered, lost, still open) and
//! the table under it. One self-contained file: inline SVG and CSS, no
//! script, nothing fetched.

use std::fmt::Write as _;

use crate::Report;
use crate::ledger::{Line, Status, minute_text};

/// The chart's height for the busiest minute, px.
const CHART_HEIGHT: f64 = 200.0;
/// One minute's bar and the gap after it, px.
const BAR: f64 = 14.0;
const GAP: f64 = 4.0;

/// The segments of a bar, bottom up: a class, a label, a colour, a count.
fn segments(l: &Line) -> [(&'static str, &'static str, &'static str, u64); 5] {
    let dead = l.dead_lettered.saturating_sub(l.redriven);
    [
        ("landed", "landed", "#2e7d32", l.landed),
        ("rejected", "rejected", "#ef6c00", l.rejected),
        ("dead", "dead-lettered", "#c62828", dead),
        ("lost", "lost", "#000000", l.lost),
        ("open", "in flight / missing", "#9e9e9e", l.open.max(0) as u64),
    ]
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page.
pub fn page(report: &Report, title: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0 2em}}td,th{{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}}\
         th:first-child,td:first-child{{text-align:left}}tr.total td{{font-weight:bold}}\
         .legend span{{display:inline-block;margin-right:1em}}.legend i{{display:inline-block;width:10px;height:10px;margin-right:4px}}\
         .missing{{color:#c62828;font-weight:bold}}</style></head><body><h1>{}</h1>",
        escape(title),
        escape(title)
    );
    for r in &report.read_from {
        let _ = write!(out, "<p class=\"source\">read: {}</p>", escape(r));
    }
    if report.failures.is_empty() {
        out.push_str("<p class=\"verdict\" data-passes=\"true\">Every settled minute balances.</p>");
    } else {
        out.push_str("<div class=\"verdict\" data-passes=\"false\"><p class=\"missing\">Fails the check:</p><ul>");
        for f in &report.failures {
            let _ = write!(out, "<li>{}</li>", escape(f));
        }
        out.push_str("</ul></div>");
    }
    out.push_str("<p class=\"legend\">");
    if let Some(l) = report.lines.first() {
        for (class, label, colour, _) in segments(l) {
            let _ = write!(
                out,
                "<span class=\"{class}\"><i style=\"background:{colour}\"></i>{label}</span>"
            );
        }
    }
    out.push_str("<span>— accepted</span></p>");
    let mut keys: Vec<&str> = report.lines.iter().map(|l| l.key.as_str()).collect();
    keys.dedup();
    for key in keys {
        let lines: Vec<&Line> = report.lines.iter().filter(|l| l.key == key).collect();
        section(&mut out, key, &lines);
    }
    out.push_str("</body></html>\n");
    out
}

fn section(out: &mut String, key: &str, lines: &[&Line]) {
    let name = if key.is_empty() { "(no key)" } else { key };
    let _ = write!(
        out,
        "<section class=\"key\" data-key=\"{}\"><h2>key {}</h2>",
        escape(key),
        escape(name)
    );
    let most = lines
        .iter()
        .map(|l| l.accepted.max(segments(l).iter().map(|s| s.3).sum()))
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = CHART_HEIGHT / most as f64;
    let width = (lines.len() as f64 * (BAR + GAP)).max(BAR + GAP) + 60.0;
    let _ = write!(
        out,
        "<svg class=\"chart\" width=\"{width}\" height=\"{}\" data-scale=\"{scale}\" role=\"img\" aria-label=\"events per minute for key {}\">",
        CHART_HEIGHT + 40.0,
        escape(name)
    );
    let base = CHART_HEIGHT + 10.0;
    let _ = write!(
        out,
        "<text x=\"0\" y=\"12\" font-size=\"10\">{most}</text><line x1=\"40\" x2=\"{width}\" y1=\"{base}\" y2=\"{base}\" stroke=\"#999\"/>"
    );
    for (i, l) in lines.iter().enumerate() {
        let x = 44.0 + i as f64 * (BAR + GAP);
        let _ = write!(
            out,
            "<g class=\"minute\" data-minute=\"{}\" data-accepted=\"{}\"><title>{}: {} accepted</title>",
            l.minute,
            l.accepted,
            minute_text(l.minute),
            l.accepted
        );
        let mut y = base;
        for (class, _, colour, n) in segments(l) {
            if n == 0 {
                continue;
            }
            let h = n as f64 * scale;
            y -= h;
            let _ = write!(
                out,
                "<rect class=\"{class}\" data-count=\"{n}\" x=\"{x}\" y=\"{y:.2}\" width=\"{BAR}\" height=\"{h:.2}\" fill=\"{colour}\"/>"
            );
        }
        let top = base - l.accepted as f64 * scale;
        let _ = write!(
            out,
            "<line class=\"accepted\" x1=\"{}\" x2=\"{}\" y1=\"{top:.2}\" y2=\"{top:.2}\" stroke=\"#1565c0\" stroke-width=\"2\"/></g>",
            x - 2.0,
            x + BAR + 2.0
        );
    }
    if let (Some(first), Some(last)) = (lines.first(), lines.last()) {
        let _ = write!(
            out,
            "<text x=\"44\" y=\"{}\" font-size=\"10\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            base + 14.0,
            &minute_text(first.minute)[11..],
            width - 4.0,
            base + 28.0,
            &minute_text(last.minute)[11..]
        );
    }
    out.push_str("</svg>");
    out.push_str(
        "<table><thead><tr><th>minute (UTC)</th><th>accepted</th><th>landed</th><th>rejected</th>\
         <th>dead-lettered</th><th>lost</th><th>open</th><th>bound</th><th>status</th></tr></thead><tbody>",
    );
    let mut total = [0i64; 6];
    for l in lines {
        let dead = l.dead_lettered.saturating_sub(l.redriven);
        let status = match l.status {
            Status::InFlight => "in flight",
            Status::Balanced => "balanced",
            Status::Missing => "missing",
            Status::Surplus => "surplus",
        };
        let _ = write!(
            out,
            "<tr class=\"{status}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{dead}</td><td>{}</td><td>{}</td><td>{}</td><td>{status}</td></tr>",
            minute_text(l.minute),
            l.accepted,
            l.landed,
            l.rejected,
            l.lost,
            l.open,
            l.bound
        );
        for (t, v) in total.iter_mut().zip([
            l.accepted as i64,
            l.landed as i64,
            l.rejected as i64,
            dead as i64,
            l.lost as i64,
            l.open,
        ]) {
            *t += v;
        }
    }
    let _ = write!(
        out,
        "<tr class=\"total\"><td>total</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td></td><td></td></tr></tbody></table></section>",
        total[0], total[1], total[2], total[3], total[4], total[5]
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_is_split_by_fate_and_scaled_to_the_busiest_minute() {
        let line = |minute, accepted, landed, rejected| Line {
            minute,
            key: "web".into(),
            accepted,
            landed,
            rejected,
            status: Status::Balanced,
            ..Line::default()
        };
        let report = Report {
            lines: vec![line(10, 8, 6, 2), line(11, 4, 4, 0)],
            read_from: vec!["here & there".into()],
            failures: Vec::new(),
        };
        let html = page(&report, "receipts <test>");
        assert!(html.contains("<title>receipts &lt;test&gt;</title>"));
        assert!(html.contains("here &amp; there"));
        assert_eq!(html.matches("<g class=\"minute\"").count(), 2);
        assert!(html.contains("class=\"landed\" data-count=\"6\""), "{html}");
        // The busiest minute (8) fills the chart's 200 px: 6 landed are 150.
        assert!(html.contains("height=\"150.00\""), "{html}");
        assert!(html.contains("<tr class=\"total\"><td>total</td><td>12</td><td>10</td><td>2</td>"));
        assert!(html.contains("data-passes=\"true\""));
    }
}
