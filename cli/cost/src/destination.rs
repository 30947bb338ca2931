//! Where Firehose delivers, and what that does to Firehose's part of the
//! bill (`edgehose cost --destination`, the template's `Destination`):
//!
//! | destination | Firehose records | Firehose bills |
//! |---|---|---|
//! | `json` (the default) | as full as what is sent together fills them (up to 1,000 KiB): one event alone is one record | each record's bytes rounded up to 5 KB, at [`prices::FIREHOSE_INGESTION`] |
//! | `iceberg` | one event each (Firehose's Iceberg destination reads one JSON object a record) | each record's own bytes, at [`prices::FIREHOSE_ICEBERG_INGESTION`], and the bytes the transform adds, at [`prices::FIREHOSE_ICEBERG_PROCESSED`] |
//!
//! The records themselves are counted by the packing code either way
//! (`traffic.rs`, with [`Destination::pack_config`]); only what Firehose
//! charges for them differs here. The Iceberg tables' own S3 writes,
//! storage and upkeep are left out, as the JSON objects' storage is on the
//! JSON side. [`compare`] prices each path both ways, for the table
//! `edgehose cost` prints after the bills.

use edgehose_shared::batch::{PackConfig, PackingStats};

use crate::bill::{Bill, Path, bill_to, count};
use crate::error::{Error, Result};
use crate::measured::Measured;
use crate::prices::{self, Price};
use crate::traffic::Shape;

/// Bytes of the transform's Iceberg row per byte of the envelope line it
/// is made from: the analyst line's columns (about the envelope's size)
/// plus the envelope line kept whole, JSON-escaped, in the `envelope`
/// column (`regional/src/iceberg_row.rs`). Measured by
/// `regional/tests/iceberg_growth.rs` on the events this model sends (2.09×
/// at 170 bytes, 2.10× at 100, 2.02× at 1,000, 2.01× at 4,000), which holds
/// this figure within 5% of the transform's rows at the default size.
pub const ICEBERG_ROW_GROWTH: f64 = 2.1;

/// Where Firehose delivers the transform's output.
pub use edgehose_shared::table::Destination;

/// One Firehose line of a bill, before it is priced.
#[derive(Debug, Clone, PartialEq)]
pub struct FirehoseLine {
    /// What Firehose bills it at.
    pub price: Price,
    /// GB this month.
    pub quantity: f64,
    /// Where the quantity comes from.
    pub from: String,
}

/// The destination named `key`, or an error naming the ones there are.
pub fn parse(key: &str) -> Result<Destination> {
    Destination::parse(key).ok_or_else(|| {
        let keys: Vec<&str> = Destination::ALL.iter().map(|d| d.key()).collect();
        Error::UnknownDestination {
            given: key.to_owned(),
            known: keys.join(", "),
        }
    })
}

/// What a destination means for the bill.
pub trait Billed {
    /// For people.
    fn describe(self) -> &'static str;
    /// How the edge and `ingest-api` fill records for it.
    fn pack_config(self) -> PackConfig;
    /// Whether the bill counts an S3 PUT per object Firehose writes (the
    /// JSON objects); the Iceberg tables' writes are left out.
    fn counts_s3_puts(self) -> bool;
    /// What Firehose bills for `firehose` (the packing's quantities),
    /// scaled by `scale` to the month.
    fn firehose_lines(self, firehose: &PackingStats, scale: f64) -> Vec<FirehoseLine>;
}

impl Billed for Destination {
    fn describe(self) -> &'static str {
        match self {
            Destination::Json => "JSON objects in S3",
            Destination::Iceberg => "Apache Iceberg tables",
        }
    }

    fn pack_config(self) -> PackConfig {
        PackConfig::for_destination(self)
    }

    fn counts_s3_puts(self) -> bool {
        self == Destination::Json
    }

    fn firehose_lines(self, firehose: &PackingStats, scale: f64) -> Vec<FirehoseLine> {
        let records = firehose.records as f64 * scale;
        let payload = firehose.payload_bytes as f64 * scale;
        match self {
            Destination::Json => {
                let billed = firehose.billed_bytes as f64 * scale;
                vec![FirehoseLine {
                    price: prices::FIREHOSE_INGESTION,
                    quantity: billed / prices::GB,
                    from: format!(
                        "{} records, {:.2}× the payload once rounded to 5 KB",
                        count(records),
                        billed / payload.max(1.0)
                    ),
                }]
            }
            Destination::Iceberg => {
                let added = payload * (ICEBERG_ROW_GROWTH - 1.0).max(0.0);
                vec![
                    FirehoseLine {
                        price: prices::FIREHOSE_ICEBERG_INGESTION,
                        quantity: payload / prices::GB,
                        from: format!(
                            "{} records of one event, {:.0} bytes each on average, not rounded",
                            count(records),
                            payload / records.max(1.0)
                        ),
                    },
                    FirehoseLine {
                        price: prices::FIREHOSE_ICEBERG_PROCESSED,
                        quantity: added / prices::GB,
                        from: format!(
                            "the transform's rows, {ICEBERG_ROW_GROWTH}× the lines (measured at 170-byte events): the bytes beyond those ingested"
                        ),
                    },
                ]
            }
        }
    }
}

