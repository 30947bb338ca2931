use super::*;
use crate::api::Reply;
use crate::clock::SeededRandom;
use crate::outcome::Cell;

fn settings(pairs: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Settings::new(move |n: &str| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
}

fn cookie(pairs: &[(&str, &str)]) -> Option<IdentityCookie> {
    IdentityCookie::from_settings(&settings(pairs)).unwrap()
}

fn accepted() -> Accepted {
    Accepted {
        reply: Reply {
            status: 200,
            headers: Vec::new(),
            body: "{}".into(),
        },
        count: 2,
        lines: vec![
            r#"{"v":1,"id":"a","received_at":1,"event_time":1,"event":{}}"#.to_owned(),
            r#"{"v":1,"id":"b","received_at":1,"event_time":1,"event":{}}"#.to_owned(),
        ],
        quarantined: 0,
        cell: Cell::default(),
        label: Default::default(),
        per_event: false,
    }
}

fn set_cookie(a: &Accepted) -> Option<&str> {
    a.reply
        .headers
        .iter()
        .find(|(k, _)| *k == "set-cookie")
        .map(|(_, v)| v.as_str())
}

fn nuid(line: &str) -> Option<String> {
    crate::envelope::Envelope::parse(line)
        .unwrap()
        .nuid
        .map(|n| n.into_owned())
}

#[test]
fn off_unless_a_lifetime_is_set_and_each_setting_is_checked() {
    assert_eq!(cookie(&[]), None);
    assert_eq!(cookie(&[("IDENTITY_COOKIE_DAYS", "0")]), None);
    let c = cookie(&[("IDENTITY_COOKIE_DAYS", "365")]).unwrap();
    assert_eq!(
        (c.name.as_str(), c.same_site, c.domain.as_deref()),
        (DEFAULT_NAME, "Lax", None)
    );
    let bad = |k: &str, v: &str| {
        IdentityCookie::from_settings(&settings(&[("IDENTITY_COOKIE_DAYS", "30"), (k, v)]))
            .unwrap_err()
            .name
    };
    assert_eq!(bad("IDENTITY_COOKIE_SAMESITE", "sometimes"), "IDENTITY_COOKIE_SAMESITE");
    assert_eq!(bad("IDENTITY_COOKIE_NAME", "a b"), "IDENTITY_COOKIE_NAME");
    assert_eq!(bad("IDENTITY_COOKIE_DOMAIN", "x;y"), "IDENTITY_COOKIE_DOMAIN");
    let e = IdentityCookie::from_settings(&settings(&[("IDENTITY_COOKIE_DAYS", "500")])).unwrap_err();
    assert_eq!(e.name, "IDENTITY_COOKIE_DAYS");
}

#[test]
fn set_on_a_first_visit_read_back_on_the_next_and_in_every_envelope() {
    let c = cookie(&[
        ("IDENTITY_COOKIE_DAYS", "30"),
        ("IDENTITY_COOKIE_DOMAIN", ".shop.example"),
    ]);
    let random = SeededRandom::new(3);
    let mut first = accepted();
    settle(&mut first, c.as_ref(), &Visitor::default(), &random);
    let header = set_cookie(&first).unwrap().to_owned();
    assert!(header.starts_with("edgehose_id="), "{header}");
    for attribute in [
        "Max-Age=2592000",
        "Path=/",
        "Domain=.shop.example",
        "SameSite=Lax",
        "Secure",
        "HttpOnly",
    ] {
        assert!(header.contains(attribute), "{attribute} in {header}");
    }
    let id = header["edgehose_id=".len()..].split(';').next().unwrap().to_owned();
    assert!(uuid::Uuid::try_parse(&id).is_ok(), "{id}");
    assert!(
        first.lines.iter().all(|l| nuid(l).as_deref() == Some(id.as_str())),
        "{:?}",
        first.lines
    );

    // The next request brings it back: the same id, the cookie renewed.
    let mut next = accepted();
    let brought = format!("other=1; edgehose_id={id}");
    let visitor = Visitor {
        cookie: Some(&brought),
        ..Visitor::default()
    };
    settle(&mut next, c.as_ref(), &visitor, &random);
    assert_eq!(nuid(&next.lines[1]).as_deref(), Some(id.as_str()));
    assert!(set_cookie(&next).unwrap().starts_with(&format!("edgehose_id={id};")));

    // A value it could not have set is replaced; a pixel's nuid comes first.
    let mut forged = accepted();
    let visitor = Visitor {
        cookie: Some("edgehose_id=<script>"),
        ..Visitor::default()
    };
    settle(&mut forged, c.as_ref(), &visitor, &random);
    assert_ne!(nuid(&forged.lines[0]).as_deref(), Some("<script>"));
    let mut pixel = accepted();
    let given = "11111111-2222-4333-8444-555555555555";
    let query = format!("e=pv&nuid={given}");
    let visitor = Visitor {
        cookie: Some(&brought),
        query: Some(&query),
        ..Visitor::default()
    };
    settle(&mut pixel, c.as_ref(), &visitor, &random);
    assert_eq!(nuid(&pixel.lines[0]).as_deref(), Some(given));
}

#[test]
fn the_anonymity_header_gets_no_id_and_ends_a_cookie_it_brings() {
    let c = cookie(&[("IDENTITY_COOKIE_DAYS", "30")]);
    let random = SeededRandom::new(3);
    let mut a = accepted();
    let visitor = Visitor {
        cookie: Some("edgehose_id=11111111-2222-4333-8444-555555555555"),
        anonymous: true,
        ..Visitor::default()
    };
    settle(&mut a, c.as_ref(), &visitor, &random);
    assert!(a.lines.iter().all(|l| nuid(l).is_none()));
    assert!(set_cookie(&a).unwrap().contains("Max-Age=0"));
    let mut b = accepted();
    let visitor = Visitor {
        anonymous: true,
        ..Visitor::default()
    };
    settle(&mut b, c.as_ref(), &visitor, &random);
    assert_eq!(set_cookie(&b), None);
    // Off: nothing at all.
    let mut off = accepted();
    settle(&mut off, None, &Visitor::default(), &random);
    assert_eq!((set_cookie(&off), nuid(&off.lines[0])), (None, None));
}
