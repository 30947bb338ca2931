//! Reading deployment settings (Worker `[vars]` and secrets, Lambda
//! environment) from a lookup function, with errors that name the setting.

use std::fmt;

/// A setting that is missing or has a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting {name} {problem}")]
pub struct SettingError {
    /// The setting's name, e.g. `FIREHOSE_STREAM`.
    pub name: String,
    /// What is wrong, e.g. `is missing`.
    pub problem: String,
}

impl SettingError {
    /// A setting error for `name`.
    pub fn new(name: &str, problem: impl fmt::Display) -> Self {
        Self {
            name: name.to_owned(),
            problem: problem.to_string(),
        }
    }
}

/// Settings looked up by name; blank values count as absent.
pub struct Settings<F> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    /// Settings read through `lookup`.
    pub fn new(lookup: F) -> Self {
        Self { lookup }
    }

    /// The trimmed value, if set and not blank.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A value that must be present.
    pub fn required(&self, name: &str) -> Result<String, SettingError> {
        self.get(name).ok_or_else(|| SettingError::new(name, "is missing"))
    }

    /// A whole number, or `default` when unset.
    pub fn usize_or(&self, name: &str, default: usize) -> Result<usize, SettingError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .replace('_', "")
                .parse()
                .map_err(|_| SettingError::new(name, format!("= {v:?} is invalid: expected a whole number"))),
        }
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), or `default` when unset.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, SettingError> {
        match self.get(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => Ok(false),
            Some(v) => Err(SettingError::new(
                name,
                format!("= {v:?} is invalid: expected true or false"),
            )),
        }
    }

    /// A comma-separated list (items trimmed, blanks dropped); empty when unset.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One key's members in a setting read by [`objects_by_key`].
pub type Members = serde_json::Map<String, serde_json::Value>;

/// A setting that is a JSON object of key ids (or `*`) to objects, each
/// object's members checked against `known`: the shape of `RATE_LIMITS`
/// and `BOT_ROUTES`. Read through `serde_json::Value`, whose parser the
/// Worker carries anyway, rather than a derived deserializer per type: each
/// of those added its own copy of the JSON parser to the wasm (≈ 30 KB for
/// these two settings).
pub fn objects_by_key(text: &str, known: &[&str]) -> Result<Vec<(String, Members)>, String> {
    let serde_json::Value::Object(all) = serde_json::from_str(text).map_err(|e| format!("is not JSON: {e}"))? else {
        return Err("is not a JSON object of key ids".to_owned());
    };
    let mut out = Vec::with_capacity(all.len());
    for (key, value) in all {
        let serde_json::Value::Object(members) = value else {
            return Err(format!("{key}: is not a JSON object"));
        };
        if let Some(unknown) = members.keys().find(|m| !known.contains(&m.as_str())) {
            return Err(format!(
                "{key}: unknown member {unknown:?}, expected one of {}",
                known.join(", ")
            ));
        }
        out.push((key, members));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &'static [(&'static str, &'static str)]) -> Settings<impl Fn(&str) -> Option<String>> {
        Settings::new(move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn errors_name_the_setting_and_the_value() {
        let s = settings(&[("N", "12x"), ("B", "maybe"), ("BLANK", "  ")]);
        assert_eq!(s.required("BLANK").unwrap_err().to_string(), "setting BLANK is missing");
        assert_eq!(
            s.usize_or("N", 1).unwrap_err().to_string(),
            "setting N = \"12x\" is invalid: expected a whole number"
        );
        assert_eq!(
            s.bool_or("B", false).unwrap_err().to_string(),
            "setting B = \"maybe\" is invalid: expected true or false"
        );
    }

    #[test]
    fn values_parse_with_defaults() {
        let s = settings(&[("N", "1_000"), ("B", "Yes"), ("L", " a, ,b ,")]);
        assert_eq!(s.usize_or("N", 1), Ok(1000));
        assert_eq!(s.usize_or("UNSET", 7), Ok(7));
        assert_eq!(s.bool_or("B", false), Ok(true));
        assert_eq!(s.list("L"), ["a", "b"]);
        assert!(s.list("UNSET").is_empty());
    }
}
