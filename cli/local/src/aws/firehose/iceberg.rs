//! The Iceberg destination, as Firehose's: each transformed record is one
//! row, routed by the transform's `otfMetadata` to a table and an operation
//! (`update`: an upsert on the table's unique keys; `insert`: an append),
//! written to real Apache Iceberg tables (format v2) in a catalog on local
//! disk by pyiceberg, a maintained Iceberg library from PyPI, run as one
//! writer process (`cli/local/py/iceberg_sink.py`) that every stream shares.
//!
//! The tables are created at start from `edgehose_shared::table`, as the SAM
//! template creates them in Glue: one per dialect, the event's identity
//! (`key_id`, `id`) as their identifier fields, partitioned by the day of
//! `event_time`. A row the table refuses (an unknown table, a value of the
//! wrong type, an operation Firehose does not know) goes to the error
//! prefix with its record; a writer that fails as a whole (the process gone)
//! is retried like S3 being down, and since every write is an upsert on the
//! event's identity, writing a buffer twice leaves each row once.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use edgehose_shared::table::{ICEBERG_TABLES, UNIQUE_KEY, iceberg_columns};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::tools;

/// Where a record's row goes, as the transform's `otfMetadata` says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// `destinationDatabaseName`.
    pub database: String,
    /// `destinationTableName`.
    pub table: String,
    /// `operation`: `insert`, `update` (or `delete`, which edgehose never asks for).
    pub operation: String,
}

impl Route {
    /// The route in an answer's `metadata.otfMetadata`, if it has one.
    pub fn of(metadata: &Value) -> Option<Self> {
        let otf = metadata.get("otfMetadata")?;
        Some(Self {
            database: otf.get("destinationDatabaseName")?.as_str()?.to_owned(),
            table: otf.get("destinationTableName")?.as_str()?.to_owned(),
            operation: otf
                .get("operation")
                .and_then(Value::as_str)
                .unwrap_or("insert")
                .to_owned(),
        })
    }
}

/// What became of one write: the rows refused, by their index in the
/// batch, with why.
#[derive(Debug, Default)]
pub struct Written {
    /// Rows written.
    pub rows: u64,
    /// Rows refused: (index, Firehose-style error code, message).
    pub refused: Vec<(usize, String, String)>,
}

/// The writer process, started on first use and again after it dies.
pub struct Iceberg {
    warehouse: PathBuf,
    database: String,
    writer: Mutex<Option<Writer>>,
}

struct Writer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Iceberg {
    /// The catalog at `warehouse` (created when missing) with the tables of
    /// `database`; fails when the writer cannot start (pyiceberg missing: the
    /// bootstrap installs it).
    pub fn open(warehouse: &Path, database: &str) -> Result<Self> {
        std::fs::create_dir_all(warehouse).map_err(|e| Error::file(warehouse, e))?;
        let iceberg = Self {
            warehouse: warehouse.to_path_buf(),
            database: database.to_owned(),
            writer: Mutex::new(None),
        };
        for (dialect, table) in ICEBERG_TABLES {
            let fields: Vec<Value> = iceberg_columns(dialect)
                .zip(1..)
                .map(|(c, id)| {
                    json!({"id": id, "name": c.name, "type": c.iceberg_type,
                           "required": UNIQUE_KEY.contains(&c.name), "doc": c.comment})
                })
                .collect();
            let answer = iceberg.ask(&json!({
                "op": "create", "namespace": database, "table": table, "fields": fields,
                "identifier": UNIQUE_KEY, "partition": [{"source": "event_time", "transform": "day", "name": "event_time_day"}],
            }))?;
            if answer["ok"] != true {
                return Err(Error::config(format!(
                    "creating Iceberg table {database}.{table}: {answer}"
                )));
            }
        }
        Ok(iceberg)
    }

    /// The catalog's directory.
    pub fn warehouse(&self) -> &Path {
        &self.warehouse
    }

