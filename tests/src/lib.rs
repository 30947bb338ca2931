//! Harness for edgehose's end-to-end tests: the real services, started on
//! loopback by the tests themselves, and small clients to drive them.
//!
//! Tools come from the bootstrap (`make test` runs it): the Python
//! environment holding `moto[server]` is found through `EDGEHOSE_PYTHON`, or
//! at its default place under the edgehose cache. A missing tool fails the
//! test with instructions; it is never a silent skip.

pub mod aws;
pub mod book;
pub mod browser;
pub mod clients;
pub mod events;
pub mod faults;
pub mod local;
pub mod moto;
pub mod regions;
pub mod requests;
pub mod sandbox;
pub mod sqs;
pub mod stream;

use std::path::PathBuf;

/// A binary of the workspace (`edgehose`, `transform`, `ingest-api`) that
/// `cargo build --workspace --bins`, run by `make test`, put beside the test
/// executables; a missing one fails with how to build it.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let bin = exe.parent().and_then(|d| d.parent()).unwrap_or(&exe).join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `make test` (or `cargo build --workspace --bins` first)",
        bin.display()
    );
    bin
}
