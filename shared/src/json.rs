//! Byte-level JSON helpers that run before (or instead of) a parser: nesting
//! depth without recursion, and the one rewrite NDJSON needs.

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
