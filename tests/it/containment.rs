//! Nothing a handler started escapes (issue 11, guarantees 3 and 4): not a chain of `setsid`
//! processes deeper than any fixed number of rounds, not a handler that moved into bootstrap's
//! own process group, not a chain that forks faster than a sweep; a process that will not die
//! is reported and left, never waited on forever; and with concurrent invocations, one
//! invocation's end never stops another's processes.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::support::*;
use crate::watch::*;

/// 100 processes, each in a session of its own and the parent of the next; all stay, and for
/// 20 s each tries to write into the stdout of the process named in victim.pid.
const SETSID_CHAIN: &str = "import os, time\n\
    for depth in range(99):\n    if os.fork():\n        break\n    os.setsid()\n\
    open('chain.pids', 'a').write('%d\\n' % os.getpid())\n\
    end = time.time() + 20\n\
    while time.time() < end:\n    try:\n        victim = int(open('victim.pid').read())\n        \
    fd = os.open('/proc/%d/fd/1' % victim, os.O_WRONLY)\n        os.write(fd, b'INJECTED')\n        \
    break\n    except (OSError, ValueError):\n        time.sleep(0.005)\n";

/// Plain: starts the chain, waits until all 100 links exist, answers. The next event records
/// its pid for the chain, gives it time to write, and answers "clean".
const PLAIN_CHAIN_HANDLER: &str = "#!/bin/sh\n\
    if [ \"$LAMBDA_RUNTIME_AWS_REQUEST_ID\" = second ]; then echo $$ > victim.pid; sleep 0.3; printf clean; exit 0; fi\n\
    python3 chain.py &\n\
    while [ \"$(wc -l < chain.pids 2>/dev/null || echo 0)\" -lt 100 ]; do sleep 0.01; done\n\
    printf started\n";

#[test]
fn a_setsid_chain_deeper_than_any_sweep_is_gone_before_the_next_event() {
    if !have("python3") || emulated("the warden's PR_SET_CHILD_SUBREAPER") {
        return;
    }
    let run = Lambda::new()
        .write("chain.py", SETSID_CHAIN)
        .script("h", PLAIN_CHAIN_HANDLER)
        .start("h.handler");
    assert_eq!(run.response_to(Event::new("first", "{}")).body_text(), "started");
    let chain = pids_in(&run.file("chain.pids"));
    assert_eq!(chain.len(), 100);
    let survivors: Vec<_> = chain.iter().filter(|pid| !is_gone(**pid)).collect();
    assert!(survivors.is_empty(), "links of the chain survived their event: {survivors:?}");
    assert_eq!(run.response_to(Event::new("second", "{}")).body_text(), "clean");
    assert_only_workers(&run, 0);
}

#[test]
fn a_setsid_chain_started_by_a_framed_handler_ends_with_its_worker() {
    if !have("python3") || emulated("the warden's PR_SET_CHILD_SUBREAPER") {
        return;
    }
    let handler = "import subprocess, sys, time\n\n\
                   def links():\n    try:\n        return len(open('chain.pids').read().split())\n    \
                   except OSError:\n        return 0\n\n\
                   def handler(event, context):\n    subprocess.Popen([sys.executable, 'chain.py'])\n    \
                   while links() < 100:\n        time.sleep(0.01)\n    return 'started'\n";
    let run = Lambda::new()
        .write("chain.py", SETSID_CHAIN)
        .write("h.py", handler)
        .mode(Mode::Ahead)
        .start("h.handler");
    assert_eq!(run.response_to(Event::new("first", "{}")).body_text(), "\"started\"");
    // The worker retires before the next one starts, and everything it started with it.
    run.api.wait_for_polls(2);
    let chain = pids_in(&run.file("chain.pids"));
    let survivors: Vec<_> = chain.iter().filter(|pid| !is_gone(**pid)).collect();
    assert!(survivors.is_empty(), "links of the chain survived their worker: {survivors:?}");
    assert_only_workers(&run, 1);
}

/// Moves the handler into the process group named in the event (bootstrap's), then hangs.
const JOINS_GROUP_PY: &str = "import json, os, time\n\ndef handler(event, context):\n    \
    open('handler.pid', 'w').write(str(os.getpid()))\n    os.setpgid(0, event['pgid'])\n    \
    print('joined', flush=True)\n    time.sleep(1000)\n";
const JOINS_GROUP_PLAIN: &str = "#!/usr/bin/env python3\nimport json, os, sys, time\n\
    event = json.load(sys.stdin)\nopen('handler.pid', 'w').write(str(os.getpid()))\n\
    os.setpgid(0, event['pgid'])\nprint('joined', file=sys.stderr, flush=True)\ntime.sleep(1000)\n";

