use proptest::prelude::*;

use super::*;

fn record<'a>(key: &'a str, hash: Option<&'a str>, data: &'a [u8]) -> UserRecord<'a> {
    UserRecord {
        partition_key: key,
        explicit_hash_key: hash,
        data,
    }
}

/// The bytes `aws-kinesis-agg` 1.2.3's aggregator makes of ("pk1", "hello")
/// and ("pk2", "world") (tests/tests/kinesis_aggregation.rs checks many more
/// against it at test time).
const TWO: &str =
    "f3899ac20a03706b310a03706b321a0908001a0568656c6c6f1a0908011a05776f726c6487c22af1ed18e292eb55b018413a3cff";

#[test]
fn two_records_encode_as_the_reference_aggregator_encodes_them() {
    let mut a = Aggregate::new();
    a.push(record("pk1", None, b"hello"));
    a.push(record("pk2", None, b"world"));
    let bytes = a.encode().unwrap();
    assert_eq!(hex::encode(&bytes), TWO);
    assert_eq!(
        (a.len(), a.encoded_len(), a.partition_key()),
        (2, bytes.len(), Some("pk1"))
    );
    assert_eq!(a.explicit_hash_key(), None);
    assert_eq!(Aggregate::new().encode(), None, "an empty aggregate is nothing to send");
}

#[test]
fn keys_are_stored_once_and_referred_to() {
    let mut a = Aggregate::new();
    for data in [&b"a"[..], b"b", b"c"] {
        a.push(record("bike-7", Some("170141183460469231731687303715884105728"), data));
    }
    let bytes = a.encode().unwrap();
    assert_eq!(bytes.windows(6).filter(|w| w == b"bike-7").count(), 1);
    assert_eq!(a.explicit_hash_key(), Some("170141183460469231731687303715884105728"));
    let back = deaggregate(&bytes).unwrap();
    assert_eq!(back.len(), 3);
    assert!(
        back.iter()
            .all(|r| r.partition_key == "bike-7"
                && r.explicit_hash_key == Some("170141183460469231731687303715884105728"))
    );
    assert_eq!(back[2].data, b"c");
}

#[test]
fn what_is_not_an_intact_aggregate_is_told_apart() {
    assert_eq!(
        deaggregate(b"{\"event\":\"click\"}"),
        Err(AggregateError::NotAggregated)
    );
    assert_eq!(deaggregate(&MAGIC), Err(AggregateError::NotAggregated));
    let mut bytes = hex::decode(TWO).unwrap();
    bytes[10] ^= 1;
    assert_eq!(deaggregate(&bytes), Err(AggregateError::Digest));
    // A protobuf that ends inside a field, with a digest that matches it.
    let message = [0x0a, 0x05, b'p', b'k'];
    let mut cut = MAGIC.to_vec();
    cut.extend_from_slice(&message);
    cut.extend_from_slice(&Md5::digest(message));
    assert!(matches!(deaggregate(&cut), Err(AggregateError::Malformed(_))));
    // A record pointing past the key table.
    let message = [0x1a, 0x04, 0x08, 0x05, 0x1a, 0x00];
    let mut past = MAGIC.to_vec();
    past.extend_from_slice(&message);
    past.extend_from_slice(&Md5::digest(message));
    assert_eq!(
        deaggregate(&past),
        Err(AggregateError::Malformed("a key index past its table"))
    );
}

proptest! {
    /// Whatever goes in comes out, in order, and the size foretold before
    /// each push is the size encoded after it.
    #[test]
    fn every_record_comes_back_and_every_size_is_foretold(
        records in proptest::collection::vec(
            ("[a-c]{1,3}", proptest::option::of("[0-9]{1,39}"), proptest::collection::vec(any::<u8>(), 0..300)),
            0..60,
        )
    ) {
        let mut a = Aggregate::new();
        for (key, hash, data) in &records {
            let r = record(key, hash.as_deref(), data);
            let foretold = a.encoded_len_with(&r);
            a.push(r);
            prop_assert_eq!(a.encoded_len(), foretold);
        }
        if let Some(bytes) = a.encode() {
            prop_assert_eq!(bytes.len(), a.encoded_len());
            let back = deaggregate(&bytes).unwrap();
            prop_assert_eq!(back.len(), records.len());
            for (b, (key, hash, data)) in back.iter().zip(&records) {
                prop_assert_eq!(b.partition_key, key.as_str());
                prop_assert_eq!(b.explicit_hash_key, hash.as_deref());
                prop_assert_eq!(b.data, data.as_slice());
            }
        } else {
            prop_assert!(records.is_empty());
        }
    }
}
