//! Byte-level JSON helpers that run before (or instead of) a parser: nesting
//! depth without recursion, the one rewrite NDJSON needs, an object's
//! top-level members in order (duplicates kept), and removing one of them
//! without touching the other bytes.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The deepest nesting of objects and arrays in `text` (a bare scalar is 0,
/// `{}` is 1, `{"a":[1]}` is 2), counted in one pass without recursion, so a
/// hostile `[[[[…` of any depth costs a linear scan and no stack.
///
/// Brackets inside strings are ignored; unbalanced input is still measured.
pub fn max_depth(text: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for &b in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Makes valid JSON text safe for one NDJSON line by turning each raw CR or LF
/// into a space.
///
/// JSON forbids unescaped control characters inside strings, so in valid JSON
/// every CR and LF byte is insignificant whitespace: the value is unchanged and
/// every other byte stays where it was. Text without them is borrowed as is.
pub fn single_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.bytes().any(|b| b == b'\n' || b == b'\r') {
        std::borrow::Cow::Owned(text.replace(['\n', '\r'], " "))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// The JSON type of valid JSON text, from its first byte (`an object`,
/// `an array`, `a string`, `a boolean`, `null`, `a number`), for messages.
pub fn kind(text: &str) -> &'static str {
    match text.trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// The top-level members of a JSON object in order, duplicates included (a
/// map would silently keep the last). Keys borrow from the text unless they
/// hold escapes; values are the text's own slices.
#[derive(Debug, Clone, Default)]
pub struct Members<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Members<'a> {
    /// Reads an object's members; anything but an object is an error.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The first member called `name`.
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }

    /// The string value of the first member called `name` (unescaped), if
    /// it is a string.
    pub fn str(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get(name).and_then(string)
    }
}

/// The string a JSON string value holds, borrowed when it has no escapes;
/// `None` for any other type.
pub fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    match text.get(1..text.len() - 1) {
        Some(inner) if !inner.contains('\\') => Some(Cow::Borrowed(inner)),
        _ => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
    }
}

/// `object` without its top-level members called `name`; every other byte
/// is kept where it was. Borrowed when there is no such member (or the text
/// is not an object).
pub fn without_member<'a>(object: &'a str, name: &str) -> Cow<'a, str> {
    let Ok(members) = Members::parse(object) else {
        return Cow::Borrowed(object);
    };
    if !members.0.iter().any(|(k, _)| k == name) {
        return Cow::Borrowed(object);
    }
    // The values are slices of `object`: their addresses give their spans.
    let base = object.as_ptr() as usize;
    let open = object.find('{').map_or(0, |i| i + 1);
    let mut out = String::with_capacity(object.len());
    out.push_str(&object[..open]);
    // A member runs from the end of the previous value (or the brace) to the
    // end of its own value, so the comma before it is its first byte.
    let (mut from, mut kept_any, mut removed_first) = (open, false, false);
    for (k, v) in &members.0 {
        let end = v.get().as_ptr() as usize - base + v.get().len();
        let piece = &object[from..end];
        if k == name {
            removed_first |= !kept_any;
        } else if !kept_any && removed_first {
            // The first member kept after removed ones loses its comma.
            out.push_str(piece.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace()));
            kept_any = true;
        } else {
            out.push_str(piece);
            kept_any = true;
        }
        from = end;
    }
    out.push_str(&object[from..]);
    Cow::Owned(out)
}

/// `object` with the member at `path` (`["context", "ip"]`) edited: `edit`
/// gets its value and gives the new value's JSON text, or `None` to take
/// the member out. Every other byte is kept where it was; borrowed when
/// there is no such member (or a step of the path is not an object).
pub fn edit_member<'a>(object: &'a str, path: &[&str], edit: &dyn Fn(&RawValue) -> Option<String>) -> Cow<'a, str> {
    let Some((first, rest)) = path.split_first() else {
        return Cow::Borrowed(object);
    };
    let Ok(members) = Members::parse(object) else {
        return Cow::Borrowed(object);
    };
    let base = object.as_ptr() as usize;
    let mut spans: Vec<(usize, usize, String)> = Vec::new();
    for (k, v) in &members.0 {
        if k != first {
            continue;
        }
        let start = v.get().as_ptr() as usize - base;
        let end = start + v.get().len();
        if rest.is_empty() {
            match edit(v) {
                Some(text) => spans.push((start, end, text)),
                None => return without_member(object, first),
            }
        } else if let Cow::Owned(inner) = edit_member(v.get(), rest, edit) {
            spans.push((start, end, inner));
        }
    }
    if spans.is_empty() {
        return Cow::Borrowed(object);
    }
    let mut out = String::with_capacity(object.len());
    let mut from = 0;
    for (start, end, text) in spans {
        out.push_str(&object[from..start]);
        out.push_str(&text);
        from = end;
    }
    out.push_str(&object[from..]);
    Cow::Owned(out)
}