/// bootstrap running the handler of `mode` that joins a process group, and the event that
/// names bootstrap's own.
fn joins_group(mode: Mode) -> (Run, String) {
    let lambda = match mode {
        Mode::Plain => Lambda::new().script("h", JOINS_GROUP_PLAIN),
        _ => Lambda::new().write("h.py", JOINS_GROUP_PY).mode(mode),
    };
    let run = lambda.start("h.handler");
    let event = format!(r#"{{"pgid": {}}}"#, pgid_of(run.pid()));
    (run, event)
}

#[test]
fn a_handler_that_moved_into_bootstraps_process_group_is_stopped_at_the_deadline() {
    if !have("python3") {
        return;
    }
    for mode in MODES {
        let (run, event) = joins_group(mode);
        let post = run.error_for(Event::new("r1", event).deadline_in(Duration::from_secs(3)));
        assert_error(&post, "Runtime.Timeout", &[]);
        let handler = pids_in(&run.file("handler.pid"))[0];
        assert!(is_gone(handler), "{mode:?}: the handler outlived its deadline");
        let next = Event::new("r2", r#"{"pgid": 0}"#).deadline_in(Duration::from_secs(1));
        assert_error(&run.error_for(next), "Runtime.Timeout", &[]);
    }
}

#[test]
fn sigterm_stops_a_framed_handler_that_moved_into_bootstraps_process_group() {
    if !have("python3") {
        return;
    }
    for mode in [Mode::Ahead, Mode::Warm] {
        let (mut run, event) = joins_group(mode);
        run.api.push(Event::new("r1", event));
        run.wait_for_log("joined");
        // SAFETY: kill takes two integers; the pid is our running child.
        unsafe { libc::kill(run.pid() as libc::pid_t, libc::SIGTERM) };
        let post = run.api.expect_post("/runtime/invocation/r1/error");
        assert_error(&post, "Runtime.Shutdown", &["SIGTERM"]);
        assert_eq!(run.wait_exit().code(), Some(128 + libc::SIGTERM), "{mode:?}");
        wait_gone(pids_in(&run.file("handler.pid"))[0]);
    }
}

/// Serves two events with the `h` of `lambda`, which starts a chain that forks and exits as
/// fast as it can; after each, nothing is left.
fn runaway(lambda: Lambda) {
    let run = lambda.start("h.handler");
    for id in ["r1", "r2"] {
        assert_eq!(run.response_to(Event::new(id, "{}")).body_text(), "started");
        let left = live_descendants(run.pid());
        assert!(left.is_empty(), "{id}: left behind {left:?}; log:\n{}", run.log());
    }
}

#[test]
fn a_chain_that_forks_faster_than_a_sweep_is_stopped() {
    if !have("python3") || emulated("the warden's PR_SET_CHILD_SUBREAPER") {
        return;
    }
    // Each link forks the next at once and exits, in a session of its own; for 20 s at most,
    // so that a runtime that cannot stop it is not left with it for ever.
    let chain = "import os, time\nend = time.time() + 20\nwhile time.time() < end:\n    \
                 if os.fork():\n        os._exit(0)\n    os.setsid()\n";
    let handler = "#!/bin/sh\npython3 runaway.py &\nsleep 0.2\nprintf started\n";
    runaway(Lambda::new().write("runaway.py", chain).script("h", handler));
    // The same chain compiled: a link lives for one fork, tens of microseconds.
    if !have("cc") {
        return;
    }
    let lambda = Lambda::new().script("h", "#!/bin/sh\n./runaway &\nsleep 0.2\nprintf started\n");
    let built = std::process::Command::new("cc")
        .args(["-O2", "-o"])
        .arg(lambda.file("runaway"))
        .arg(fixture("containment/runaway.c"))
        .status()
        .expect("run cc");
    assert!(built.success(), "cc runaway.c");
    runaway(lambda);
}

#[test]
fn a_process_held_by_a_tracer_is_reported_and_left_and_the_next_event_is_served() {
    if !have("mkfifo") || emulated("the warden's PR_SET_CHILD_SUBREAPER") {
        return;
    }
    let handler = "#!/bin/sh\n[ \"$LAMBDA_RUNTIME_AWS_REQUEST_ID\" = r2 ] && { printf fine; exit 0; }\n\
                   sleep 1000 &\necho \"child=$!\" >&2\nread line < gate\nprintf done\n";
    let run = Lambda::new().script("h", handler).fifo("gate").start("h.handler");
    run.api.push(Event::new("r1", "{}"));
    let log = run.wait_for_log("child=");
    let child: u32 = log
        .split("child=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    // A tracer outside bootstrap's reach: this test. The child's death is reported to it first,
    // so until it collects it the child's warden cannot reap it.
    let (seized_tx, seized) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let tracer = thread::spawn(move || {
        let null = std::ptr::null_mut::<libc::c_void>();
        // SAFETY: ptrace with integer arguments; the pid is a process of our bootstrap.
        let rc = unsafe { libc::ptrace(libc::PTRACE_SEIZE, child as libc::pid_t, null, null) };
        seized_tx.send(rc == 0).unwrap();
        let _ = release_rx.recv_timeout(PATIENCE * 2);
        let mut status = 0;
        // SAFETY: waits for our tracee; `status` is a local integer.
        while unsafe { libc::waitpid(child as libc::pid_t, &mut status, libc::__WALL) } > 0 {
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                break;
            }
            unsafe { libc::ptrace(libc::PTRACE_CONT, child as libc::pid_t, null, null) };
        }
    });
    assert!(seized.recv().unwrap(), "cannot ptrace the handler's child");
    open_gate(&run.file("gate"));
    assert_eq!(run.api.expect_post("/runtime/invocation/r1/response").body_text(), "done");
    // The warning is written before the answer is posted, but reaches the log on its own thread.
    run.wait_for_log("left behind");
    assert_eq!(run.response_to(Event::new("r2", "{}")).body_text(), "fine");
    release.send(()).unwrap();
    tracer.join().unwrap();
    wait_gone(child);
}

/// Under concurrency: "keeper" starts a daemon (orphaned, in a session of its own) and waits on
/// the gate, then reports whether its daemon still lives; "leaver" leaves an orphan behind and
/// answers.
const KEEPER_AND_LEAVER: &str = "#!/bin/sh\nkind=$(cat)\n\
    if [ \"$kind\" = leaver ]; then sh -c 'setsid sleep 1000 & echo $! > leaver.pid'; printf left; exit 0; fi\n\
    sh -c 'setsid sleep 1000 & echo $! > daemon.pid'\n\
    echo 'keeper ready' >&2\nread line < gate\n\
    state=$(sed 's/.*) //' /proc/\"$(cat daemon.pid)\"/stat 2>/dev/null | cut -c1)\n\
    case $state in ''|Z|X) printf dead ;; *) printf alive ;; esac\n";

#[test]
fn one_invocations_end_never_stops_another_invocations_processes() {
    if !have("setsid") || !have("mkfifo") || emulated("the warden's PR_SET_CHILD_SUBREAPER") {
        return;
    }
    let run = Lambda::new()
        .script("h", KEEPER_AND_LEAVER)
        .fifo("gate")
        .env("AWS_LAMBDA_MAX_CONCURRENCY", "2")
        .start("h.handler");
    run.api.wait_for_polls(2);
    run.api.push(Event::new("keeper", "keeper"));
    run.wait_for_log("keeper ready");
    assert_eq!(run.response_to(Event::new("leaver", "leaver")).body_text(), "left");
    let leaver = pids_in(&run.file("leaver.pid"))[0];
    assert!(is_gone(leaver), "the leaver's process outlived its event");
    open_gate(&run.file("gate"));
    let post = run.api.expect_post("/runtime/invocation/keeper/response");
    assert_eq!(post.body_text(), "alive", "the leaver's end stopped the keeper's daemon");
    let daemon = pids_in(&run.file("daemon.pid"))[0];
    assert!(is_gone(daemon), "the keeper's daemon outlived its event");
}

#[test]
fn one_warm_workers_end_never_stops_another_workers_processes() {
    if !have("python3") || !have("mkfifo") || emulated("the warden's PR_SET_CHILD_SUBREAPER") {
        return;
    }
    let handler = "import os, subprocess\n\n\
        def orphan(pidfile):\n    \
        subprocess.run(['sh', '-c', 'setsid sleep 1000 & echo $! > ' + pidfile])\n    \
        return int(open(pidfile).read())\n\n\
        def alive(pid):\n    try:\n        \
        return open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()[0] not in 'ZX'\n    \
        except OSError:\n        return False\n\n\
        def handler(event, context):\n    if event == 'leaver':\n        orphan('leaver.pid')\n        \
        os._exit(3)\n    daemon = orphan('daemon.pid')\n    print('keeper ready', flush=True)\n    \
        open('gate').read()\n    return 'alive' if alive(daemon) else 'dead'\n";
    let mut run = Lambda::new()
        .write("h.py", handler)
        .mode(Mode::Warm)
        .fifo("gate")
        .env("AWS_LAMBDA_MAX_CONCURRENCY", "2")
        .start("h.handler");
    run.api.wait_for_polls(2);
    run.api.push(Event::new("keeper", "\"keeper\""));
    run.wait_for_log("keeper ready");
    let post = run.error_for(Event::new("leaver", "\"leaver\""));
    assert_error(&post, "Runtime.ExitError", &[]);
    let leaver = pids_in(&run.file("leaver.pid"))[0];
    assert!(is_gone(leaver), "the leaver's process outlived its worker");
    open_gate(&run.file("gate"));
    let post = run.api.expect_post("/runtime/invocation/keeper/response");
    assert_eq!(post.body_text(), "\"alive\"", "the leaver's end stopped the keeper's daemon");
    // The daemon belongs to the keeper's warm worker, which lives on: it ends with bootstrap.
    let daemon = pids_in(&run.file("daemon.pid"))[0];
    // SAFETY: kill takes two integers; the pid is our child.
    unsafe { libc::kill(run.pid() as libc::pid_t, libc::SIGTERM) };
    run.wait_exit();
    assert!(is_gone(daemon), "the keeper's daemon outlived bootstrap");
}