    /// The database its tables are in.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Writes `rows` (JSON objects) to `route`'s table: upserted on the
    /// table's unique key for `update` (the last of a batch's rows with one
    /// key wins, as Firehose applies records in order), appended for
    /// `insert`. An `Err` is the writer failing as a whole: retry.
    pub fn write(&self, route: &Route, rows: &[Value]) -> Result<Written> {
        if route.database != self.database {
            let why = format!(
                "database {} is not in the catalog (it holds {})",
                route.database, self.database
            );
            return Ok(refuse_all(rows.len(), "Iceberg.DatabaseNotFound", &why));
        }
        if !ICEBERG_TABLES.iter().any(|(_, t)| *t == route.table) {
            let why = format!("table {}.{} does not exist", route.database, route.table);
            return Ok(refuse_all(rows.len(), "Iceberg.TableNotFound", &why));
        }
        let op = match route.operation.as_str() {
            "update" => "upsert",
            "insert" => "append",
            other => {
                let why = format!("operation {other:?} is not insert, update or delete (edgehose asks for update)");
                return Ok(refuse_all(rows.len(), "Iceberg.InvalidOperation", &why));
            }
        };
        let answer = self.ask(&json!({
            "op": op, "namespace": route.database, "table": route.table, "rows": rows, "keys": UNIQUE_KEY,
        }))?;
        if answer["ok"] != true {
            return Err(Error::config(format!(
                "the Iceberg writer failed on {}.{}: {}",
                route.database, route.table, answer["error"]
            )));
        }
        Ok(Written {
            rows: answer["written"].as_u64().unwrap_or(0),
            refused: answer["refused"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    Some((
                        usize::try_from(r["index"].as_u64()?).ok()?,
                        r["code"].as_str().unwrap_or("Iceberg.InvalidRecord").to_owned(),
                        r["message"].as_str().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
        })
    }

    /// Sends one request and reads its answer, starting the writer when it
    /// is not running; a writer that fails to answer is dropped (and started
    /// again by the next request).
    fn ask(&self, request: &Value) -> Result<Value> {
        let mut slot = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(self.spawn()?);
        }
        let Some(writer) = slot.as_mut() else {
            return Err(Error::config("the Iceberg writer did not start"));
        };
        let answered = (|| -> std::io::Result<String> {
            let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
            line.push(b'\n');
            writer.stdin.write_all(&line)?;
            writer.stdin.flush()?;
            let mut answer = String::new();
            if writer.stdout.read_line(&mut answer)? == 0 {
                return Err(std::io::Error::other("the writer exited"));
            }
            Ok(answer)
        })();
        match answered {
            Ok(text) => serde_json::from_str(&text).map_err(|e| Error::json("the Iceberg writer's answer", e)),
            Err(e) => {
                *slot = None;
                Err(Error::process("the Iceberg writer (cli/local/py/iceberg_sink.py)", e))
            }
        }
    }

    fn spawn(&self) -> Result<Writer> {
        let python = tools::python()?;
        let script = tools::repo_root().join("cli/local/py/iceberg_sink.py");
        let log = self.warehouse.join("writer.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| Error::file(&log, e))?;
        let mut child = Command::new(&python)
            .arg(&script)
            .arg("--warehouse")
            .arg(&self.warehouse)
            .env_remove("PYTHONDONTWRITEBYTECODE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| Error::process(format!("starting {} {}", python.display(), script.display()), e))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(Error::config("the Iceberg writer has no pipes"));
        };
        Ok(Writer {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }
}

fn refuse_all(n: usize, code: &str, why: &str) -> Written {
    Written {
        rows: 0,
        refused: (0..n).map(|i| (i, code.to_owned(), why.to_owned())).collect(),
    }
}

/// Every row of `database.table` in the catalog at `warehouse`, read by
/// pyiceberg (`cli/local/py/iceberg_read.py`): what an analyst's query sees.
pub fn read_table(warehouse: &Path, database: &str, table: &str) -> Result<Vec<Value>> {
    let python = tools::python()?;
    let script = tools::repo_root().join("cli/local/py/iceberg_read.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg("--warehouse")
        .arg(warehouse)
        .arg(format!("{database}.{table}"))
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .output()
        .map_err(|e| Error::process(format!("{} {}", python.display(), script.display()), e))?;
    if !out.status.success() {
        return Err(Error::config(format!(
            "reading {database}.{table}: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| Error::json("a row", e)))
        .collect()
}
