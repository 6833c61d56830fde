use std::fs;
use std::time::Duration;

use crate::support::*;

/// Serves `script` (an executable handler) for one event and returns the post. The script
/// answers the request id `after` normally, so `still_serves` can prove the loop recovered.
fn serve_script(script: &str, event: Event) -> (Post, TaskRoot, MockApi, Bootstrap) {
    let api = MockApi::start();
    let (shebang, body) = script.split_once('\n').expect("a script starts with #!");
    let script = format!(
        "{shebang}\n[ \"$LAMBDA_RUNTIME_AWS_REQUEST_ID\" = after ] && {{ printf fine; exit 0; }}\n{body}"
    );
    let root = TaskRoot::new().script("h", &script);
    let bootstrap = Bootstrap::start(&api, &root, "h.handler");
    api.push(event);
    let post = api.next_post();
    (post, root, api, bootstrap)
}

/// The loop is still healthy: nothing was left running, and one more normal event is served.
#[track_caller]
fn still_serves(api: &MockApi, bootstrap: &Bootstrap) {
    assert_no_children(bootstrap);
    api.push(Event::new("after", "{}"));
    let post = api.expect_post("/runtime/invocation/after/response");
    assert_eq!(post.body_text(), "fine");
    assert_no_children(bootstrap);
}

#[test]
fn non_zero_exit_reports_the_status_and_the_last_stderr_lines() {
    let script =
        "#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo \"trace $i\" >&2; done\nexit 3\n";
    let (post, _root, api, b) = serve_script(script, Event::new("r1", "{}"));
    assert_error(&post, "Runtime.ExitError", &["exited with status 3", "trace 3\n", "trace 12"]);
    assert!(
        !post.json()["errorMessage"].as_str().unwrap().contains("trace 2\n"),
        "only the last 10 lines"
    );
    still_serves(&api, &b);
}

#[test]
fn death_by_signal_names_the_signal() {
    let (post, _root, api, b) =
        serve_script("#!/bin/sh\necho dying >&2\nkill -SEGV $$\n", Event::new("r1", "{}"));
    assert_error(&post, "Runtime.ExitError", &["signal 11 (SIGSEGV)", "dying"]);
    let (post, _root2, _api2, _b2) =
        serve_script("#!/bin/sh\nkill -KILL $$\n", Event::new("r1", "{}"));
    assert_error(&post, "Runtime.ExitError", &["SIGKILL"]);
    still_serves(&api, &b);
}

#[test]
fn a_timeout_kills_the_whole_process_group_and_posts_before_the_deadline() {
    // The handler starts a grandchild and both block forever.
    let script = "#!/bin/sh\nsleep 1000 &\necho $! > grandchild.pid\necho $$ > child.pid\nwait\n";
    let event = Event::new("r1", "{}").deadline_in(Duration::from_secs(2));
    let (post, root, api, b) = serve_script(script, event);
    assert_error(&post, "Runtime.Timeout", &["timed out", "before the invocation deadline"]);
    for name in ["grandchild.pid", "child.pid"] {
        let pid: u32 = fs::read_to_string(root.file(name)).unwrap().trim().parse().unwrap();
        assert!(is_gone(pid), "{name} {pid} survived the timeout");
    }
    still_serves(&api, &b);
}

#[test]
fn a_deadline_already_past_times_out_at_once() {
    let event = Event::new("r1", "{}").header("Lambda-Runtime-Deadline-Ms", "1700000000000");
    let (post, _root, api, b) = serve_script("#!/bin/sh\nsleep 1000\n", event);
    assert_error(&post, "Runtime.Timeout", &[]);
    still_serves(&api, &b);
}

