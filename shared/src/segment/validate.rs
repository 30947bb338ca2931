//! Validation of one Segment message by the spec
//! (<https://segment.com/docs/connections/spec/common/> and each call's page):
//! the regional side's check, reporting every problem with the field it
//! concerns, as [`crate::validate`] does for schema v1.
//!
//! | call | needs |
//! |---|---|
//! | every call but `alias` | `userId` or `anonymousId` |
//! | `track` | `event` (1..=128 characters) |
//! | `group` | `groupId` |
//! | `alias` | `previousId` and `userId` |
//!
//! Ids are strings or numbers (Segment's libraries send numbers as given);
//! `properties`, `traits`, `context` and `integrations` are objects;
//! `timestamp`, `originalTimestamp` and `sentAt` are ISO 8601 times. Other
//! top-level fields are kept, as Segment keeps them.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::Call;
use crate::event::{MAX_EVENT_NAME_CHARS, MAX_ID_CHARS};
use crate::json::{self, Members};
use crate::limits::Limits;
use crate::timestamp::Timestamp;
use crate::validate::{Reason, Violation, check_size_and_depth, members, opt_time, string_field};

/// One valid Segment message, its strings borrowed from the text where
/// they hold no escapes.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// The call.
    pub call: Call,
    /// `track`'s event name.
    pub event: Option<Cow<'a, str>>,
    /// `page` and `screen`'s name.
    pub name: Option<Cow<'a, str>>,
    /// `page`'s category.
    pub category: Option<Cow<'a, str>>,
    /// `messageId`.
    pub message_id: Option<Cow<'a, str>>,
    /// `userId` (a number is kept as its digits).
    pub user_id: Option<Cow<'a, str>>,
    /// `anonymousId`.
    pub anonymous_id: Option<Cow<'a, str>>,
    /// `groupId`.
    pub group_id: Option<Cow<'a, str>>,
    /// `previousId`.
    pub previous_id: Option<Cow<'a, str>>,
    /// `timestamp` (else `originalTimestamp`), by the client's clock.
    pub timestamp: Option<Timestamp>,
    /// `sentAt`.
    pub sent_at: Option<Timestamp>,
    /// `properties`, as sent.
    pub properties: Option<&'a RawValue>,
    /// `traits`, as sent.
    pub traits: Option<&'a RawValue>,
    /// `context`, as sent.
    pub context: Option<&'a RawValue>,
}

