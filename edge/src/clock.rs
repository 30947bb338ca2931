//! Time and randomness inside a Worker: `Date.now()` and
//! `crypto.getRandomValues`, behind the shared crate's traits.

use std::cell::RefCell;

use edgehose_shared::clock::RandomSource;
use edgehose_shared::timestamp::Timestamp;
use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]);
}

/// The current time from `Date.now()` (on Workers it advances across I/O,
/// not during CPU work).
pub fn now() -> Timestamp {
    Timestamp::from_millis(js_sys::Date::now() as i64)
}

/// Bytes from `crypto.getRandomValues`, drawn 256 at a time so a request
/// with many events costs few calls into JavaScript.
#[derive(Debug, Default)]
pub struct CryptoRandom {
    pool: RefCell<(Vec<u8>, usize)>,
}

const POOL: usize = 256;

impl RandomSource for CryptoRandom {
    fn fill(&self, buf: &mut [u8]) {
        let mut pool = self.pool.borrow_mut();
        let (bytes, used) = &mut *pool;
        for b in buf {
            if *used >= bytes.len() {
                bytes.resize(POOL, 0);
                get_random_values(bytes);
                *used = 0;
            }
            *b = bytes[*used];
            *used += 1;
        }
    }
}
