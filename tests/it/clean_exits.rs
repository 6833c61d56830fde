//! Exits are clean (issue 11, guarantee 5): when the Runtime API fails in one loop or SIGTERM
//! arrives, every in-flight handler is stopped and answered, every private TMPDIR and event
//! file removed; and an event file a killed bootstrap left cannot meet a new one's name.

use std::fs;
use std::path::Path;

use crate::support::*;

#[test]
fn a_500_from_next_in_one_loop_stops_and_answers_the_other_loops_handler() {
    let handler =
        "#!/bin/sh\nsleep 1000 &\necho \"tmpdir=$TMPDIR grandchild=$! handler=$$\" >&2\nwait\n";
    let mut run = Lambda::new()
        .script("slow", handler)
        .env("AWS_LAMBDA_MAX_CONCURRENCY", "2")
        .start("slow.handler");
    run.api.wait_for_polls(2);
    run.api.push(Event::new("r1", "{}"));
    let log = run.wait_for_log("handler=");
    let field = |name: &str| -> String {
        let start = log.find(&format!("{name}=")).unwrap() + name.len() + 1;
        log[start..].split_whitespace().next().unwrap().to_string()
    };
    let (tmpdir, grandchild, handler) = (field("tmpdir"), field("grandchild"), field("handler"));
    assert!(Path::new(&tmpdir).is_dir());
    // The other loop's /next fails: the environment is over.
    run.api.push(Event::status(500));
    assert_error(
        &run.api.expect_post("/runtime/invocation/r1/error"),
        "Runtime.Shutdown",
        &["Runtime API failed"],
    );
    assert_eq!(run.wait_exit().code(), Some(1), "{}", run.log());
    for pid in [grandchild, handler] {
        assert!(is_gone(pid.parse().unwrap()), "{pid} outlived bootstrap");
    }
    assert!(!Path::new(&tmpdir).exists(), "{tmpdir} was left behind");
}

#[test]
fn sigterm_removes_the_private_tmpdirs_of_workers_started_ahead() {
    if !have("python3") {
        return;
    }
    let handler = "import os\nopen('tmpdirs', 'a').write(os.environ['TMPDIR'] + '\\n')\n\n\
                   def handler(event, context):\n    return 1\n";
    let mut run = Lambda::new()
        .write("h.py", handler)
        .mode(Mode::Warm)
        .env("AWS_LAMBDA_MAX_CONCURRENCY", "2")
        .start("h.handler");
    // Both workers have loaded (each wrote its TMPDIR) before their loops poll.
    run.api.wait_for_polls(2);
    let tmpdirs = fs::read_to_string(run.file("tmpdirs")).unwrap();
    let tmpdirs: Vec<&str> = tmpdirs.lines().collect();
    assert_eq!(tmpdirs.len(), 2);
    // SAFETY: kill takes two integers; the pid is our running child.
    unsafe { libc::kill(run.pid() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(run.wait_exit().code(), Some(128 + libc::SIGTERM));
    for dir in tmpdirs {
        assert!(!Path::new(dir).exists(), "{dir} was left behind");
    }
}

#[test]
fn an_event_file_left_by_a_killed_bootstrap_does_not_fail_the_first_event() {
    let config =
        "[interpreters.cat]\nextensions = [\"cat\"]\ncommand = [\"cat\", \"{event_file}\"]\n";
    let lambda = Lambda::new().config(config).write("h.cat", "").dir("tmp");
    let tmp = lambda.file("tmp");
    let run = lambda.env("TMPDIR", tmp.to_str().unwrap()).start("h.handler");
    run.api.wait_for_polls(1);
    // What a bootstrap with this pid, killed mid-event, would have left.
    for n in 0..10 {
        fs::write(tmp.join(format!("bootstrap-event-{}-{n}", run.pid())), "stale").unwrap();
    }
    let post = run.response_to(Event::new("r1", r#"{"fresh":true}"#));
    assert_eq!(post.body_text(), r#"{"fresh":true}"#);
    let left = fs::read_dir(&tmp).unwrap().count();
    assert_eq!(left, 10, "the event file was not removed after the event");
}
