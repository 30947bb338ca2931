//! What can go wrong in a stand-in, by kind, so a caller can tell a missing
//! tool from a port in use, a service's odd answer from a bad setting. The
//! binary turns them into one line at its edge; `String: From<Error>` lets a
//! test or a benchmark that reports in text use `?` as before.

use std::path::{Path, PathBuf};

/// An error from `edgehose-local`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file or directory.
    #[error("{}: {source}", path.display())]
    File {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// Starting or talking to a child process (a function binary, Miniflare, moto).
    #[error("{what}: {source}")]
    Process {
        /// Which process, doing what.
        what: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A socket: listening, connecting, reading, writing.
    #[error("{what}: {source}")]
    Network {
        /// Which address, doing what.
        what: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A server that could not listen where it was asked to.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: String,
        /// The server's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An HTTP exchange that failed before an answer could be read.
    #[error("{url}: {source}")]
    Http {
        /// The request's URL.
        url: String,
        /// The client's error.
        #[source]
        source: Box<ureq::Error>,
    },
    /// A request that could not be built: a bad URL or header value.
    #[error("building a request: {0}")]
    Request(#[from] http::Error),
    /// A request that could not be signed.
    #[error("signing: {0}")]
    Sign(#[from] edgehose_shared::sigv4::sign::SignError),
    /// JSON that could not be read or written.
    #[error("{what}: {source}")]
    Json {
        /// Whose JSON.
        what: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A service or process answered, but not as its protocol says.
    #[error("{0}")]
    Protocol(String),
    /// A setting, option or plan that cannot be used.
    #[error("{0}")]
    Config(String),
    /// A tool or build the bootstrap or `make` provides is not there.
    #[error("{0}")]
    Missing(String),
    /// Something did not happen in the time allowed.
    #[error("{0}")]
    Timeout(String),
    /// A thread panicked holding a lock this needed.
    #[error("{0}: a thread panicked while holding its lock")]
    Poisoned(&'static str),
}

/// `edgehose-local`'s results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A file error at `path`.
    pub fn file(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::File {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A child-process error.
    pub fn process(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Process {
            what: what.into(),
            source,
        }
    }

    /// A socket error.
    pub fn network(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Network {
            what: what.into(),
            source,
        }
    }

    /// An HTTP client error for `url`.
    pub fn http(url: impl Into<String>, source: ureq::Error) -> Self {
        Self::Http {
            url: url.into(),
            source: Box::new(source),
        }
    }

    /// A server that could not listen on `addr`.
    pub fn listen(addr: impl Into<String>, source: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Self::Listen {
            addr: addr.into(),
            source,
        }
    }

    /// A JSON error in `what`.
    pub fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Json {
            what: what.into(),
            source,
        }
    }

    /// An answer that breaks its protocol.
    pub fn protocol(message: impl Into<String>) -> Self {
        Self::Protocol(message.into())
    }

    /// A setting that cannot be used.
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config(message.into())
    }

    /// A missing tool or build.
    pub fn missing(message: impl Into<String>) -> Self {
        Self::Missing(message.into())
    }

    /// A wait that ran out.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::Timeout(message.into())
    }
}

impl From<Error> for String {
    fn from(e: Error) -> Self {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_cause_and_read_as_one_line() {
        let e = Error::file("/nope/x", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(e.to_string().starts_with("/nope/x: "), "{e}");
        assert!(std::error::Error::source(&e).is_some());
        assert!(matches!(e, Error::File { .. }));
        let s: String = Error::config("--mode: queue or direct").into();
        assert_eq!(s, "--mode: queue or direct");
        assert!(std::error::Error::source(&Error::protocol("odd")).is_none());
    }
}
