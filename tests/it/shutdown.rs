use std::time::Instant;

use crate::support::*;

fn pid_after(log: &str, label: &str) -> u32 {
    let start = log.find(label).expect("label in log") + label.len();
    log[start..]
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a pid after the label")
}

#[test]
fn sigterm_stops_the_handler_group_answers_the_event_and_exits() {
    let script = "#!/bin/sh\nsleep 1000 &\necho \"pids: handler=$$ grandchild=$!\" >&2\nwait\n";
    let mut run = Lambda::new().script("slow", script).start("slow.handler");
    run.api.push(Event::new("r1", "{}"));
    let log = run.wait_for_log("grandchild=");
    let (handler, grandchild) = (pid_after(&log, "handler="), pid_after(&log, "grandchild="));

    let signalled = Instant::now();
    // SAFETY: kill takes two integers; the pid is our running child.
    unsafe { libc::kill(run.pid() as libc::pid_t, libc::SIGTERM) };
    assert_error(
        &run.api.expect_post("/runtime/invocation/r1/error"),
        "Runtime.Shutdown",
        &["SIGTERM"],
    );
    let status = run.wait_exit();
    eprintln!("exited {:?} after SIGTERM", signalled.elapsed());
    assert_eq!(
        status.code(),
        Some(128 + libc::SIGTERM),
        "exit status 143, as a shell reports SIGTERM"
    );
    assert!(is_gone(handler) && is_gone(grandchild), "the handler group outlived bootstrap");
}

#[test]
fn sigterm_while_waiting_for_an_event_exits_at_once() {
    let mut run = Lambda::new().script("echo", "#!/bin/sh\ncat\n").start("echo.handler");
    run.api.wait_for_polls(1);
    // SAFETY: as above.
    unsafe { libc::kill(run.pid() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(run.wait_exit().code(), Some(128 + libc::SIGTERM));
    assert!(run.log().contains("received SIGTERM"), "{}", run.log());
}
