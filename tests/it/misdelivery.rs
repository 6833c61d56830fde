//! Every frame is bound to its invocation (issue 11, guarantees 1 and 2): a second, stray,
//! wrong-id or oversized frame never becomes another caller's answer; a runner writing frames
//! nobody asked for is held back by its pipe; a worker that dies while idle never fails the
//! next event.

use std::fs;

use crate::support::*;
use crate::watch::*;

/// The rogue runner (tests/fixtures/framed), warm: one worker for every event.
const ROGUE: &str = "[interpreters.rogue]\nextensions = [\"rogue\"]\n\
                     command = [\"python3\", \"{task_root}/rogue_runner.py\", \"{file}\", \"{method}\"]\n\
                     protocol = \"framed\"\nevents_per_process = 0\n";

fn rogue() -> Run {
    Lambda::new()
        .fixture("framed/rogue_runner.py", "rogue_runner.py")
        .config(ROGUE)
        .write("h.rogue", "")
        .start("h.handler")
}

/// Pushes event `id` whose body is `body`; returns its post.
#[track_caller]
fn serve(run: &Run, id: &str, body: &str) -> Post {
    let post = run.invoke(Event::new(id, body));
    assert!(post.path.contains(&format!("/invocation/{id}/")), "{} for {id}", post.path);
    post
}

/// The post answers its own event (`body` echoed) or is a refused frame: never anything else.
#[track_caller]
fn own_answer_or_refused(post: &Post, body: &str) {
    if post.path.ends_with("/response") {
        assert_eq!(post.body_text(), body, "{}: another caller's answer", post.path);
    } else {
        assert_error(post, "Runtime.InvalidFrame", &[]);
    }
}

#[test]
fn a_second_answer_to_one_event_never_reaches_the_next_caller() {
    if !have("python3") {
        return;
    }
    let run = rogue();
    assert_eq!(serve(&run, "r1", "twice").body_text(), "first answer");
    own_answer_or_refused(&serve(&run, "r2", "for r2"), "for r2");
    // However the race went, the worker that answered twice is gone and r3 is served.
    assert_eq!(serve(&run, "r3", "for r3").body_text(), "for r3");
    assert_no_panic(&run.stop());
}

#[test]
fn an_answer_under_another_invocations_id_is_refused() {
    if !have("python3") {
        return;
    }
    let run = rogue();
    assert_error(&serve(&run, "r1", "wrongid"), "Runtime.InvalidFrame", &["invocation"]);
    assert_eq!(serve(&run, "r2", "fine").body_text(), "fine");
}

#[test]
fn a_header_longer_than_64_bytes_is_refused_not_cut_and_parsed() {
    if !have("python3") {
        return;
    }
    let run = rogue();
    // Cut at 64 bytes, "ok <id> 000...0001" would read as an empty answer.
    assert_error(&serve(&run, "r1", "longheader"), "Runtime.InvalidFrame", &["over 64 bytes"]);
    assert_eq!(serve(&run, "r2", "fine").body_text(), "fine");
}