/// Validates one message. `route_call` is the call its route implied
/// (`/v1/track`); without one, the message's `type` names it.
pub fn validate_message<'a>(
    text: &'a str,
    route_call: Option<&str>,
    limits: &Limits,
) -> Result<Message<'a>, Vec<Violation>> {
    check_size_and_depth(text, &limits.for_segment())?;
    let members = members(text)?;
    let mut problems = Vec::new();
    let call = match route_call {
        Some(c) => Call::parse(c).ok_or_else(|| unknown_type(c)),
        None => match members
            .get("type")
            .map(|r| string_field(r, "type", 1, 64, &mut problems))
        {
            None | Some(Ok(None)) => Err(Violation::new(
                Reason::MissingField,
                "type",
                "`type` (track, page, screen, identify, group or alias) is required",
            )),
            Some(Ok(Some(t))) => Call::parse(&t).ok_or_else(|| unknown_type(&t)),
            Some(Err(())) => return Err(problems),
        },
    };
    let call = match call {
        Ok(c) => c,
        Err(v) => return Err(vec![v]),
    };
    let text_of = |name: &str, max: usize, problems: &mut Vec<Violation>| {
        members
            .get(name)
            .and_then(|raw| string_field(raw, name, 1, max, problems).ok().flatten())
    };
    let id_of = |name: &str, problems: &mut Vec<Violation>| members.get(name).and_then(|raw| id(raw, name, problems));
    let object_of = |name: &str, problems: &mut Vec<Violation>| {
        let raw = members.get(name)?;
        match raw.get().as_bytes().first() {
            Some(b'{') => Some(raw),
            Some(b'n') => None,
            _ => {
                problems.push(Violation::new(
                    Reason::WrongType,
                    name,
                    format!("`{name}` must be an object, not {}", json::kind(raw.get())),
                ));
                None
            }
        }
    };
    let mut m = Message {
        call,
        event: None,
        name: None,
        category: None,
        message_id: text_of("messageId", usize::MAX, &mut problems),
        user_id: id_of("userId", &mut problems),
        anonymous_id: id_of("anonymousId", &mut problems),
        group_id: id_of("groupId", &mut problems),
        previous_id: id_of("previousId", &mut problems),
        timestamp: opt_time(members.get("timestamp"), "timestamp", &mut problems)
            .or_else(|| opt_time(members.get("originalTimestamp"), "originalTimestamp", &mut problems)),
        sent_at: opt_time(members.get("sentAt"), "sentAt", &mut problems),
        properties: object_of("properties", &mut problems),
        traits: object_of("traits", &mut problems),
        context: object_of("context", &mut problems),
    };
    object_of("integrations", &mut problems);
    if m.traits.is_none() {
        // RudderStack's SDKs send an identify's traits in `context.traits`.
        m.traits = m
            .context
            .and_then(|c| Members::parse(c.get()).ok()?.get("traits"))
            .filter(|t| t.get().starts_with('{'));
    }
    let mut require = |ok: bool, field: &str, what: &str| {
        if !ok && !problems.iter().any(|p| p.field == field) {
            problems.push(Violation::new(
                Reason::MissingField,
                field,
                format!("a {} call needs {what}", call.as_str()),
            ));
        }
    };
    match call {
        Call::Alias => {
            require(m.previous_id.is_some(), "previousId", "`previousId`");
            require(m.user_id.is_some(), "userId", "`userId`");
        }
        _ => require(
            m.user_id.is_some() || m.anonymous_id.is_some(),
            "userId",
            "`userId` or `anonymousId`",
        ),
    }
    match call {
        Call::Track => {
            m.event = text_of("event", MAX_EVENT_NAME_CHARS, &mut problems);
            if m.event.is_none() && !problems.iter().any(|p| p.field == "event") {
                problems.push(Violation::new(
                    Reason::MissingField,
                    "event",
                    "a track call needs `event` (the event name)",
                ));
            }
        }
        Call::Group if m.group_id.is_none() && !problems.iter().any(|p| p.field == "groupId") => {
            problems.push(Violation::new(
                Reason::MissingField,
                "groupId",
                "a group call needs `groupId`",
            ));
        }
        Call::Page | Call::Screen => {
            m.name = text_of("name", usize::MAX, &mut problems);
            m.category = text_of("category", usize::MAX, &mut problems);
        }
        _ => {}
    }
    if problems.is_empty() { Ok(m) } else { Err(problems) }
}

fn unknown_type(t: &str) -> Violation {
    Violation::new(
        Reason::UnknownType,
        "type",
        format!(
            "`type` {:?} is not a Segment call; expected track, page, screen, identify, group or alias",
            t.chars().take(64).collect::<String>()
        ),
    )
}

