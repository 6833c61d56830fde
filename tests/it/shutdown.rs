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
    let api = MockApi::start();
    let script = "#!/bin/sh\nsleep 1000 &\necho \"pids: handler=$$ grandchild=$!\" >&2\nwait\n";
    let root = TaskRoot::new().script("slow", script);
    let mut bootstrap = Bootstrap::start(&api, &root, "slow.handler");
    api.push(Event::new("r1", "{}"));
    let log = bootstrap.wait_for_log("grandchild=");
    let (handler, grandchild) = (pid_after(&log, "handler="), pid_after(&log, "grandchild="));

    let signalled = Instant::now();
    // SAFETY: kill takes two integers; the pid is our running child.
    unsafe { libc::kill(bootstrap.pid() as libc::pid_t, libc::SIGTERM) };
    assert_error(
        &api.expect_post("/runtime/invocation/r1/error"),
        "Runtime.Shutdown",
        &["SIGTERM"],
    );
    let status = bootstrap.wait_exit();
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
    let api = MockApi::start();
    let root = TaskRoot::new().script("echo", "#!/bin/sh\ncat\n");
    let mut bootstrap = Bootstrap::start(&api, &root, "echo.handler");
    api.wait_for_polls(1);
    // SAFETY: as above.
    unsafe { libc::kill(bootstrap.pid() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(bootstrap.wait_exit().code(), Some(128 + libc::SIGTERM));
    assert!(bootstrap.log().contains("received SIGTERM"), "{}", bootstrap.log());
}
