use std::fs;
use std::time::Duration;

use crate::support::*;

/// bootstrap serving `script`, an executable handler. The script answers the request id
/// `after` normally, so `still_serves` can prove the loop recovered.
fn serving(script: &str) -> Run {
    let (shebang, body) = script.split_once('\n').expect("a script starts with #!");
    let script = format!(
        "{shebang}\n[ \"$LAMBDA_RUNTIME_AWS_REQUEST_ID\" = after ] && {{ printf fine; exit 0; }}\n{body}"
    );
    Lambda::new().script("h", &script).start("h.handler")
}

/// The loop is still healthy: nothing was left running, and one more normal event is served.
#[track_caller]
fn still_serves(run: &Run) {
    run.assert_no_children();
    run.assert_serves(Event::new("after", "{}"), "fine");
    run.assert_no_children();
}

#[test]
fn non_zero_exit_reports_the_status_and_the_last_stderr_lines() {
    let run = serving(
        "#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo \"trace $i\" >&2; done\nexit 3\n",
    );
    let post = run.invoke(Event::new("r1", "{}"));
    assert_error(&post, "Runtime.ExitError", &["exited with status 3", "trace 3\n", "trace 12"]);
    assert!(
        !post.json()["errorMessage"].as_str().unwrap().contains("trace 2\n"),
        "only the last 10 lines"
    );
    still_serves(&run);
}

#[test]
fn death_by_signal_names_the_signal() {
    let run = serving("#!/bin/sh\necho dying >&2\nkill -SEGV $$\n");
    let post = run.invoke(Event::new("r1", "{}"));
    assert_error(&post, "Runtime.ExitError", &["signal 11 (SIGSEGV)", "dying"]);
    let post = serving("#!/bin/sh\nkill -KILL $$\n").invoke(Event::new("r1", "{}"));
    assert_error(&post, "Runtime.ExitError", &["SIGKILL"]);
    still_serves(&run);
}

#[test]
fn a_timeout_kills_the_whole_process_group_and_posts_before_the_deadline() {
    // The handler starts a grandchild and both block forever.
    let run =
        serving("#!/bin/sh\nsleep 1000 &\necho $! > grandchild.pid\necho $$ > child.pid\nwait\n");
    let post = run.invoke(Event::new("r1", "{}").deadline_in(Duration::from_secs(2)));
    assert_error(&post, "Runtime.Timeout", &["timed out", "before the invocation deadline"]);
    for name in ["grandchild.pid", "child.pid"] {
        let pid: u32 = fs::read_to_string(run.file(name)).unwrap().trim().parse().unwrap();
        assert!(is_gone(pid), "{name} {pid} survived the timeout");
    }
    still_serves(&run);
}

#[test]
fn a_deadline_already_past_times_out_at_once() {
    let run = serving("#!/bin/sh\nsleep 1000\n");
    let event = Event::new("r1", "{}").header("Lambda-Runtime-Deadline-Ms", "1700000000000");
    assert_error(&run.invoke(event), "Runtime.Timeout", &[]);
    still_serves(&run);
}

#[test]
fn output_over_the_limit_is_response_too_large() {
    let run = serving("#!/bin/sh\nhead -c 6291557 /dev/zero\n");
    assert_error(&run.invoke(Event::new("r1", "{}")), "Runtime.ResponseTooLarge", &["6291556"]);
    // Exactly at the limit is fine.
    let at_limit = serving("#!/bin/sh\nhead -c 6291556 /dev/zero\n");
    assert_eq!(at_limit.response_to(Event::new("r1", "{}")).body.len(), 6_291_556);
    still_serves(&run);
}

#[test]
fn endless_output_is_cut_off_without_waiting_for_the_deadline() {
    // `yes` never stops on its own; the deadline (30 s) is past the harness's patience.
    let run = serving("#!/bin/sh\nexec yes\n");
    assert_error(&run.invoke(Event::new("r1", "{}")), "Runtime.ResponseTooLarge", &[]);
    still_serves(&run);
}

#[test]
fn a_handler_that_never_reads_a_big_event_does_not_deadlock() {
    let run = serving("#!/bin/sh\nprintf ok\n");
    let post = run.invoke(Event::new("r1", vec![b'x'; 6 * 1024 * 1024]));
    assert_eq!(post.body_text(), "ok", "{}", post.path);
    still_serves(&run);
}

#[test]
fn a_handler_that_writes_before_reading_does_not_deadlock() {
    let run = serving("#!/bin/sh\nhead -c 1000000 /dev/zero | tr '\\000' a\nwc -c\n");
    let post = run.invoke(Event::new("r1", vec![b'{'; 5 * 1024 * 1024]));
    assert_eq!(post.body.len(), 1_000_000 + "5242880\n".len(), "{}", post.path);
    assert!(post.body.ends_with(b"5242880\n"));
}

#[test]
fn a_five_megabyte_event_round_trips() {
    let mut event = b"{\"data\":\"".to_vec();
    event.extend((0..5 * 1024 * 1024).map(|i| b'a' + (i % 26) as u8));
    event.extend_from_slice(b"\"}");
    let post = serving("#!/bin/sh\nexec cat\n").invoke(Event::new("r1", event.clone()));
    assert!(post.body == event, "5 MB echo differs ({} bytes back)", post.body.len());
    if have("python3") {
        let run = Lambda::new().fixture("python/echo.py", "echo.py").start("echo.handler");
        let body = run.response_to(Event::new("r1", event)).json();
        assert_eq!(body["data"].as_str().map(str::len), Some(5 * 1024 * 1024));
        assert_eq!(body["reply"], "python ok");
    }
}

