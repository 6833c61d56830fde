//! Log records on stderr, which Lambda sends to CloudWatch: bootstrap's own lines, and the
//! lines its handlers write.
//!
//! Text (the default): bootstrap's lines are `[bootstrap] …`; handler output passes through as
//! it is. JSON (`AWS_LAMBDA_LOG_FORMAT=JSON`, advanced logging controls): every record is one
//! JSON object on one line, `{"timestamp","level","message","requestId"}`, records below
//! `AWS_LAMBDA_LOG_LEVEL` are dropped, and each line a handler writes becomes such a record
//! (a line that already is a JSON object passes through). A multi-line error stays one record:
//! its lines are joined with `\r` in text mode, as AWS's Python runtime does.
//!
//! Each record is written with one call under the stderr lock, so records from concurrent
//! invocations never interleave: a handler's output is cut into records at its newlines (and
//! at `MAX_LINE`), never passed on in the pieces it happened to be read in. Never log an event
//! or a response: they may hold secrets.

use std::fmt;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::invocation::Diagnostic;

/// `AWS_LAMBDA_LOG_FORMAT`: `Text` or `JSON`.
pub const ENV_LOG_FORMAT: &str = "AWS_LAMBDA_LOG_FORMAT";
/// `AWS_LAMBDA_LOG_LEVEL`: `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` or `FATAL`.
pub const ENV_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";
/// The longest handler line kept whole; a longer one is cut into records of this size.
pub const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    pub fn parse(text: &str) -> Option<Level> {
        Some(match text.to_ascii_uppercase().as_str() {
            "TRACE" => Level::Trace,
            "DEBUG" => Level::Debug,
            "INFO" => Level::Info,
            "WARN" | "WARNING" => Level::Warn,
            "ERROR" => Level::Error,
            "FATAL" | "CRITICAL" => Level::Fatal,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }
}

/// How records are written, set once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    pub json: bool,
    /// Records below this are dropped (JSON mode only, as on Lambda).
    pub level: Level,
}

impl LogConfig {
    /// From the values of `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL`.
    pub fn from_values(format: Option<&str>, level: Option<&str>) -> LogConfig {
        let json = format.is_some_and(|f| f.eq_ignore_ascii_case("json"));
        LogConfig { json, level: level.and_then(Level::parse).unwrap_or(Level::Info) }
    }
}

static CONFIG: OnceLock<LogConfig> = OnceLock::new();

/// Receives a copy of every record that names a request id, as written (`bootstrap serve`
/// keeps the last 4 KB of each invocation's log for `X-Amz-Log-Type: Tail`).
pub type Tap = Box<dyn Fn(&str, &[u8]) + Send + Sync>;

static TAP: OnceLock<Tap> = OnceLock::new();

/// Sets the tap for the life of the process; the first call wins.
pub fn set_tap(tap: Tap) {
    let _ = TAP.set(tap);
}

/// Hands bytes of invocation `request_id` to the tap, if one is set.
fn tap(request_id: Option<&str>, bytes: &[u8]) {
    if let (Some(tap), Some(id)) = (TAP.get(), request_id) {
        tap(id, bytes);
    }
}

/// Hands a record (a line without its newline) to the tap, if one is set.
fn tap_line(request_id: Option<&str>, line: &str) {
    if let (Some(tap), Some(id)) = (TAP.get(), request_id) {
        tap(id, format!("{line}\n").as_bytes());
    }
}

/// Sets the format for the life of the process; the first call wins.
pub fn init(config: LogConfig) {
    let _ = CONFIG.set(config);
}

fn config() -> LogConfig {
    *CONFIG.get_or_init(|| LogConfig { json: false, level: Level::Info })
}

/// Writes one of bootstrap's own records.
pub fn record(level: Level, request_id: Option<&str>, message: fmt::Arguments<'_>) {
    let config = config();
    let line = if config.json {
        if level < config.level {
            return;
        }
        let mut object = base_object(level, &message.to_string(), request_id);
        object.push('}');
        object
    } else {
        let id = request_id.map(|id| format!("{id} ")).unwrap_or_default();
        match level {
            Level::Warn => format!("[bootstrap] warning: {id}{message}"),
            Level::Error | Level::Fatal => format!("[bootstrap] error: {id}{message}"),
            _ => format!("[bootstrap] {id}{message}"),
        }
    };
    write_line(&line);
    tap_line(request_id, &line);
}