#[test]
fn output_over_the_limit_is_response_too_large() {
    let (post, _root, api, b) =
        serve_script("#!/bin/sh\nhead -c 6291557 /dev/zero\n", Event::new("r1", "{}"));
    assert_error(&post, "Runtime.ResponseTooLarge", &["6291556"]);
    // Exactly at the limit is fine.
    let root = TaskRoot::new().script("h", "#!/bin/sh\nhead -c 6291556 /dev/zero\n");
    let api2 = MockApi::start();
    let _b2 = Bootstrap::start(&api2, &root, "h.handler");
    api2.push(Event::new("r1", "{}"));
    assert_eq!(api2.expect_post("/runtime/invocation/r1/response").body.len(), 6_291_556);
    still_serves(&api, &b);
}

#[test]
fn endless_output_is_cut_off_without_waiting_for_the_deadline() {
    // `yes` never stops on its own; the deadline (30 s) is past the harness's patience.
    let (post, _root, api, b) = serve_script("#!/bin/sh\nexec yes\n", Event::new("r1", "{}"));
    assert_error(&post, "Runtime.ResponseTooLarge", &[]);
    still_serves(&api, &b);
}

#[test]
fn a_handler_that_never_reads_a_big_event_does_not_deadlock() {
    let event = Event::new("r1", vec![b'x'; 6 * 1024 * 1024]);
    let (post, _root, api, b) = serve_script("#!/bin/sh\nprintf ok\n", event);
    assert_eq!(post.body_text(), "ok", "{}", post.path);
    still_serves(&api, &b);
}

#[test]
fn a_handler_that_writes_before_reading_does_not_deadlock() {
    let script = "#!/bin/sh\nhead -c 1000000 /dev/zero | tr '\\000' a\nwc -c\n";
    let event = Event::new("r1", vec![b'{'; 5 * 1024 * 1024]);
    let (post, _root, _api, _b) = serve_script(script, event);
    assert_eq!(post.body.len(), 1_000_000 + "5242880\n".len(), "{}", post.path);
    assert!(post.body.ends_with(b"5242880\n"));
}

#[test]
fn a_five_megabyte_event_round_trips() {
    let mut event = b"{\"data\":\"".to_vec();
    event.extend((0..5 * 1024 * 1024).map(|i| b'a' + (i % 26) as u8));
    event.extend_from_slice(b"\"}");
    let (post, _root, _api, _b) =
        serve_script("#!/bin/sh\nexec cat\n", Event::new("r1", event.clone()));
    assert!(post.body == event, "5 MB echo differs ({} bytes back)", post.body.len());
    if have("python3") {
        let api = MockApi::start();
        let root = TaskRoot::new().copy("python/echo.py", "echo.py");
        let _b = Bootstrap::start(&api, &root, "echo.handler");
        api.push(Event::new("r1", event));
        let body = api.expect_post("/runtime/invocation/r1/response").json();
        assert_eq!(body["data"].as_str().map(str::len), Some(5 * 1024 * 1024));
        assert_eq!(body["reply"], "python ok");
    }
}

#[test]
fn a_background_child_holding_stdout_does_not_hang_the_response() {
    let (post, _root, api, b) =
        serve_script("#!/bin/sh\nsleep 1000 &\nprintf ok\n", Event::new("r1", "{}"));
    assert_eq!(post.body_text(), "ok", "{}", post.path);
    still_serves(&api, &b);
}

#[test]
fn a_grandchild_that_escapes_the_process_group_is_killed_too() {
    if !have("setsid") || emulated("adopting orphans (PR_SET_CHILD_SUBREAPER)") {
        return;
    }
    let script = "#!/bin/sh\nsetsid sh -c 'echo $$ > escaped.pid; exec sleep 1000' &\nwhile [ ! -s escaped.pid ]; do :; done\nprintf ok\n";
    let (post, root, api, b) = serve_script(script, Event::new("r1", "{}"));
    assert_eq!(post.body_text(), "ok", "{}", post.path);
    let pid: u32 = fs::read_to_string(root.file("escaped.pid")).unwrap().trim().parse().unwrap();
    assert!(is_gone(pid), "escaped grandchild {pid} survived its event");
    still_serves(&api, &b);
}

