use serde_json::Value;

use crate::support::*;

/// Every line of the log, each parsed as JSON.
#[track_caller]
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line:?}\n{log}"))
        })
        .collect()
}

/// JSON records, WARN and above.
const JSON_AT_WARN: [(&str, Option<&str>); 2] =
    [("AWS_LAMBDA_LOG_FORMAT", Some("JSON")), ("AWS_LAMBDA_LOG_LEVEL", Some("WARN"))];

const CHATTY: &str = "#!/bin/sh\necho 'first line' >&2\necho 'second line' >&2\n\
                      echo '{\"level\":\"WARN\",\"message\":\"structured\"}' >&2\nprintf ok\n";

#[test]
fn json_format_wraps_every_record_with_the_request_id() {
    let run = Lambda::new()
        .script("chatty", CHATTY)
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .start("chatty.handler");
    run.response_to(Event::new("r1", "{}"));
    let log = run.wait_for_log("ok in");
    let records = json_lines(&log);
    for record in &records {
        assert!(record["timestamp"].is_string() && record["level"].is_string(), "{record}");
    }
    let handler_lines: Vec<&Value> = records
        .iter()
        .filter(|r| r["message"] == "first line" || r["message"] == "second line")
        .collect();
    assert_eq!(handler_lines.len(), 2, "{log}");
    assert!(handler_lines.iter().all(|r| r["requestId"] == "r1" && r["level"] == "INFO"), "{log}");
    assert!(
        records.iter().any(|r| r["message"] == "structured" && r["level"] == "WARN"),
        "a JSON line passes through:\n{log}"
    );
    let done = records
        .iter()
        .find(|r| r["message"].as_str().is_some_and(|m| m.starts_with("ok in")))
        .unwrap();
    assert_eq!(done["requestId"], "r1");
}

#[test]
fn json_format_honours_the_log_level() {
    let run = Lambda::new()
        .script("chatty", &CHATTY.replace("printf ok", "exit 3"))
        .envs(&JSON_AT_WARN)
        .start("chatty.handler");
    run.error_for(Event::new("r1", "{}"));
    let log = run.wait_for_log("Runtime.ExitError");
    let records = json_lines(&log);
    assert!(records.iter().all(|r| r["level"] != "INFO" && r["level"] != "DEBUG"), "{log}");
    let failure = records
        .iter()
        .find(|r| r["errorType"] == "Runtime.ExitError")
        .expect("the failure is logged");
    assert_eq!(
        (failure["level"].as_str(), failure["requestId"].as_str()),
        (Some("ERROR"), Some("r1"))
    );
}

#[test]
fn a_framed_workers_output_carries_the_current_request_id() {
    if !have("python3") {
        return;
    }
    let handler = "def handler(event, context):\n    print('hello from', context.aws_request_id)\n    return 1\n";
    let run = Lambda::new()
        .write("p.py", handler)
        .mode(Mode::Warm)
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .start("p.handler");
    for id in ["w1", "w2"] {
        run.response_to(Event::new(id, "{}"));
        let log = run.wait_for_log(&format!("hello from {id}"));
        let records = json_lines(&log);
        let hello = records.iter().find(|r| r["message"] == format!("hello from {id}")).unwrap();
        assert_eq!(hello["requestId"], id);
    }
}

#[test]
fn text_format_keeps_a_multi_line_error_in_one_record() {
    if !have("python3") {
        return;
    }
    let run = Lambda::new().fixture("python/raise.py", "raise.py").start("raise.handler");
    run.error_for(Event::new("r1", "{}"));
    let log = run.wait_for_log("r1 failed in");
    let record = log.lines().find(|l| l.contains("r1 failed in")).unwrap();
    assert!(
        record.contains("ValueError: bad input\r"),
        "stack trace lines joined with \\r: {record:?}"
    );
    assert!(record.contains("raise ValueError"), "{record:?}");
}

#[test]
fn json_records_of_a_runner_are_filtered_by_log_level_and_error_records_are_kept() {
    let script = "#!/bin/sh\n\
                  echo '{\"log_level\":\"INFO\",\"message\":\"quiet\"}' >&2\n\
                  echo '{\"log_level\":\"ERROR\",\"message\":\"loud\"}' >&2\n\
                  echo '{\"errorType\":\"E\",\"errorMessage\":\"kept\"}' >&2\n\
                  printf ok\n";
    let run = Lambda::new().script("h", script).envs(&JSON_AT_WARN).start("h.handler");
    run.response_to(Event::new("r1", "{}"));
    let log = run.wait_for_log("kept");
    assert!(log.contains("loud") && !log.contains("quiet"), "{log}");
}

#[test]
fn a_json_record_a_runner_wrote_keeps_its_keys_in_its_order() {
    let script = "#!/bin/sh\necho '{\"zeta\":1,\"level\":\"INFO\",\"alpha\":2}' >&2\nprintf ok\n";
    let run =
        Lambda::new().script("h", script).env("AWS_LAMBDA_LOG_FORMAT", "JSON").start("h.handler");
    run.response_to(Event::new("r1", "{}"));
    let log = run.wait_for_log("alpha");
    let line = log.lines().find(|l| l.contains("zeta")).expect("the record");
    let tail = "\"requestId\":\"r1\",\"zeta\":1,\"level\":\"INFO\",\"alpha\":2}";
    assert!(line.starts_with("{\"timestamp\":\"") && line.ends_with(tail), "{line}");
}