/// `object` with the members called `name` taken out of each of its object
/// members called `parent` (`properties.token`); every other byte kept.
pub fn without_nested_member<'a>(object: &'a str, parent: &str, name: &str) -> Cow<'a, str> {
    edit_member(object, &[parent, name], &|_| None)
}

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const NOT_AN_OBJECT: &str = "not an object";
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(NOT_AN_OBJECT)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    members.push((k.0, v));
                }
                Ok(Members(members))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(de::Error::custom(NOT_AN_OBJECT))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Err(de::Error::custom(NOT_AN_OBJECT))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Err(de::Error::custom(NOT_AN_OBJECT))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Err(de::Error::custom(NOT_AN_OBJECT))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Err(de::Error::custom(NOT_AN_OBJECT))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Err(de::Error::custom(NOT_AN_OBJECT))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Err(de::Error::custom(NOT_AN_OBJECT))
            }
        }
        d.deserialize_map(V)
    }
}

/// An object key as written, or unescaped when it had escapes.
#[derive(serde::Deserialize)]
struct Key<'a>(#[serde(borrow, deserialize_with = "borrow::str")] Cow<'a, str>);

/// Serde field helpers for strings that borrow from the JSON text being read
/// unless they hold escapes (serde's own `Cow` support only borrows a bare
/// `Cow<str>` field, never one inside an `Option`).
pub mod borrow {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{Deserializer, Error, Visitor};

    struct CowStr;

    impl<'de> Visitor<'de> for CowStr {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(v))
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v.to_owned()))
        }
        fn visit_string<E: Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v))
        }
    }

    struct OptCowStr;

    impl<'de> Visitor<'de> for OptCowStr {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            str(d).map(Some)
        }
    }

    /// A string, borrowed when it can be.
    pub fn str<'de, D: Deserializer<'de>>(d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(CowStr)
    }

    /// An optional string, borrowed when it can be.
    pub fn opt_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
        d.deserialize_option(OptCowStr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_objects_and_arrays_but_not_brackets_in_strings() {
        assert_eq!(max_depth(b"42"), 0);
        assert_eq!(max_depth(b"{}"), 1);
        assert_eq!(max_depth(br#"{"a":[1,{"b":{}}]}"#), 4);
        assert_eq!(max_depth(br#"{"a":"[[[[{{{{\"]]]"}"#), 1);
        assert_eq!(max_depth(br#"{"a":"\\"}"#), 1);
    }

    #[test]
    fn depth_of_ten_thousand_levels_is_measured_without_recursion() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(max_depth(deep.as_bytes()), 10_000);
    }

    #[test]
    fn members_keep_order_duplicates_and_unescape_keys() {
        let text = r#"{"a":1,"\u0062":"x\"y","a":[2]}"#;
        let m = Members::parse(text).unwrap();
        let keys: Vec<&str> = m.0.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["a", "b", "a"]);
        assert_eq!(m.get("a").unwrap().get(), "1");
        assert_eq!(m.str("b").as_deref(), Some("x\"y"));
        assert_eq!(m.str("a"), None);
        assert!(Members::parse("[1]").is_err());
        assert!(Members::parse("\"s\"").is_err());
    }

    #[test]
    fn a_member_is_removed_and_every_other_byte_kept() {
        let cases = [
            (r#"{"writeKey":"k","type":"track"}"#, r#"{"type":"track"}"#),
            (r#"{"type":"track", "writeKey":"k"}"#, r#"{"type":"track"}"#),
            (
                r#"{ "a" : 1 , "writeKey" : "k" , "b":{"writeKey":2} }"#,
                r#"{ "a" : 1 , "b":{"writeKey":2} }"#,
            ),
            (r#"{"writeKey":"k"}"#, r#"{}"#),
            (r#"{"writeKey":"k","writeKey":"j","z":null}"#, r#"{"z":null}"#),
        ];
        for (text, want) in cases {
            let got = without_member(text, "writeKey");
            assert_eq!(got, want, "{text}");
            let v: serde_json::Value = serde_json::from_str(&got).unwrap();
            assert!(v.get("writeKey").is_none());
        }
        assert!(matches!(without_member(r#"{"a":1}"#, "writeKey"), Cow::Borrowed(_)));
        assert!(matches!(without_member("[1]", "writeKey"), Cow::Borrowed(_)));
    }

    #[test]
    fn single_line_keeps_the_value_and_length() {
        let pretty = "{\n  \"event\": \"click\",\r\n  \"n\": [1,\n2]\n}";
        let flat = single_line(pretty);
        assert!(!flat.contains('\n') && !flat.contains('\r'));
        assert_eq!(flat.len(), pretty.len());
        let a: serde_json::Value = serde_json::from_str(pretty).unwrap();
        let b: serde_json::Value = serde_json::from_str(&flat).unwrap();
        assert_eq!(a, b);
        assert!(matches!(single_line("{}"), std::borrow::Cow::Borrowed(_)));
    }
}