#[test]
fn a_background_child_holding_stdout_does_not_hang_the_response() {
    let run = serving("#!/bin/sh\nsleep 1000 &\nprintf ok\n");
    let post = run.invoke(Event::new("r1", "{}"));
    assert_eq!(post.body_text(), "ok", "{}", post.path);
    still_serves(&run);
}

#[test]
fn a_grandchild_that_escapes_the_process_group_is_killed_too() {
    if !have("setsid") || emulated("adopting orphans (PR_SET_CHILD_SUBREAPER)") {
        return;
    }
    let run = serving(
        "#!/bin/sh\nsetsid sh -c 'echo $$ > escaped.pid; exec sleep 1000' &\nwhile [ ! -s escaped.pid ]; do :; done\nprintf ok\n",
    );
    let post = run.invoke(Event::new("r1", "{}"));
    assert_eq!(post.body_text(), "ok", "{}", post.path);
    let pid: u32 = fs::read_to_string(run.file("escaped.pid")).unwrap().trim().parse().unwrap();
    assert!(is_gone(pid), "escaped grandchild {pid} survived its event");
    still_serves(&run);
}

#[test]
fn empty_output_with_exit_zero_is_an_empty_response() {
    let post = serving("#!/bin/sh\nexit 0\n").invoke(Event::new("r1", "{}"));
    assert_eq!(post.path, "/2018-06-01/runtime/invocation/r1/response");
    assert!(post.body.is_empty());
}

#[test]
fn exit_70_with_an_error_object_reports_that_error() {
    let run = serving(
        "#!/bin/sh\nprintf '{\"errorType\":\"OrderMissing\",\"errorMessage\":\"no order 7\",\"stackTrace\":[\"at x\"]}'\nexit 70\n",
    );
    let post = run.invoke(Event::new("r1", "{}"));
    assert_error(&post, "OrderMissing", &["no order 7"]);
    assert_eq!(post.header("Lambda-Runtime-Function-Error-Type"), Some("Function.OrderMissing"));
    assert_eq!(post.json()["stackTrace"][0], "at x");
}

#[test]
fn exit_70_without_an_error_object_is_a_plain_exit_error() {
    let post = serving("#!/bin/sh\nprintf 'not json'\nexit 70\n").invoke(Event::new("r1", "{}"));
    assert_error(&post, "Runtime.ExitError", &["status 70"]);
}

#[test]
fn a_handler_that_cannot_be_started_is_a_per_event_import_error() {
    // The handler's #! line names a program that does not exist: a file that cannot load.
    let run = serving("#!/nonexistent/interpreter\n");
    let post = run.invoke(Event::new("r1", "{}"));
    assert_error(&post, "Runtime.ImportModuleError", &["cannot run", "#! interpreter"]);
    fs::write(run.file("h"), "#!/bin/sh\nprintf fine\n").unwrap();
    still_serves(&run);
}

#[test]
fn a_handler_that_ignores_sigterm_is_still_stopped_at_the_deadline() {
    let run = serving("#!/bin/sh\ntrap '' TERM\nsleep 1000\n");
    let post = run.invoke(Event::new("r1", "{}").deadline_in(Duration::from_millis(800)));
    assert_error(&post, "Runtime.Timeout", &[]);
    still_serves(&run);
}

#[test]
fn fifty_grandchildren_that_outlive_the_handler_are_killed() {
    let run = serving(
        "#!/bin/sh\nfor i in $(seq 50); do sleep 1000 & done\njobs -p > pids\nprintf started\n",
    );
    let post = run.invoke(Event::new("r1", "{}"));
    assert_eq!(post.body_text(), "started", "{}", post.path);
    let pids: Vec<u32> = fs::read_to_string(run.file("pids"))
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 50);
    let survivors: Vec<&u32> = pids.iter().filter(|pid| !is_gone(**pid)).collect();
    assert!(survivors.is_empty(), "grandchildren survived their event: {survivors:?}");
    still_serves(&run);
}

#[test]
fn fifty_megabytes_on_stdout_is_cut_off_at_the_limit() {
    let run = serving("#!/bin/sh\nhead -c 52428800 /dev/zero\n");
    assert_error(&run.invoke(Event::new("r1", "{}")), "Runtime.ResponseTooLarge", &[]);
    still_serves(&run);
}

#[test]
fn twenty_megabytes_on_stderr_go_to_the_log_and_the_response_is_kept() {
    let run = serving("#!/bin/sh\nhead -c 20971520 /dev/zero | tr '\\000' e >&2\nprintf done\n");
    let post = run.invoke(Event::new("r1", "{}"));
    assert_eq!(post.body_text(), "done", "{}", post.path);
    still_serves(&run);
}

#[test]
fn closing_stdout_early_gives_what_was_written_before() {
    let run = serving("#!/bin/sh\nprintf partial\nexec >&-\necho 'still running' >&2\nexit 0\n");
    let post = run.invoke(Event::new("r1", "{}"));
    assert_eq!(post.path, "/2018-06-01/runtime/invocation/r1/response");
    assert_eq!(post.body_text(), "partial");
    still_serves(&run);
}
