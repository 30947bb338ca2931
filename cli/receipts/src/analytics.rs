//! The edge's outcome counts, read from Workers Analytics Engine's SQL API
//! (`POST …/accounts/<id>/analytics_engine/sql` with an API token that may
//! read Account Analytics), or from the stand-in Miniflare runs under
//! `make dev` (`POST <worker>/_edgehose/analytics/sql`), which answers the
//! same queries in the same JSON.
//!
//! The edge writes one data point per cell (minute, key, door, reason) and
//! flush: blobs 1–4 are the cell, doubles 1–14 the counts in
//! [`Outcome::ALL`]'s order. Analytics Engine may sample under load, keeping
//! one point of every `_sample_interval`; each count is read weighted by it
//! (an unbiased estimate), with its variance estimate
//! Σ k(k−1)·x² (Horvitz–Thompson with inclusion probability 1/k) so the
//! ledger can say how far off the estimate may be. Unsampled, it is exact
//! and the variance 0.

use std::collections::BTreeMap;

use edgehose_local::http::send;
use edgehose_shared::outcome::{Cell, Counts, OUTCOMES, Outcome, Tally};
use serde_json::Value;

use crate::error::{Error, Result};

/// The dataset the edge writes (wrangler.toml's `OUTCOMES` binding).
pub const DATASET: &str = "edgehose_outcomes";

/// Where the counts are read.
#[derive(Debug, Clone)]
pub struct Analytics {
    /// The SQL endpoint.
    pub sql_url: String,
    /// The API token (Cloudflare), or none (the local stand-in).
    pub token: Option<String>,
    /// The dataset.
    pub dataset: String,
}

/// The edge's counts, and each one's variance where sampling made it an estimate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdgeCounts {
    /// The counts (weighted, rounded to whole events).
    pub tally: Tally,
    /// Per cell, each outcome's variance (0 when every point was kept).
    pub variance: BTreeMap<Cell, [f64; OUTCOMES]>,
    /// The most points one kept point stood for (1: nothing was sampled).
    pub most_sampled: u64,
}

impl Analytics {
    /// Cloudflare's SQL API for `account`, read with `token`.
    pub fn cloudflare(account: &str, token: &str) -> Self {
        Self {
            sql_url: format!("https://api.cloudflare.com/client/v4/accounts/{account}/analytics_engine/sql"),
            token: Some(token.to_owned()),
            dataset: DATASET.to_owned(),
        }
    }

    /// The stand-in of the Worker Miniflare runs at `worker_url`.
    pub fn local(worker_url: &str) -> Self {
        Self {
            sql_url: format!("{}/_edgehose/analytics/sql", worker_url.trim_end_matches('/')),
            token: None,
            dataset: DATASET.to_owned(),
        }
    }

    /// The counts of every data point written since `since_secs` (Unix
    /// seconds), summed per cell.
    pub fn read(&self, since_secs: i64) -> Result<EdgeCounts> {
        let query = query(&self.dataset, since_secs);
        let mut request = http::Request::post(&self.sql_url).header("content-type", "text/plain");
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = send(request.body(query.into_bytes())?)?;
        if response.status != 200 {
            return Err(Error::Answer(format!(
                "{} answered HTTP {}: {}",
                self.sql_url,
                response.status,
                response.text()
            )));
        }
        let answer: Value = serde_json::from_slice(&response.body)
            .map_err(|e| Error::Answer(format!("{} answered no JSON: {e}", self.sql_url)))?;
        parse(&answer)
    }
}

