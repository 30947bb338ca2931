//! The ledger as a person reads it: one table per key, a row per minute,
//! then what fails the check.

use std::fmt::Write as _;

use crate::Report;
use crate::ledger::{Status, failures, minute_text};

/// The report as text.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    for source in &report.read_from {
        let _ = writeln!(out, "read: {source}");
    }
    if report.lines.is_empty() {
        let _ = writeln!(out, "\nno events were accepted in this window");
    }
    let mut key: Option<&str> = None;
    let mut totals = [0i64; 7];
    let header = "  minute (UTC)        accepted   landed rejected dead-let.     lost   open bound  status";
    for l in &report.lines {
        if key != Some(l.key.as_str()) {
            if key.is_some() {
                total_row(&mut out, &totals);
            }
            totals = [0; 7];
            key = Some(&l.key);
            let name = if l.key.is_empty() { "(no key)" } else { &l.key };
            let _ = writeln!(out, "\nkey {name}\n{header}");
        }
        let net_dead = l.dead_lettered.saturating_sub(l.redriven);
        let status = match l.status {
            Status::InFlight if l.open == 0 => "in flight (none open)".to_owned(),
            Status::InFlight => format!("in flight ({} open)", l.open),
            Status::Balanced => "balanced".to_owned(),
            Status::Missing => "MISSING".to_owned(),
            Status::Surplus => "surplus (landed twice?)".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {}  {:>9} {:>8} {:>8} {:>9} {:>8} {:>6} {:>5}  {status}",
            minute_text(l.minute),
            l.accepted,
            l.landed,
            l.rejected,
            net_dead,
            l.lost,
            l.open,
            l.bound
        );
        for (outcome, reasons) in &l.reasons {
            let list: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
            let _ = writeln!(out, "      {outcome}: {}", list.join(", "));
        }
        for (t, v) in totals.iter_mut().zip([
            l.accepted as i64,
            l.landed as i64,
            l.rejected as i64,
            net_dead as i64,
            l.lost as i64,
            l.open,
            l.bound as i64,
        ]) {
            *t += v;
        }
    }
    if key.is_some() {
        total_row(&mut out, &totals);
    }
    let fails = failures(&report.lines);
    if fails.is_empty() {
        let _ = writeln!(out, "\nevery settled minute balances");
    } else {
        let _ = writeln!(out, "\nFAILS THE CHECK:");
        for f in fails {
            let _ = writeln!(out, "  {f}");
        }
    }
    out
}

fn total_row(out: &mut String, t: &[i64; 7]) {
    let _ = writeln!(
        out,
        "  {:<16}  {:>9} {:>8} {:>8} {:>9} {:>8} {:>6} {:>5}",
        "total", t[0], t[1], t[2], t[3], t[4], t[5], t[6]
    );
}
