//! Choosing one of N shards (events queues, delivery streams) for a piece of
//! text: FNV-1a of its bytes, so the same text always picks the same shard
//! and texts that differ (an envelope's id makes each line unique) spread
//! evenly. No randomness and no state: the edge and the tests agree on it.

/// The shard, `0..shards`, that `text` belongs to (`0` when `shards` is 0 or 1).
pub fn shard_of(text: &[u8], shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let hash = text.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % shards as u64) as usize
}

/// The indices of `texts` that belong to each of `shards` shards (at least
/// one), each list ascending.
pub fn split<T: AsRef<[u8]>>(texts: &[T], shards: usize) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); shards.max(1)];
    for (i, t) in texts.iter().enumerate() {
        out[shard_of(t.as_ref(), shards)].push(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_text_picks_the_same_shard_and_texts_spread_evenly() {
        assert_eq!(shard_of(b"anything", 1), 0);
        assert_eq!(shard_of(b"anything", 0), 0);
        assert_eq!(shard_of(b"a line", 7), shard_of(b"a line", 7));
        let mut counts = [0usize; 4];
        for n in 0..4000 {
            counts[shard_of(format!(r#"{{"v":1,"id":"0190f3a2-{n:04}"}}"#).as_bytes(), 4)] += 1;
        }
        // 1000 each on average; a fair spread stays well within ±20%.
        assert!(counts.iter().all(|&c| (800..=1200).contains(&c)), "{counts:?}");
    }

    #[test]
    fn split_puts_every_index_in_its_shard_once() {
        let texts = ["a", "b", "c", "a", "d"];
        let parts = split(&texts, 3);
        assert_eq!(parts.len(), 3);
        let mut all: Vec<usize> = parts.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 3, 4]);
        let of_a = parts.iter().position(|p| p.contains(&0)).unwrap();
        assert!(parts[of_a].contains(&3), "equal texts share a shard");
        assert_eq!(split(&texts, 0), [vec![0, 1, 2, 3, 4]]);
    }
}