/// The one query: per cell, each count weighted by `_sample_interval`, its
/// variance, and how sampled the cell's points were.
pub fn query(dataset: &str, since_secs: i64) -> String {
    let mut items = vec![
        "blob1 AS minute".to_owned(),
        "blob2 AS key".to_owned(),
        "blob3 AS door".to_owned(),
        "blob4 AS reason".to_owned(),
    ];
    for (i, o) in Outcome::ALL.iter().enumerate() {
        let (n, name) = (i + 1, o.as_str());
        items.push(format!("SUM(_sample_interval * double{n}) AS {name}"));
        items.push(format!(
            "SUM(_sample_interval * (_sample_interval - 1) * double{n} * double{n}) AS {name}_var"
        ));
    }
    items.push("MAX(_sample_interval) AS most_sampled".to_owned());
    format!(
        "SELECT {} FROM {dataset} WHERE timestamp >= toDateTime({since_secs}) GROUP BY minute, key, door, reason FORMAT JSON",
        items.join(", ")
    )
}

/// A number the SQL API wrote as a number or (64-bit integers) as a string.
fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// The rows of an answer, summed per cell.
pub fn parse(answer: &Value) -> Result<EdgeCounts> {
    let rows = answer["data"]
        .as_array()
        .ok_or_else(|| Error::Answer(format!("the SQL answer has no data: {answer}")))?;
    let mut out = EdgeCounts {
        most_sampled: 1,
        ..EdgeCounts::default()
    };
    for row in rows {
        let text = |name: &str| row[name].as_str().map(str::to_owned).unwrap_or_default();
        let Some(minute) = text("minute").parse::<i64>().ok() else {
            continue; // a point no edgehose Worker wrote
        };
        let cell = Cell {
            minute,
            key: text("key"),
            door: text("door"),
            reason: text("reason"),
        };
        let mut counts: Counts = [0; OUTCOMES];
        let mut variance = [0.0; OUTCOMES];
        for o in Outcome::ALL {
            let name = o.as_str();
            let n = number(&row[name]).ok_or_else(|| Error::Answer(format!("a row has no {name}: {row}")))?;
            counts[o.index()] = n.round().max(0.0) as u64;
            variance[o.index()] = number(&row[format!("{name}_var")]).unwrap_or(0.0);
        }
        for o in Outcome::ALL {
            out.tally.add(cell.clone(), o, counts[o.index()]);
        }
        let v = out.variance.entry(cell).or_insert([0.0; OUTCOMES]);
        for (a, b) in v.iter_mut().zip(variance) {
            *a += b;
        }
        out.most_sampled = out.most_sampled.max(number(&row["most_sampled"]).unwrap_or(1.0) as u64);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_asks_for_every_outcome_weighted_and_its_variance() {
        let q = query("edgehose_outcomes", 1_700_000_000);
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert!(q.contains(&format!("double{}) AS {},", i + 1, o.as_str())), "{q}");
        }
        assert!(q.contains("SUM(_sample_interval * double12) AS duplicate"), "{q}");
        assert!(q.contains("WHERE timestamp >= toDateTime(1700000000) GROUP BY"), "{q}");
    }

    #[test]
    fn an_answer_is_read_weighted_with_numbers_as_numbers_or_strings() {
        let answer = serde_json::json!({"data": [
            {"minute": "28333333", "key": "web", "door": "v1", "reason": "", "accepted": 40.0, "accepted_var": "120",
             "enqueued": "40", "quarantined": 0, "refused": 0, "delivered": 0, "dead_lettered": 0, "archived": 0,
             "redriven": 0, "lost": 0, "landed": 0, "rejected": 0, "duplicate": 0, "limited": "3", "labelled": 0,
             "most_sampled": "4"},
            {"minute": "not ours", "key": "x"}
        ]});
        let counts = parse(&answer).unwrap();
        assert_eq!(counts.tally.total(Outcome::Accepted), 40);
        assert_eq!(counts.tally.total(Outcome::Enqueued), 40);
        assert_eq!(counts.tally.total(Outcome::Limited), 3);
        assert_eq!(counts.most_sampled, 4);
        let (_, v) = counts.variance.iter().next().unwrap();
        assert!((v[Outcome::Accepted.index()] - 120.0).abs() < 1e-9);
        assert!(parse(&serde_json::json!({"errors": []})).is_err());
    }
}
