//! What can go wrong measuring: a target that cannot be reached or answers
//! other than HTTP, a kept-alive connection the server had closed (sent
//! again on a new one), a sink that answers oddly, a local stand-in that
//! does not start. A sample keeps its failure as text; callers that need to
//! tell the kinds apart match on [`Error`].

use std::path::{Path, PathBuf};

/// An error from `edgehose-latency`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option, URL, header, scenario or certificate that cannot be used.
    #[error("{0}")]
    Config(String),
    /// A socket: resolving, connecting, sending, reading.
    #[error("{what}: {source}")]
    Network {
        /// Which address, doing what.
        what: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A kept-alive connection the server had already closed: nothing came
    /// back, so the request may be sent again on a new one.
    #[error("the connection closed before an answer{0}")]
    Closed(String),
    /// The TLS handshake or settings failed.
    #[error("TLS with {host}: {message}")]
    Tls {
        /// The server's name.
        host: String,
        /// What rustls said.
        message: String,
    },
    /// Bytes that are not a well-formed HTTP answer.
    #[error("{0}")]
    Answer(String),
    /// A service (S3, a proxy) answered, but not as its protocol says.
    #[error("{0}")]
    Protocol(String),
    /// Reading or writing a file.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A chart that could not be drawn or written.
    #[error("drawing {path}: {message}")]
    Chart {
        /// The SVG file.
        path: String,
        /// What the plotting library said.
        message: String,
    },
    /// A local stand-in (firehose-local, the Worker, the API Gateway path)
    /// that would not start.
    #[error(transparent)]
    Local(#[from] edgehose_local::error::Error),
}

/// `edgehose-latency`'s results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A setting that cannot be used.
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config(message.into())
    }

    /// A socket error.
    pub fn network(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Network {
            what: what.into(),
            source,
        }
    }

    /// A malformed answer.
    pub fn answer(message: impl Into<String>) -> Self {
        Self::Answer(message.into())
    }

    /// An answer that breaks its service's protocol.
    pub fn protocol(message: impl Into<String>) -> Self {
        Self::Protocol(message.into())
    }

    /// A TLS failure with `host`.
    pub fn tls(host: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Tls {
            host: host.into(),
            message: message.to_string(),
        }
    }

    /// A file error at `path`.
    pub fn file(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::File {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

impl From<Error> for String {
    fn from(e: Error) -> Self {
        e.to_string()
    }
}
