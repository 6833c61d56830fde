//! bootstrap's own log lines on stderr, which Lambda sends to CloudWatch. One line per call,
//! written under the stderr lock so that it never interleaves with a handler's output.
//! Never log an event or a response: they may hold secrets. Log ids, sizes and durations.

/// A line about normal operation.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { eprintln!("[bootstrap] {}", format_args!($($arg)*)) };
}

/// A line about something that went wrong but does not stop bootstrap.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { eprintln!("[bootstrap] warning: {}", format_args!($($arg)*)) };
}

/// A line about why bootstrap is stopping.
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)*) => { eprintln!("[bootstrap] error: {}", format_args!($($arg)*)) };
}