/// What Firehose itself charges on `bill`, dollars this month.
pub fn firehose_usd(bill: &Bill) -> f64 {
    let items = [
        prices::FIREHOSE_INGESTION.item,
        prices::FIREHOSE_ICEBERG_INGESTION.item,
        prices::FIREHOSE_ICEBERG_PROCESSED.item,
    ];
    bill.items
        .iter()
        .filter(|i| items.contains(&i.price.item))
        .map(|i| i.usd)
        .sum()
}

/// One path's month delivered to one destination.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Side {
    /// The destination.
    pub destination: Destination,
    /// Firehose's own lines, dollars per million events.
    pub firehose_per_million: f64,
    /// Firehose's own lines, dollars per GB (2³⁰ bytes) of events as the
    /// clients send them.
    pub firehose_per_gb_sent: f64,
    /// The whole bill, dollars per million events.
    pub whole_per_million: f64,
}

impl Side {
    /// The figures of `bill`, whose events are `event_bytes` each as sent.
    pub fn of(bill: &Bill, event_bytes: usize) -> Self {
        let firehose = firehose_usd(bill);
        let sent_gb = bill.events * event_bytes as f64 / prices::GB;
        Self {
            destination: bill.destination,
            firehose_per_million: firehose / (bill.events / 1e6),
            firehose_per_gb_sent: firehose / sent_gb,
            whole_per_million: bill.per_million(),
        }
    }
}

/// One path priced with each destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The path.
    pub path: Path,
    /// One side per destination, in [`Destination::ALL`]'s order.
    pub sides: Vec<Side>,
}

/// Each of `paths` priced with every destination, `events_per_month`
/// events of `shape`.
pub fn compare(paths: &[Path], events_per_month: f64, shape: Shape, measured: &Measured) -> Result<Vec<Comparison>> {
    paths
        .iter()
        .map(|&path| {
            let sides = Destination::ALL
                .iter()
                .map(|&d| bill_to(path, events_per_month, shape, measured, d).map(|b| Side::of(&b, shape.event_bytes)))
                .collect::<Result<_>>()?;
            Ok(Comparison { path, sides })
        })
        .collect()
}

/// The comparison, for people (a Markdown table).
pub fn render(comparisons: &[Comparison], shape: Shape) -> String {
    let mut t = format!(
        "\nFirehose destination: json vs iceberg, at {}-byte events: Firehose's own lines in US$ per million events and per GB of events as sent (2³⁰ bytes), and the whole bill per million. Iceberg: one event a record, no 5 KB rounding, the transform's added bytes at {ICEBERG_ROW_GROWTH}× the lines (measured at 170-byte events, about 2.0× for large ones); the tables' own S3 writes, storage and upkeep are not counted.\n\n",
        shape.event_bytes
    );
    let mut head = String::from("| path |");
    let mut rule = String::from("|---|");
    for d in Destination::ALL {
        let k = d.key();
        head.push_str(&format!(
            " {k}: Firehose $/M events | {k}: Firehose $/GB | {k}: whole bill $/M events |"
        ));
        rule.push_str("---|---|---|");
    }
    t.push_str(&format!("{head}\n{rule}\n"));
    for c in comparisons {
        t.push_str(&format!("| {} |", c.path.key()));
        for s in &c.sides {
            t.push_str(&format!(
                " {:.4} | {:.4} | {:.3} |",
                s.firehose_per_million, s.firehose_per_gb_sent, s.whole_per_million
            ));
        }
        t.push('\n');
    }
    t
}