/// An id: a string of at most [`MAX_ID_CHARS`] characters, or a number
/// (kept as written); `None` for null, `""`, or after recording a violation.
fn id<'a>(raw: &'a RawValue, field: &str, problems: &mut Vec<Violation>) -> Option<Cow<'a, str>> {
    let text = raw.get();
    if text == "\"\"" {
        // Segment's libraries send "" for an id they do not have.
        return None;
    }
    if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Some(Cow::Borrowed(text));
    }
    string_field(raw, field, 1, MAX_ID_CHARS, problems).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Message<'_>, Vec<Violation>> {
        validate_message(text, None, &Limits::default())
    }

    fn reasons(text: &str, route: Option<&str>) -> Vec<(Reason, String)> {
        validate_message(text, route, &Limits::default())
            .unwrap_err()
            .into_iter()
            .map(|v| (v.reason, v.field))
            .collect()
    }

    #[test]
    fn every_call_of_the_spec_is_valid_with_what_it_needs() {
        for text in [
            r#"{"type":"track","event":"Order Completed","userId":"u1","properties":{"revenue":9.5}}"#,
            r#"{"type":"page","anonymousId":"a1","name":"Home","category":"Docs","properties":{"path":"/"}}"#,
            r#"{"type":"screen","userId":42,"name":"Settings"}"#,
            r#"{"type":"identify","userId":"u1","traits":{"email":"a@b.example"}}"#,
            r#"{"type":"group","anonymousId":"a1","groupId":"g1","traits":{"plan":"pro"}}"#,
            r#"{"type":"alias","previousId":"a1","userId":"u1"}"#,
        ] {
            assert!(check(text).is_ok(), "{text}: {:?}", check(text).err());
        }
        let m = check(
            r#"{"type":"track","event":"Signed Up","userId":"u1","messageId":"m-1","timestamp":"2024-05-01T12:30:00.000Z","sentAt":"2024-05-01T12:30:01+00:00","context":{"library":{"name":"analytics-node"}},"custom":1}"#,
        )
        .unwrap();
        assert_eq!(
            (m.call, m.event.as_deref(), m.message_id.as_deref()),
            (Call::Track, Some("Signed Up"), Some("m-1"))
        );
        assert_eq!(m.timestamp, Some(Timestamp(1_714_566_600_000)));
        assert_eq!(m.sent_at, Some(Timestamp(1_714_566_601_000)));
        assert!(m.context.unwrap().get().contains("analytics-node"));
        assert_eq!(
            check(r#"{"type":"screen","userId":42}"#).unwrap().user_id.as_deref(),
            Some("42")
        );
    }

    #[test]
    fn the_route_names_the_call_when_it_implies_one() {
        let m = validate_message(
            r#"{"event":"Clicked","anonymousId":"a"}"#,
            Some("track"),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(m.call, Call::Track);
        // The route wins over a `type` in the body.
        let m = validate_message(r#"{"type":"page","userId":"u"}"#, Some("identify"), &Limits::default()).unwrap();
        assert_eq!(m.call, Call::Identify);
    }

    #[test]
    fn each_missing_requirement_names_its_field() {
        assert_eq!(
            reasons(r#"{"userId":"u"}"#, None),
            [(Reason::MissingField, "type".into())]
        );
        assert_eq!(
            reasons(r#"{"type":"purchase","userId":"u"}"#, None),
            [(Reason::UnknownType, "type".into())]
        );
        assert_eq!(
            reasons(r#"{"type":7,"userId":"u"}"#, None),
            [(Reason::WrongType, "type".into())]
        );
        assert_eq!(
            reasons(r#"{"type":"track","userId":"u"}"#, None),
            [(Reason::MissingField, "event".into())]
        );
        assert_eq!(
            reasons(r#"{"type":"track","event":"","userId":"u"}"#, None),
            [(Reason::Empty, "event".into())]
        );
        assert_eq!(
            reasons(r#"{"type":"identify","traits":{}}"#, None),
            [(Reason::MissingField, "userId".into())]
        );
        assert_eq!(
            reasons(r#"{"type":"identify","userId":""}"#, None),
            [(Reason::MissingField, "userId".into())]
        );
        assert!(
            check(r#"{"type":"page","userId":"","anonymousId":"a"}"#).is_ok(),
            "an empty id is an absent one"
        );
        assert_eq!(
            reasons(r#"{"type":"group","userId":"u"}"#, None),
            [(Reason::MissingField, "groupId".into())]
        );
        assert_eq!(
            reasons(r#"{"type":"alias","anonymousId":"a"}"#, None),
            [
                (Reason::MissingField, "previousId".into()),
                (Reason::MissingField, "userId".into())
            ]
        );
        let v = validate_message(r#"{"type":"identify"}"#, None, &Limits::default()).unwrap_err();
        assert_eq!(v[0].message, "a identify call needs `userId` or `anonymousId`");
    }

    #[test]
    fn wrong_types_and_times_are_reported_together() {
        let got = reasons(
            r#"{"type":"track","event":"e","userId":{"a":1},"anonymousId":"a","properties":[1],"context":"c","timestamp":"soon","integrations":3}"#,
            None,
        );
        assert_eq!(
            got,
            [
                (Reason::WrongType, "userId".into()),
                (Reason::InvalidTimestamp, "timestamp".into()),
                (Reason::WrongType, "properties".into()),
                (Reason::WrongType, "context".into()),
                (Reason::WrongType, "integrations".into()),
            ]
        );
        assert_eq!(reasons("[1]", Some("track")), [(Reason::NotAnObject, String::new())]);
        let big = format!(
            r#"{{"type":"track","event":"e","userId":"u","properties":{{"p":"{}"}}}}"#,
            "x".repeat(33_000)
        );
        assert_eq!(reasons(&big, None), [(Reason::TooLarge, String::new())]);
    }
}
