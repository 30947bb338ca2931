//! What a run under faults must come to: every accepted event in the
//! destination or among the dead letters, as sent, with every kind of fault
//! met on the way. The faults come from `edgehose_local::faults` (through
//! firehose-local, or [`FaultProxy`] in front of moto).

use std::time::Duration;

use edgehose_local::cloudflare::miniflare::Edge;
use edgehose_local::faults::proxy::FaultProxy;

/// The ids of every envelope the edge archived as a dead letter.
pub fn dead_letter_ids(edge: &Edge) -> std::collections::BTreeSet<String> {
    edge.dead_letters()
        .unwrap_or_else(|e| panic!("could not read the edge's dead letters: {e}"))
        .iter()
        .filter_map(|l| edgehose_shared::envelope::Envelope::parse(l).ok())
        .map(|e| e.id.into_owned())
        .collect()
}

/// Waits (up to two minutes) until every sent event (`(id, event text)`) is
/// in the destination (`landed`: each id's copies, as event texts) or among
/// the edge's dead letters (its R2 archive); then fails the test naming what was lost, an
/// event that landed other than as sent, or a fault the run never met
/// (throttling, a 500, a partial call, a lost response). Prints and returns
/// the tally.
pub fn assert_nothing_lost(
    what: &str,
    sent: &[(String, String)],
    proxy: &FaultProxy,
    edge: &Edge,
    landed: impl Fn() -> std::collections::BTreeMap<String, Vec<String>>,
) -> Tally {
    use std::collections::BTreeSet;
    let ids: BTreeSet<&str> = sent.iter().map(|(id, _)| id.as_str()).collect();
    let log = || edge.log();
    let dead = || -> BTreeSet<String> { dead_letter_ids(edge) };
    let complete = crate::events::wait_for(Duration::from_secs(120), || {
        let (got, dl) = (landed(), dead());
        ids.iter().all(|id| got.contains_key(*id) || dl.contains(*id))
    });
    let (got, dl) = (landed(), dead());
    let missing: Vec<&&str> = ids
        .iter()
        .filter(|id| !got.contains_key(**id) && !dl.contains(**id))
        .collect();
    let stats = proxy.stats();
    assert!(
        complete && missing.is_empty(),
        "{what}: lost {missing:?}\nfaults: {stats:?}\n{}",
        log()
    );
    assert!(
        stats.throttled > 0 && stats.server_errors > 0 && stats.partial > 0 && stats.lost_responses > 0,
        "{what}: not every fault was met: {stats:?}"
    );
    // Production would have cut off work still pending 30 s after its answer.
    let cloudflare = edge
        .cloudflare_stats()
        .unwrap_or_else(|e| panic!("{what}: could not read the local runner's fault stats: {e}"));
    assert_eq!(
        cloudflare.wait_until_cut,
        0,
        "{what}: waitUntil work was cut: {cloudflare:?}\n{}",
        log()
    );
    assert!(
        got.len() * 2 >= ids.len(),
        "{what}: only {} of {} events landed; the rest were dead-lettered: retries should carry most through\n{}",
        got.len(),
        ids.len(),
        log()
    );
    for (id, copies) in &got {
        let original = &sent
            .iter()
            .find(|(i, _)| i == id)
            .unwrap_or_else(|| panic!("{what}: unexpected id {id}"))
            .1;
        assert!(
            copies.iter().all(|c| c == original),
            "{what}: {id} landed other than as sent"
        );
    }
    let tally = Tally {
        accepted: ids.len(),
        landed: got.len(),
        duplicates: got.values().map(|c| c.len() - 1).sum(),
        dead_lettered: dl.len(),
        landed_and_dead_lettered: ids
            .iter()
            .filter(|id| got.contains_key(**id) && dl.contains(**id))
            .count(),
    };
    println!(
        "{what} under faults: {} events accepted, {} landed ({} duplicate copies), {} dead-lettered ({} of them also landed); faults: {stats:?}",
        tally.accepted, tally.landed, tally.duplicates, tally.dead_lettered, tally.landed_and_dead_lettered
    );
    tally
}

/// What became of the events of a run under faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Events accepted.
    pub accepted: usize,
    /// Distinct events in the destination.
    pub landed: usize,
    /// Copies beyond the first.
    pub duplicates: usize,
    /// Distinct events dead-lettered.
    pub dead_lettered: usize,
    /// Of those, how many also landed.
    pub landed_and_dead_lettered: usize,
}
