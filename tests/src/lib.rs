//! Harness for edgehose's end-to-end tests: the real services, started on
//! loopback by the tests themselves, and small clients to drive them.
//!
//! Tools come from the bootstrap (`make test` runs it): the Python
//! environment holding `moto[server]` is found through `EDGEHOSE_PYTHON`, or
//! at its default place under the edgehose cache. A missing tool fails the
//! test with instructions; it is never a silent skip.

pub mod aws;
pub use edgehose_cli::edge;
pub mod events;
pub mod faults;
pub mod http;
pub use edgehose_cli::runtime_api as lambda;
pub mod moto;
pub mod sandbox;
pub use edgehose_cli::tools;
