//! The wall clock for the stand-ins and tools: `SystemTime::now()` through
//! the shared crate's one conversion, [`Timestamp::from_system_time`].

use std::time::SystemTime;

use edgehose_shared::timestamp::Timestamp;

/// Now, to the millisecond.
pub fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}