#[test]
fn empty_output_with_exit_zero_is_an_empty_response() {
    let (post, _root, _api, _b) = serve_script("#!/bin/sh\nexit 0\n", Event::new("r1", "{}"));
    assert_eq!(post.path, "/2018-06-01/runtime/invocation/r1/response");
    assert!(post.body.is_empty());
}

#[test]
fn exit_70_with_an_error_object_reports_that_error() {
    let script = "#!/bin/sh\nprintf '{\"errorType\":\"OrderMissing\",\"errorMessage\":\"no order 7\",\"stackTrace\":[\"at x\"]}'\nexit 70\n";
    let (post, _root, _api, _b) = serve_script(script, Event::new("r1", "{}"));
    assert_error(&post, "OrderMissing", &["no order 7"]);
    assert_eq!(post.header("Lambda-Runtime-Function-Error-Type"), Some("Function.OrderMissing"));
    assert_eq!(post.json()["stackTrace"][0], "at x");
}

#[test]
fn exit_70_without_an_error_object_is_a_plain_exit_error() {
    let (post, _root, _api, _b) =
        serve_script("#!/bin/sh\nprintf 'not json'\nexit 70\n", Event::new("r1", "{}"));
    assert_error(&post, "Runtime.ExitError", &["status 70"]);
}

#[test]
fn a_handler_that_cannot_be_started_is_a_per_event_import_error() {
    // The handler's #! line names a program that does not exist: a file that cannot load.
    let (post, root, api, b) = serve_script("#!/nonexistent/interpreter\n", Event::new("r1", "{}"));
    assert_error(&post, "Runtime.ImportModuleError", &["cannot run", "#! interpreter"]);
    fs::write(root.file("h"), "#!/bin/sh\nprintf fine\n").unwrap();
    still_serves(&api, &b);
}

#[test]
fn a_handler_that_ignores_sigterm_is_still_stopped_at_the_deadline() {
    let event = Event::new("r1", "{}").deadline_in(Duration::from_millis(800));
    let (post, _root, api, b) = serve_script("#!/bin/sh\ntrap '' TERM\nsleep 1000\n", event);
    assert_error(&post, "Runtime.Timeout", &[]);
    still_serves(&api, &b);
}

#[test]
fn fifty_grandchildren_that_outlive_the_handler_are_killed() {
    let script =
        "#!/bin/sh\nfor i in $(seq 50); do sleep 1000 & done\njobs -p > pids\nprintf started\n";
    let (post, root, api, b) = serve_script(script, Event::new("r1", "{}"));
    assert_eq!(post.body_text(), "started", "{}", post.path);
    let pids: Vec<u32> = fs::read_to_string(root.file("pids"))
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 50);
    let survivors: Vec<&u32> = pids.iter().filter(|pid| !is_gone(**pid)).collect();
    assert!(survivors.is_empty(), "grandchildren survived their event: {survivors:?}");
    still_serves(&api, &b);
}

#[test]
fn fifty_megabytes_on_stdout_is_cut_off_at_the_limit() {
    let (post, _root, api, b) =
        serve_script("#!/bin/sh\nhead -c 52428800 /dev/zero\n", Event::new("r1", "{}"));
    assert_error(&post, "Runtime.ResponseTooLarge", &[]);
    still_serves(&api, &b);
}

#[test]
fn twenty_megabytes_on_stderr_go_to_the_log_and_the_response_is_kept() {
    let script = "#!/bin/sh\nhead -c 20971520 /dev/zero | tr '\\000' e >&2\nprintf done\n";
    let (post, _root, api, b) = serve_script(script, Event::new("r1", "{}"));
    assert_eq!(post.body_text(), "done", "{}", post.path);
    still_serves(&api, &b);
}

#[test]
fn closing_stdout_early_gives_what_was_written_before() {
    let script = "#!/bin/sh\nprintf partial\nexec >&-\necho 'still running' >&2\nexit 0\n";
    let (post, _root, api, b) = serve_script(script, Event::new("r1", "{}"));
    assert_eq!(post.path, "/2018-06-01/runtime/invocation/r1/response");
    assert_eq!(post.body_text(), "partial");
    still_serves(&api, &b);
}
