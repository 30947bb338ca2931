//! Per-event-type JSON Schemas: a deployment may add one schema per event
//! name, on top of schema v1, which always applies.
//!
//! A schema is a file `<event name>.json` in the schema directory and is
//! checked against the whole event object (so it can require `user_id`, or
//! constrain `properties`). The directory is `SCHEMA_DIR` when set, else
//! `schemas/` beside the function (`$LAMBDA_TASK_ROOT/schemas`), else none.
//! Every schema is compiled once, at cold start; a file that is not a valid
//! schema stops the function from starting, naming the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgehose_shared::validate::{Reason, Violation};

/// Why the schemas could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The directory or a file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file is not JSON or not a valid JSON Schema.
    #[error("{path} is not a valid JSON Schema: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// The compiled schemas, by event name.
#[derive(Clone, Default)]
pub struct Schemas {
    by_event: Arc<BTreeMap<String, jsonschema::Validator>>,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_event.keys()).finish()
    }
}

impl Schemas {
    /// Loads `SCHEMA_DIR`, or `$LAMBDA_TASK_ROOT/schemas` if it exists.
    pub fn from_env() -> Result<Self, SchemaError> {
        let dir = std::env::var_os("SCHEMA_DIR").map(PathBuf::from).or_else(|| {
            std::env::var_os("LAMBDA_TASK_ROOT")
                .map(|root| PathBuf::from(root).join("schemas"))
                .filter(|d| d.is_dir())
        });
        match dir {
            Some(dir) => Self::load_dir(&dir),
            None => Ok(Self::default()),
        }
    }

    /// Compiles every `*.json` file in `dir`; the file stem is the event name.
    pub fn load_dir(dir: &Path) -> Result<Self, SchemaError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| SchemaError::Io { path, source }
        };
        let mut by_event = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
                continue;
            };
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let invalid = |message: String| SchemaError::Invalid {
                path: path.clone(),
                message,
            };
            let schema: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
            let validator = jsonschema::validator_for(&schema).map_err(|e| invalid(e.to_string()))?;
            by_event.insert(name, validator);
        }
        Ok(Self {
            by_event: Arc::new(by_event),
        })
    }

    /// The event names that have a schema.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_event.keys().map(String::as_str)
    }

    /// Whether `event_name` has a schema.
    pub fn has(&self, event_name: &str) -> bool {
        self.by_event.contains_key(event_name)
    }

    /// Every way `event` breaks its name's schema (none without a schema),
    /// each naming the field's path as a JSON pointer (`/properties/price`).
    pub fn check(&self, event_name: &str, event: &serde_json::Value) -> Vec<Violation> {
        let Some(validator) = self.by_event.get(event_name) else {
            return Vec::new();
        };
        validator
            .iter_errors(event)
            .map(|e| {
                let path = e.instance_path().to_string();
                Violation::new(Reason::SchemaViolation, &path, format!("{event_name} schema: {e}"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(tag: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("edgehose-schemas-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    const CLICK: &str = r#"{
        "type": "object",
        "required": ["user_id", "properties"],
        "properties": {
            "properties": {
                "type": "object",
                "required": ["price"],
                "properties": {"price": {"type": "number", "minimum": 0}}
            }
        }
    }"#;

    #[test]
    fn a_schema_applies_to_its_event_name_only_and_names_the_field() {
        let dir = dir_with("applies", &[("click.json", CLICK), ("README.md", "not a schema")]);
        let schemas = Schemas::load_dir(&dir).unwrap();
        assert_eq!(schemas.names().collect::<Vec<_>>(), ["click"]);
        let ok = serde_json::json!({"event": "click", "user_id": "u", "properties": {"price": 3}});
        assert!(schemas.check("click", &ok).is_empty());
        let bad = serde_json::json!({"event": "click", "properties": {"price": -1}});
        let v = schemas.check("click", &bad);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().all(|x| x.reason == Reason::SchemaViolation));
        let fields: Vec<&str> = v.iter().map(|x| x.field.as_str()).collect();
        assert!(fields.contains(&"/properties/price"), "{fields:?}");
        assert!(
            fields.contains(&""),
            "the missing user_id is reported at the root: {fields:?}"
        );
        assert!(schemas.check("page_view", &bad).is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_broken_schema_stops_the_cold_start_naming_the_file() {
        let dir = dir_with("broken", &[("click.json", r#"{"type": "no-such-type"}"#)]);
        let err = Schemas::load_dir(&dir).unwrap_err();
        assert!(err.to_string().contains("click.json"), "{err}");
        let dir2 = dir_with("not-json", &[("view.json", "{not json")]);
        assert!(Schemas::load_dir(&dir2).unwrap_err().to_string().contains("view.json"));
        let _ = (std::fs::remove_dir_all(dir), std::fs::remove_dir_all(dir2));
    }
}
