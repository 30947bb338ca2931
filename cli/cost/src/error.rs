//! What can go wrong pricing a path: traffic the packing code refuses, a
//! figures file that does not read, a chart that does not draw, a path
//! or a destination that does not exist.

/// An error from `edgehose-cost`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The packing code refused the sample traffic (an event over its limits).
    #[error("packing the sample traffic: {0}")]
    Packing(#[from] edgehose_shared::batch::PackError),
    /// A measured-figures file that is not what `make bench-cost` writes.
    #[error("measured figures: {0}")]
    Measured(#[source] serde_json::Error),
    /// A chart that could not be drawn or written.
    #[error("drawing {path}: {message}")]
    Chart {
        /// The SVG file.
        path: String,
        /// What the plotting library said.
        message: String,
    },
    /// A path name that is not one of [`crate::bill::Path::ALL`].
    #[error("unknown path {given:?}; one of: {known}")]
    UnknownPath {
        /// What was asked for.
        given: String,
        /// The names there are.
        known: String,
    },
    /// A destination name that is not one of [`crate::destination::Destination::ALL`].
    #[error("unknown destination {given:?}; one of: {known}")]
    UnknownDestination {
        /// What was asked for.
        given: String,
        /// The names there are.
        known: String,
    },
}

/// `edgehose-cost`'s results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for String {
    fn from(e: Error) -> Self {
        e.to_string()
    }
}