/// The comparison as JSON.
pub fn json(comparisons: &[Comparison], shape: Shape) -> serde_json::Value {
    serde_json::json!({
        "event_bytes": shape.event_bytes,
        "iceberg_row_growth": ICEBERG_ROW_GROWTH,
        "paths": comparisons.iter().map(|c| serde_json::json!({
            "path": c.path.key(),
            "destinations": c.sides.iter().map(|s| serde_json::json!({
                "destination": s.destination.key(),
                "firehose_usd_per_million_events": s.firehose_per_million,
                "firehose_usd_per_gb_sent": s.firehose_per_gb_sent,
                "usd_per_million_events": s.whole_per_million,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgehose_shared::batch::pack;

    /// 10,000 lines of 199 bytes: 200 with the newline.
    fn lines() -> Vec<String> {
        (0..10_000).map(|n| format!("{n:0>199}")).collect()
    }

    fn stats(destination: Destination) -> PackingStats {
        PackingStats::of(&pack(&lines(), "edgehose-events", destination.pack_config()).unwrap())
    }

    fn usd(lines: &[FirehoseLine]) -> f64 {
        lines.iter().map(|l| l.price.of(l.quantity)).sum()
    }

    #[test]
    fn json_packs_a_million_200_byte_events_into_records_rounded_to_5_kb() {
        let s = stats(Destination::Json);
        // 1,024,000-byte records hold 5,120 lines: two records, 1,024,000
        // bytes (already a multiple of 5,120) and 976,000 (rounded up to
        // 191 × 5,120 = 977,920).
        assert_eq!((s.records, s.payload_bytes, s.billed_bytes), (2, 2_000_000, 2_001_920));
        // Scaled to a million events: 200,192,000 bytes at $0.029 per 2³⁰.
        let l = Destination::Json.firehose_lines(&s, 100.0);
        assert_eq!(l.len(), 1);
        assert!(
            (l[0].quantity - 0.186_443_328_857_421_88).abs() < 1e-12,
            "{}",
            l[0].quantity
        );
        assert!((usd(&l) - 0.005_406_856_536_865_234).abs() < 1e-12, "{}", usd(&l));
    }

    #[test]
    fn iceberg_bills_a_million_200_byte_events_by_the_byte_and_the_transforms_growth() {
        let s = stats(Destination::Iceberg);
        assert_eq!(s.records, 10_000, "one event a record");
        assert_eq!(s.payload_bytes, 2_000_000);
        let l = Destination::Iceberg.firehose_lines(&s, 100.0);
        assert_eq!(l.len(), 2);
        // 200,000,000 bytes ingested, unrounded, at $0.075 per 2³⁰ …
        assert_eq!(l[0].price, prices::FIREHOSE_ICEBERG_INGESTION);
        assert!(
            (l[0].quantity - 0.186_264_514_923_095_7).abs() < 1e-12,
            "{}",
            l[0].quantity
        );
        assert!((l[0].price.of(l[0].quantity) - 0.013_969_838_619_232_178).abs() < 1e-12);
        // … and the 1.1 × 200,000,000 bytes the transform adds, at $0.045.
        assert_eq!(l[1].price, prices::FIREHOSE_ICEBERG_PROCESSED);
        assert!(
            (l[1].quantity - 0.204_890_966_415_405_3).abs() < 1e-12,
            "{}",
            l[1].quantity
        );
        assert!((l[1].price.of(l[1].quantity) - 0.009_220_093_488_693_239).abs() < 1e-12);
        assert!((usd(&l) - 0.023_189_932_107_925_415).abs() < 1e-12, "{}", usd(&l));
    }

    #[test]
    fn one_event_a_record_costs_iceberg_far_less_than_json_rounding() {
        // A record per 200-byte event, as on the API Gateway path at one
        // event a request: JSON bills 5,120 bytes for each.
        let one_each = stats(Destination::Iceberg);
        let mut rounded = one_each;
        rounded.billed_bytes = 10_000 * 5_120;
        let json = usd(&Destination::Json.firehose_lines(&rounded, 100.0));
        assert!((json - 5.12e9 / prices::GB * 0.029).abs() < 1e-12, "{json}");
        assert!((json - 0.138_282_775_878_906_25).abs() < 1e-12, "{json}");
        let iceberg = usd(&Destination::Iceberg.firehose_lines(&one_each, 100.0));
        assert!(iceberg < json / 5.0, "{iceberg} vs {json}");
    }

    #[test]
    fn destinations_parse_by_key() {
        for d in Destination::ALL {
            assert_eq!(parse(d.key()).ok(), Some(d));
        }
        let e = parse("parquet").unwrap_err().to_string();
        assert!(e.contains("json, iceberg"), "{e}");
        assert_eq!(Destination::default(), Destination::Json);
    }

    #[test]
    fn the_comparison_prices_each_path_both_ways() {
        let m = Measured::built_in().unwrap();
        let shape = Shape {
            events_per_request: 1,
            event_bytes: 170,
            requests_per_window: 1,
        };
        let c = compare(&[Path::ApiGateway, Path::EdgeQueueWindow], 100e6, shape, &m).unwrap();
        assert_eq!(c.len(), 2);
        for p in &c {
            let keys: Vec<_> = p.sides.iter().map(|s| s.destination).collect();
            assert_eq!(keys, Destination::ALL);
            for s in &p.sides {
                // Per GB sent is per million events over the GB a million
                // 170-byte events are.
                let gb_per_million = 1e6 * 170.0 / prices::GB;
                assert!((s.firehose_per_gb_sent - s.firehose_per_million / gb_per_million).abs() < 1e-9);
                assert!(s.firehose_per_million > 0.0 && s.whole_per_million > s.firehose_per_million);
            }
        }
        // One event a request: every JSON record is rounded up to 5 KB, so
        // Iceberg's Firehose lines cost less there.
        let apigw = &c[0].sides;
        assert!(
            apigw[1].firehose_per_million < apigw[0].firehose_per_million,
            "{apigw:?}"
        );
        let text = render(&c, shape);
        assert!(
            text.contains("json vs iceberg") && text.contains("| api-gateway |"),
            "{text}"
        );
        let j = json(&c, shape);
        assert_eq!(j["paths"][0]["destinations"][1]["destination"], "iceberg");
    }
}
