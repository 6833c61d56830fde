//! Lambda's own log records around each invocation, as `bootstrap serve` writes them:
//! `START`, `END` and `REPORT` lines in text, or the `platform.start`, `platform.runtimeDone`
//! and `platform.report` records under `AWS_LAMBDA_LOG_FORMAT=JSON`, as Lambda writes them
//! with advanced logging controls.
//!
//! `Max Memory Used` is measured, not made up: the highest resident memory any process of the
//! function has reached (bootstrap itself, or one of its handler processes), from the kernel's
//! own high-water marks: `VmHWM` of bootstrap and of the handler processes still running, and
//! `ru_maxrss` of the handler processes that have ended. Bootstrap is counted because the
//! kernel counts it anyway: a child it spawns inherits its high-water mark until `exec`. It is
//! a high-water mark, so it does not go down from one invocation to the next; and it is the
//! largest process, where Lambda measures all of them together.

use std::fs;
use std::io::Write;
use std::time::Duration;

use super::host;

/// How an invocation ended, in the words of Lambda's platform records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Error,
    Timeout,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Timeout => "timeout",
        }
    }
}

/// `START RequestId: <id> Version: $LATEST`
pub fn start(id: &str, json: bool) -> String {
    if json {
        let record = serde_json::json!({"requestId": id, "version": "$LATEST"});
        return platform_record("platform.start", record);
    }
    format!("START RequestId: {id} Version: $LATEST")
}

/// `END RequestId: <id>`
pub fn end(id: &str, status: Status, json: bool) -> String {
    if json {
        let record = serde_json::json!({"requestId": id, "status": status.name()});
        return platform_record("platform.runtimeDone", record);
    }
    format!("END RequestId: {id}")
}

/// `REPORT RequestId: <id>\tDuration: … ms\tBilled Duration: … ms\tMemory Size: … MB\tMax
/// Memory Used: … MB\t`, with Lambda's tabs.
pub fn report(id: &str, status: Status, duration: Duration, memory_mb: u32, json: bool) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    // Lambda bills in whole milliseconds, rounded up, at least one.
    let billed = (ms.ceil() as u64).max(1);
    let used = max_memory_used_mb();
    if json {
        let record = serde_json::json!({
            "requestId": id,
            "metrics": {
                "durationMs": (ms * 100.0).round() / 100.0,
                "billedDurationMs": billed,
                "memorySizeMB": memory_mb,
                "maxMemoryUsedMB": used,
            },
            "status": status.name(),
        });
        return platform_record("platform.report", record);
    }
    format!(
        "REPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {billed} ms\t\
         Memory Size: {memory_mb} MB\tMax Memory Used: {used} MB\t"
    )
}

fn platform_record(kind: &str, record: serde_json::Value) -> String {
    serde_json::json!({"time": host::timestamp(), "type": kind, "record": record}).to_string()
}

/// Writes one record to stderr in one call, so it never interleaves with another.
pub fn write(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    // A log we cannot write to must not stop the invocation.
    let _ = std::io::stderr().lock().write_all(&bytes);
}

/// The peak resident memory of the function's largest process so far, in MiB, rounded up.
pub fn max_memory_used_mb() -> u64 {
    let mut peak_kib = host::ended_children_peak_kib();
    peak_kib = peak_kib.max(vm_hwm_kib("self").unwrap_or(0));
    for pid in host::running_handlers() {
        peak_kib = peak_kib.max(vm_hwm_kib(&pid.to_string()).unwrap_or(0));
    }
    peak_kib.div_ceil(1024)
}

/// `VmHWM` (peak resident set) of a process (`self` or a pid), in KiB.
fn vm_hwm_kib(pid: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    peak_from_status(&status)
}

fn peak_from_status(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_are_lambdas() {
        assert_eq!(start("r-1", false), "START RequestId: r-1 Version: $LATEST");
        assert_eq!(end("r-1", Status::Success, false), "END RequestId: r-1");
        let line = report("r-1", Status::Success, Duration::from_micros(1_234_500), 128, false);
        assert!(
            line.starts_with(
                "REPORT RequestId: r-1\tDuration: 1234.50 ms\tBilled Duration: 1235 ms\t\
                 Memory Size: 128 MB\tMax Memory Used: "
            ),
            "{line}"
        );
        assert!(line.ends_with(" MB\t"), "{line}");
    }

    #[test]
    fn json_records_are_platform_events() {
        let start: serde_json::Value = serde_json::from_str(&start("r-1", true)).unwrap();
        assert_eq!(start["type"], "platform.start");
        assert_eq!(start["record"]["requestId"], "r-1");
        assert!(start["time"].as_str().unwrap().ends_with('Z'));
        let report = report("r-1", Status::Timeout, Duration::from_micros(10), 512, true);
        let report: serde_json::Value = serde_json::from_str(&report).unwrap();
        assert_eq!(report["type"], "platform.report");
        assert_eq!(report["status"], serde_json::Value::Null);
        assert_eq!(report["record"]["status"], "timeout");
        assert_eq!(report["record"]["metrics"]["billedDurationMs"], 1);
        assert_eq!(report["record"]["metrics"]["memorySizeMB"], 512);
        assert!(report["record"]["metrics"]["maxMemoryUsedMB"].is_u64());
    }

    #[test]
    fn reads_the_peak_from_proc_status() {
        let status = "Name:\tperl\nVmPeak:\t  99 kB\nVmHWM:\t   5120 kB\nVmRSS:\t 4096 kB\n";
        assert_eq!(peak_from_status(status), Some(5120));
        assert_eq!(peak_from_status("Name:\tx\n"), None);
    }
}