/// Logs a failed event's error as one record: its type, message and stack trace.
pub fn failure(request_id: &str, diagnostic: &Diagnostic, elapsed_ms: f64) {
    let config = config();
    if config.json {
        if Level::Error < config.level {
            return;
        }
        let message = format!("failed in {elapsed_ms:.1} ms: {}", diagnostic.error_type);
        let mut object = base_object(Level::Error, &message, Some(request_id));
        object.push_str(&format!(
            ",\"errorType\":{},\"errorMessage\":{},\"stackTrace\":{}}}",
            json_string(&diagnostic.error_type),
            json_string(&diagnostic.error_message),
            serde_json::to_string(&diagnostic.frames()).expect("BUG: strings serialize"),
        ));
        write_line(&object);
        tap_line(Some(request_id), &object);
        return;
    }
    let mut text = format!(
        "[bootstrap] {request_id} failed in {elapsed_ms:.1} ms: {}: {}",
        diagnostic.error_type, diagnostic.error_message
    );
    for frame in diagnostic.frames() {
        text.push('\n');
        text.push_str(frame);
    }
    // One CloudWatch record: Lambda splits records on \n only.
    let record = text.replace('\n', "\r");
    write_line(&record);
    tap_line(Some(request_id), &record);
}

/// Turns the output of a handler into log records, one line each: a record is written whole,
/// with one call under the stderr lock, so that no other handler's line (or bootstrap's own)
/// is ever spliced into it. A line longer than `MAX_LINE` is cut into records of that size.
pub struct HandlerLines {
    partial: Vec<u8>,
}

impl HandlerLines {
    pub fn new() -> HandlerLines {
        HandlerLines { partial: Vec::new() }
    }

    /// Logs what a handler wrote: its complete lines become records, and the rest waits for
    /// its newline (or for `MAX_LINE`, or the end of the output).
    pub fn write(&mut self, mut bytes: &[u8], request_id: Option<&str>) {
        let json = config().json;
        while !bytes.is_empty() {
            let Some(end) = bytes.iter().position(|b| *b == b'\n') else {
                self.partial.extend_from_slice(bytes);
                if self.partial.len() >= MAX_LINE {
                    self.flush(request_id);
                }
                return;
            };
            let (line, rest) = bytes.split_at(end + 1);
            bytes = rest;
            if !self.partial.is_empty() || json {
                self.partial.extend_from_slice(line);
                let line = std::mem::take(&mut self.partial);
                self.line(&line, request_id, json);
                continue;
            }
            // Text mode, nothing pending: every complete line in `bytes` goes out as it came,
            // in one write (each still a whole record).
            let last = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let (more, tail) = bytes.split_at(last);
            let mut lines = Vec::with_capacity(line.len() + more.len());
            lines.extend_from_slice(line);
            lines.extend_from_slice(more);
            self.line(&lines, request_id, false);
            bytes = tail;
        }
    }

    /// Logs whatever is left without a newline, as a record of its own: at the end of the
    /// output, or before the lines of another request.
    pub fn flush(&mut self, request_id: Option<&str>) {
        if !self.partial.is_empty() {
            let mut line = std::mem::take(&mut self.partial);
            line.push(b'\n');
            self.line(&line, request_id, config().json);
        }
    }

    /// Writes `lines` (complete, each ending in a newline) as records.
    fn line(&self, lines: &[u8], request_id: Option<&str>, json: bool) {
        if json {
            handler_record(&lines[..lines.len() - 1], request_id);
            return;
        }
        // A log we cannot write to must not stop bootstrap.
        let _ = io::stderr().lock().write_all(lines);
        tap(request_id, lines);
    }
}

impl Default for HandlerLines {
    fn default() -> Self {
        HandlerLines::new()
    }
}

