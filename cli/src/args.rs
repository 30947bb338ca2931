//! A small command-line flag reader: `--name value`, `--name=value` and
//! `--switch`, checked against the flags a command knows.

use std::collections::BTreeMap;
use std::str::FromStr;

/// Parsed flags.
#[derive(Debug, Default)]
pub struct Args {
    values: BTreeMap<String, Vec<String>>,
}

/// One flag a command accepts: its name, whether it takes a value, and help.
pub type Flag = (&'static str, bool, &'static str);

impl Args {
    /// Reads `args` against `known`; an unknown flag or a missing value is an
    /// error naming it.
    pub fn parse(args: &[String], known: &[Flag]) -> Result<Self, String> {
        let mut values = BTreeMap::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument {a:?}"));
            };
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (name, None),
            };
            let Some(&(_, takes_value, _)) = known.iter().find(|(n, ..)| *n == name) else {
                return Err(format!("unknown flag --{name} (see --help)"));
            };
            let value = if takes_value {
                match inline {
                    Some(v) => v,
                    None => it.next().cloned().ok_or_else(|| format!("--{name} needs a value"))?,
                }
            } else {
                "true".to_owned()
            };
            values.entry(name.to_owned()).or_insert_with(Vec::new).push(value);
        }
        Ok(Self { values })
    }

    /// The value of `--name`, if given (the last, if given more than once).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.last()).map(String::as_str)
    }

    /// Every value of a flag that may be repeated (`--target a --target b`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.values
            .get(name)
            .map_or_else(Vec::new, |v| v.iter().map(String::as_str).collect())
    }

    /// Whether `--name` was given.
    pub fn switch(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// `--name` parsed, or `default`; a bad value is an error naming the flag.
    pub fn parsed<T: FromStr>(&self, name: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| format!("--{name} {v:?}: {e}")),
        }
    }
}

/// Help text for `known`.
pub fn help(known: &[Flag]) -> String {
    known
        .iter()
        .map(|(name, takes, help)| {
            let flag = if *takes {
                format!("--{name} <v>")
            } else {
                format!("--{name}")
            };
            format!("  {flag:<26} {help}\n")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[Flag] = &[("port", true, "p"), ("gzip", false, "g")];

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn values_switches_and_errors_name_the_flag() {
        let a = Args::parse(&args(&["--port", "9", "--gzip"]), KNOWN).unwrap();
        assert_eq!(a.parsed("port", 0u16), Ok(9));
        assert!(a.switch("gzip"));
        let a = Args::parse(&args(&["--port", "1", "--port=x"]), KNOWN).unwrap();
        assert_eq!(a.all("port"), ["1", "x"]);
        assert!(a.parsed("port", 0u16).unwrap_err().contains("--port"));
        assert!(Args::parse(&args(&["--nope"]), KNOWN).unwrap_err().contains("--nope"));
        assert!(
            Args::parse(&args(&["--port"]), KNOWN)
                .unwrap_err()
                .contains("needs a value")
        );
    }
}
