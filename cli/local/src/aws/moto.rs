//! `moto_server` (an AWS emulator from PyPI) on a free loopback port, for as
//! long as the handle lives: the stand-in for Kinesis and SQS in `edgehose
//! dev --sink`, and for every AWS service the end-to-end tests call.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::http::{Response, send};
use crate::tools::{self, free_port};

/// A running moto server; dropped, it is stopped.
pub struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Moto {
    /// Starts moto through `cli/local/py/moto_serve.py` (moto with the resource
    /// checks AWS makes, see that file) from the bootstrap's Python, and
    /// waits until it answers.
    pub fn start() -> Result<Self> {
        let python = tools::python()?;
        let port = free_port()?;
        let log = std::env::temp_dir().join(format!("edgehose-moto-{port}.log"));
        let log_file = std::fs::File::create(&log).map_err(|e| Error::file(&log, e))?;
        let err_file = log_file.try_clone().map_err(|e| Error::file(&log, e))?;
        let script = tools::repo_root().join("cli/local/py/moto_serve.py");
        let child = Command::new(&python)
            .arg(&script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // moto is large and imports each service's code on its first
            // call: compiled once into the environment, not at every start
            // (some machines set this variable for every process).
            .env_remove("PYTHONDONTWRITEBYTECODE")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .map_err(|e| Error::process(format!("starting {} {}", python.display(), script.display()), e))?;
        let mut moto = Self { child, port, log };
        moto.wait_ready(Duration::from_secs(30))?;
        Ok(moto)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Turns IAM and signature checking on from now on: the calls before
    /// this one were free, for setting up.
    pub fn enable_auth(&self) -> Result<()> {
        let request = http::Request::post(format!("{}/moto-api/reset-auth", self.endpoint()))
            .header("content-type", "text/plain")
            .body(b"0".to_vec())?;
        let response = send(request)?;
        expect_ok(&response, "reset-auth")
    }

    /// What moto printed so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::protocol(format!(
                    "moto exited with {status} before answering:\n{}",
                    self.log()
                )));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let ping = http::Request::get(format!("{}/moto-api/", self.endpoint())).body(Vec::new())?;
                if send(ping).is_ok() {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::timeout(format!(
            "moto did not answer within {timeout:?}:\n{}",
            self.log()
        )))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Kept when a test failed (its message quotes it), removed otherwise.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Fails with the response's status and body unless it is a 2xx.
pub fn expect_ok(response: &Response, what: &str) -> Result<()> {
    if (200..300).contains(&response.status) {
        Ok(())
    } else {
        Err(Error::protocol(format!(
            "{what}: HTTP {} {}",
            response.status,
            response.text()
        )))
    }
}
