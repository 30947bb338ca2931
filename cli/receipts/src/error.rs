//! What can go wrong reading the accounts.

/// An error of `edgehose receipts`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A call to a service (the local stand-ins' among them) failed.
    #[error(transparent)]
    Local(#[from] edgehose_local::error::Error),
    /// Building a request.
    #[error(transparent)]
    Request(#[from] http::Error),
    /// A service answered something other than what was asked.
    #[error("{0}")]
    Answer(String),
    /// Options that cannot work together, or are missing.
    #[error("{0}")]
    Config(String),
}

/// The result of a reading.
pub type Result<T> = std::result::Result<T, Error>;
