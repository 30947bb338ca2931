use super::*;
use crate::envelope::Envelope;

fn settings(pairs: &[(&str, &str)]) -> Result<Option<Policy>, SettingError> {
    let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Policy::from_settings(&Settings::new(move |n: &str| {
        owned.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
    }))
}

#[test]
fn countries_route_to_their_region_and_the_rest_to_the_default() {
    let p = Policy::parse("eu: EEA CH; us: *").unwrap();
    for country in ["DE", "fr", "NO", "IS", "LI", "CH", "GR", "RE"] {
        assert_eq!(p.route(Some(country)).name, "eu", "{country}");
    }
    for country in [Some("US"), Some("GB"), Some("T1"), Some("XX"), Some(""), None] {
        assert_eq!(p.route(country).name, "us", "{country:?}");
    }
    assert_eq!(EU_COUNTRIES.len(), 27 + 7);
    assert_eq!(group("eea").unwrap().len(), 37);
    assert!(!group("EEA").unwrap().contains(&"CH") && !group("EU").unwrap().contains(&"GB"));
}

#[test]
fn a_policy_that_cannot_route_is_refused_by_name() {
    for (text, says) in [
        ("eu: EEA", "no region marked *"),
        ("eu: *; us: *", "more than one"),
        ("eu: DE; us: DE *", "both region"),
        ("eu: Germany; us: *", "alpha-2"),
        ("eu DE; us: *", "name: countries"),
        ("eu: DE; eu: *", "twice"),
        ("e-u: DE; us: *", "region name"),
    ] {
        let e = Policy::parse(text).unwrap_err();
        assert!(e.contains(says), "{text}: {e}");
    }
    let standby = Policy::parse("eu: EEA; eu2: ; us: *").unwrap();
    assert_eq!(standby.region("eu2").unwrap().countries, Vec::<String>::new());
}

#[test]
fn each_regions_policy_is_read_from_its_prefixed_settings() {
    assert_eq!(settings(&[]).unwrap(), None);
    let p = settings(&[
        ("REGIONS", "eu: EEA; eu2: ; us: *"),
        ("EU_STRIP", "context.ip, userId"),
        ("EU_HASH", "anonymousId"),
        ("EU_HASH_SECRET", "a-region-secret-0123456789"),
        ("EU_STANDBY", "eu2"),
    ])
    .unwrap()
    .unwrap();
    let eu = p.region("eu").unwrap();
    assert_eq!(
        (eu.strip.len(), eu.hash.len(), eu.standby.as_deref()),
        (2, 1, Some("eu2"))
    );
    assert!(!format!("{eu:?}").contains("a-region-secret"));
    let e = settings(&[("REGIONS", "eu: EEA; us: *"), ("EU_HASH", "userId")]).unwrap_err();
    assert_eq!(e.name, "EU_HASH_SECRET");
    let e = settings(&[
        ("REGIONS", "eu: EEA; us: *"),
        ("EU_HASH", "userId"),
        ("EU_HASH_SECRET", "short"),
    ])
    .unwrap_err();
    assert_eq!(e.name, "EU_HASH_SECRET");
    let e = settings(&[("REGIONS", "eu: EEA; us: *"), ("EU_STANDBY", "ap")]).unwrap_err();
    assert_eq!(e.name, "EU_STANDBY");
    let e = settings(&[("REGIONS", "eu: EEA; us: *"), ("EU_STRIP", "context..ip")]).unwrap_err();
    assert_eq!(e.name, "EU_STRIP");
    let e = settings(&[("REGIONS", "eu EEA")]).unwrap_err();
    assert_eq!(e.name, "REGIONS");
}

#[test]
fn only_the_aws_regions_in_the_eu_keep_eu_data() {
    assert_eq!(jurisdiction_of("eu-central-1"), "eu");
    assert_eq!(jurisdiction_of("eu-west-1"), "eu");
    assert_eq!(jurisdiction_of("eu-west-2"), "eu-west-2", "London is not in the EU");
    assert_eq!(
        jurisdiction_of("eu-central-2"),
        "eu-central-2",
        "Zurich is not in the EU"
    );
    assert_eq!(jurisdiction_of("us-east-1"), "us-east-1");
}

#[test]
fn a_regions_lines_carry_its_name_and_leave_without_what_it_strips_or_hashes() {
    let p = settings(&[
        ("REGIONS", "eu: EEA; us: *"),
        ("EU_STRIP", "context.ip, email"),
        ("EU_HASH", "userId"),
        ("EU_HASH_SECRET", "a-region-secret-0123456789"),
    ])
    .unwrap()
    .unwrap();
    let line = r#"{"v":1,"id":"m1","received_at":1,"event_time":1,"format":"segment","event":{"type":"track","userId":"u-42","email":"a@b.example","context":{"ip":"203.0.113.9","locale":"de"},"properties":{"email":"kept"}}}"#;
    let mut eu = vec![line.to_owned()];
    apply(&mut eu, p.region("eu").unwrap());
    let env = Envelope::parse(&eu[0]).unwrap();
    assert_eq!(env.region.as_deref(), Some("eu"));
    let event: serde_json::Value = serde_json::from_str(env.event.unwrap().get()).unwrap();
    assert!(
        event.get("email").is_none() && event["context"].get("ip").is_none(),
        "{event}"
    );
    assert_eq!(event["context"]["locale"], "de");
    assert_eq!(event["properties"]["email"], "kept", "only the path named");
    let hashed = event["userId"].as_str().unwrap();
    assert_eq!(hashed.len(), 64);
    assert_ne!(hashed, "u-42");
    // The same id hashes the same way (one user's events still join).
    let mut again = vec![line.to_owned()];
    apply(&mut again, p.region("eu").unwrap());
    assert_eq!(eu, again);

    let mut us = vec![line.to_owned()];
    apply(&mut us, p.region("us").unwrap());
    let env = Envelope::parse(&us[0]).unwrap();
    assert_eq!(env.region.as_deref(), Some("us"));
    assert_eq!(
        env.event.unwrap().get(),
        &line[line.find(r#"{"type""#).unwrap()..line.len() - 1]
    );
}

#[test]
fn an_edited_member_keeps_every_other_byte() {
    let text = r#"{"a":1, "b":{"c":"x","d":[1,2]},"e":"y"}"#;
    assert_eq!(
        crate::json::edit_member(text, &["b", "c"], &|_| Some(r#""z""#.to_owned())),
        r#"{"a":1, "b":{"c":"z","d":[1,2]},"e":"y"}"#
    );
    assert_eq!(
        crate::json::edit_member(text, &["b", "d"], &|_| None),
        r#"{"a":1, "b":{"c":"x"},"e":"y"}"#
    );
    assert_eq!(crate::json::edit_member(text, &["a", "x"], &|_| None), text);
    assert_eq!(crate::json::edit_member(text, &["q"], &|_| None), text);
}