#[test]
fn frames_nobody_asked_for_are_held_back_by_the_pipe_and_never_delivered() {
    if !have("python3") {
        return;
    }
    let run = rogue();
    assert_eq!(serve(&run, "r1", "flood").body_text(), "flood");
    // The runner now writes 1 MiB frames nobody asked for, without end; bootstrap reads one.
    run.wait_for_log("stray frame 1 written");
    own_answer_or_refused(&serve(&run, "r2", "for r2"), "for r2");
    assert_eq!(serve(&run, "r3", "for r3").body_text(), "for r3");
    let log = run.log();
    assert!(!log.contains("stray frame 3 written"), "bootstrap kept reading stray frames:\n{log}");
    let status = fs::read_to_string(format!("/proc/{}/status", run.pid())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(peak_kib < 64 * 1024, "bootstrap grew to {peak_kib} KiB");
}

/// A handler that forks and lets the child return too, instead of calling `_exit`: the child
/// goes back into the runner's loop and answers the same invocation a second time.
const FORKING: [(&str, &str, &str); 3] = [
    (
        "python3",
        "h.py",
        "import os\n\ndef handler(event, context):\n    if event.get('fork'):\n        os.fork()\n    \
         return event['n']\n",
    ),
    (
        "perl",
        "h.pl",
        "use strict;\nsub handler { my ($e) = @_; my ($n) = $e =~ /\"n\":\\s*(\\d+)/; \
         fork() if $e =~ /fork/; return $n }\n1;\n",
    ),
    (
        "ruby",
        "h.rb",
        "def handler(event:, context:)\n  Process.fork if event['fork']\n  event['n']\nend\n",
    ),
];

#[test]
fn a_forked_child_that_returns_into_a_warm_runner_never_shifts_the_answers() {
    for (program, file, code) in FORKING {
        if !have(program) {
            continue;
        }
        let run = Lambda::new().write(file, code).mode(Mode::Warm).start("h.handler");
        let first = serve(&run, "e1", r#"{"n": 1, "fork": true}"#);
        assert_eq!(first.body_text(), "1", "{program}");
        let mut served = 0;
        for n in 2..=5 {
            let post = serve(&run, &format!("e{n}"), &format!(r#"{{"n": {n}}}"#));
            if post.path.ends_with("/response") {
                assert_eq!(post.body_text(), n.to_string(), "{program}: e{n} got another's answer");
                served += 1;
            } else {
                assert_error(&post, "Runtime.InvalidFrame", &[]);
            }
        }
        assert!(served >= 3, "{program}: the worker was not replaced");
    }
}

/// A Python handler that records the pid of every worker that loads it.
const RECORDS_PID: &str = "import os\nopen('pids', 'a').write('%d\\n' % os.getpid())\n\n\
                           def handler(event, context):\n    return os.getpid()\n";

#[test]
fn a_worker_killed_while_idle_is_replaced_and_the_next_event_is_served() {
    if !have("python3") {
        return;
    }
    for mode in [Mode::Ahead, Mode::Warm] {
        let run = Lambda::new().write("h.py", RECORDS_PID).mode(mode).start("h.handler");
        let first = serve(&run, "r1", "{}");
        assert!(first.path.ends_with("/response"), "{mode:?}: {}", first.body_text());
        // The worker for the next event has loaded (ahead: a new one; warm: the same one) and
        // bootstrap waits on /next. The OOM killer takes it.
        run.api.wait_for_polls(2);
        let idle = *pids_in(&run.file("pids")).last().expect("a worker pid");
        // SAFETY: kill takes two integers; the pid is a worker of our bootstrap.
        unsafe { libc::kill(idle as libc::pid_t, libc::SIGKILL) };
        wait_gone(idle);
        let post = serve(&run, "r2", "{}");
        assert!(post.path.ends_with("/response"), "{mode:?}: {}", post.body_text());
        assert_ne!(post.body_text(), idle.to_string(), "{mode:?}: served by the dead worker");
    }
}

#[test]
fn a_warm_worker_that_crashes_after_answering_does_not_fail_the_next_event() {
    if !have("python3") || !have("mkfifo") {
        return;
    }
    // After answering, a thread of the handler's waits for the gate, then crashes the worker.
    let handler = "import os, signal, threading\n\
                   def crash():\n    open('gate').read()\n    os.kill(os.getpid(), signal.SIGSEGV)\n\
                   def handler(event, context):\n    \
                   threading.Thread(target=crash, daemon=True).start()\n    return os.getpid()\n";
    let run = Lambda::new().write("h.py", handler).mode(Mode::Warm).fifo("gate").start("h.handler");
    let worker: u32 = serve(&run, "r1", "{}").body_text().parse().unwrap();
    open_gate(&run.file("gate"));
    wait_gone(worker);
    let post = serve(&run, "r2", "{}");
    assert!(post.path.ends_with("/response"), "{}", post.body_text());
    assert_ne!(post.body_text(), worker.to_string());
}
