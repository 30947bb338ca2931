//! Ctrl-C (SIGINT) and SIGTERM: every long-running command stops in order
//! on either — children stopped, buffers delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag that turns true on the first Ctrl-C or SIGTERM.
pub fn stop_flag() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::SeqCst)).map_err(|e| format!("signal handler: {e}"))?;
    Ok(stop)
}

/// Blocks until Ctrl-C or SIGTERM.
pub fn wait_for_stop() -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .map_err(|e| format!("signal handler: {e}"))?;
    let _ = rx.recv();
    Ok(())
}