/// One line a handler wrote, as a JSON record. A line that is already a JSON object (a handler
/// with its own structured logging) is kept, filtered by its `level` (or `log_level`) if it has
/// one, and gets the `timestamp` and `requestId` it lacks.
fn handler_record(line: &[u8], request_id: Option<&str>) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\r');
    if text.trim().is_empty() {
        return;
    }
    let config = config();
    if text.starts_with('{')
        && let Ok(serde_json::Value::Object(object)) = serde_json::from_str(text)
    {
        // `level` is Lambda's key, `log_level` awslambdaric's; an error document without
        // either (a runner's error record) is an error, never filtered below ERROR.
        let named = ["level", "log_level"].iter().find_map(|key| object.get(*key));
        let level = named.and_then(|l| l.as_str()).and_then(Level::parse);
        let default = if object.contains_key("errorType") { Level::Error } else { Level::Info };
        if level.unwrap_or(default) < config.level {
            return;
        }
        // The runner's own record stays as it wrote it, its keys in its order; what it lacks is
        // added at the front.
        let mut added = String::new();
        if !object.contains_key("timestamp") {
            added.push_str(&format!("\"timestamp\":{},", json_string(&rfc3339_now())));
        }
        if let Some(id) = request_id
            && !object.contains_key("requestId")
        {
            added.push_str(&format!("\"requestId\":{},", json_string(id)));
        }
        let rest = text[1..].trim_start();
        if rest.starts_with('}') {
            added.pop(); // an empty object: no comma before its end
        }
        let record = format!("{{{added}{rest}");
        write_line(&record);
        tap_line(request_id, &record);
        return;
    }
    if Level::Info < config.level {
        return;
    }
    let mut object = base_object(Level::Info, text, request_id);
    object.push('}');
    write_line(&object);
    tap_line(request_id, &object);
}

/// `{"timestamp":…,"level":…,"message":…[,"requestId":…]` without the closing brace.
fn base_object(level: Level, message: &str, request_id: Option<&str>) -> String {
    let mut object = format!(
        "{{\"timestamp\":\"{}\",\"level\":\"{}\",\"message\":{}",
        rfc3339_now(),
        level.name(),
        json_string(message)
    );
    if let Some(id) = request_id {
        object.push_str(&format!(",\"requestId\":{}", json_string(id)));
    }
    object
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("BUG: strings serialize")
}

fn write_line(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    // A log we cannot write to must not stop bootstrap.
    let _ = io::stderr().lock().write_all(&bytes);
}

pub(crate) fn rfc3339_now() -> String {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(since.as_secs(), since.subsec_millis())
}

/// `2026-11-21T05:59:30.123Z` from Unix seconds and milliseconds.
fn rfc3339(secs: u64, millis: u32) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (an era-based conversion:
/// eras of 400 years, 146,097 days each).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A line about normal operation.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::record($crate::log::Level::Info, None, format_args!($($arg)*)) };
}

/// A line about something that went wrong but does not stop bootstrap.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::record($crate::log::Level::Warn, None, format_args!($($arg)*)) };
}

/// A line about why bootstrap is stopping.
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)*) => { $crate::log::record($crate::log::Level::Fatal, None, format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_timestamps() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_795_237_170, 123), "2026-11-21T04:59:30.123Z");
        assert_eq!(rfc3339(4_102_444_799, 999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn reads_levels_and_formats() {
        assert_eq!(Level::parse("warning"), Some(Level::Warn));
        assert_eq!(Level::parse("nope"), None);
        assert!(Level::Debug < Level::Info);
        let json = LogConfig::from_values(Some("JSON"), Some("error"));
        assert_eq!(json, LogConfig { json: true, level: Level::Error });
        assert_eq!(
            LogConfig::from_values(Some("Text"), None),
            LogConfig { json: false, level: Level::Info }
        );
    }

    #[test]
    fn json_records_hold_the_fields_lambda_reads() {
        let object = format!("{}}}", base_object(Level::Warn, "a \"quoted\"\nline", Some("r-1")));
        let value: serde_json::Value = serde_json::from_str(&object).unwrap();
        assert_eq!(value["level"], "WARN");
        assert_eq!(value["message"], "a \"quoted\"\nline");
        assert_eq!(value["requestId"], "r-1");
        assert!(value["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
