use std::fs;

use crate::support::*;

/// An interpreters.toml entry for the rogue runner, which breaks the frame protocol on request.
const ROGUE: &str = "[interpreters.rogue]\nextensions = [\"rogue\"]\n\
                     command = [\"python3\", \"{task_root}/rogue_runner.py\", \"{file}\", \"{method}\"]\n\
                     protocol = \"framed\"\nevents_per_process = 0\n";

/// A task root whose `h.handler` is run by the rogue runner.
fn rogue() -> Lambda {
    Lambda::new()
        .fixture("framed/rogue_runner.py", "rogue_runner.py")
        .config(ROGUE)
        .write("h.rogue", "")
}

#[test]
fn protocol_violations_fail_the_event_and_a_fresh_worker_takes_over() {
    if !have("python3") {
        return;
    }
    let run = rogue().start("h.handler");
    let cases = [
        ("garbage", "Runtime.InvalidFrame", "unexpected frame header"),
        ("huge", "Runtime.ResponseTooLarge", "6291556"),
        ("cut", "Runtime.InvalidFrame", "cut short"),
        ("ready", "Runtime.InvalidFrame", "ready"),
        ("exit", "Runtime.ExitError", "status 5"),
    ];
    for (i, (event, error_type, message)) in cases.into_iter().enumerate() {
        assert_error(&run.error_for(Event::new(&format!("r{i}"), event)), error_type, &[message]);
        let post = run.response_to(Event::new(&format!("ok{i}"), "fine"));
        assert_eq!(post.body_text(), "fine", "after {event}");
    }
    assert_no_panic(&run.stop());
}

/// A Python handler that reports its pid, a per-process counter, and whether it was loaded
/// before the event arrived (it logs "loaded" at import time).
const COUNTER: &str = "import os\nprint('loaded', os.getpid(), flush=True)\nopen('loads', 'a').write('x')\n\
                       count = 0\n\ndef handler(event, context):\n    global count\n    count += 1\n    \
                       print('printed by the handler')\n    return {'pid': os.getpid(), 'count': count}\n";

/// bootstrap serving `COUNTER` from a framed Python entry with `events_per_process` (a line of
/// TOML, or "").
fn counter(events_per_process: &str) -> Run {
    let keys = format!("protocol = \"framed\"\n{events_per_process}\n");
    Lambda::new()
        .config(&runner_entry("python", &keys))
        .write("counter.py", COUNTER)
        .start("counter.handler")
}

fn pids_and_counts(run: &Run, n: usize) -> Vec<(u64, u64)> {
    (0..n)
        .map(|i| {
            let body = run.response_to(Event::new(&format!("c{i}"), "{}")).json();
            (body["pid"].as_u64().unwrap(), body["count"].as_u64().unwrap())
        })
        .collect()
}

#[test]
fn a_warm_worker_serves_every_event_in_one_process() {
    if !have("python3") {
        return;
    }
    let run = counter("events_per_process = 0");
    let seen = pids_and_counts(&run, 4);
    assert!(seen.iter().all(|(pid, _)| *pid == seen[0].0), "one process: {seen:?}");
    assert_eq!(seen.iter().map(|(_, c)| *c).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    // Handler prints go to the log (on the worker's own output thread, so wait for them).
    run.wait_for_log("printed by the handler");
}

#[test]
fn events_per_process_sets_how_long_a_worker_lives() {
    if !have("python3") {
        return;
    }
    for (setting, counts) in [("", vec![1, 1, 1, 1]), ("events_per_process = 2", vec![1, 2, 1, 2])]
    {
        let seen = pids_and_counts(&counter(setting), 4);
        assert_eq!(
            seen.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
            counts,
            "{setting:?}: {seen:?}"
        );
        let distinct: std::collections::BTreeSet<u64> = seen.iter().map(|(pid, _)| *pid).collect();
        assert_eq!(
            distinct.len(),
            4 / counts.iter().max().copied().unwrap() as usize,
            "{setting:?}"
        );
    }
}

#[test]
fn the_next_worker_has_loaded_the_handler_before_next_is_asked() {
    if !have("python3") {
        return;
    }
    let run = counter("");
    // Before the first /next, the first worker has loaded; after the first answer, bootstrap
    // starts the second worker and asks /next again only once it has loaded.
    run.api.wait_for_polls(1);
    assert_eq!(fs::read_to_string(run.file("loads")).unwrap(), "x");
    pids_and_counts(&run, 1);
    run.api.wait_for_polls(2);
    assert_eq!(fs::read_to_string(run.file("loads")).unwrap(), "xx");
}

/// A warm Python worker with a memory limit; the event says how much to hold and for how long.
const HUNGRY: &str = "import os, time\nheld = []\n\ndef handler(event, context):\n    \
                      held.append(b'x' * (event['mib'] << 20))\n    time.sleep(event['sleep'])\n    \
                      return {'pid': os.getpid()}\n";

#[test]
fn a_worker_over_max_rss_mb_is_killed_or_replaced() {
    if !have("python3") {
        return;
    }
    let config = runner_entry("python", &format!("{}max_rss_mb = 100\n", Mode::Warm.settings()));
    let run = Lambda::new().config(&config).write("hungry.py", HUNGRY).start("hungry.handler");
    let pid_of = |id: &str, event: &str| -> u64 {
        run.response_to(Event::new(id, event)).json()["pid"].as_u64().unwrap()
    };
    // Within the limit, the warm worker is kept.
    let first = pid_of("a", r#"{"mib": 1, "sleep": 0}"#);
    assert_eq!(pid_of("b", r#"{"mib": 1, "sleep": 0}"#), first);
    // Over it while running: killed, and the event gets the error.
    let post = run.error_for(Event::new("c", r#"{"mib": 300, "sleep": 20}"#));
    assert_error(&post, "Runtime.OutOfMemory", &["max_rss_mb = 100"]);
    // Over it with no time to spare: whether the check catches it running (an error) or just
    // after (the answer stands), the worker does not serve the next event.
    let post = run.invoke(Event::new("d", r#"{"mib": 150, "sleep": 0}"#));
    let grown = if post.path.ends_with("/d/error") {
        assert_error(&post, "Runtime.OutOfMemory", &[]);
        None
    } else {
        assert_eq!(post.path, "/2018-06-01/runtime/invocation/d/response");
        post.json()["pid"].as_u64()
    };
    let next = pid_of("e", r#"{"mib": 1, "sleep": 0}"#);
    assert!(next != first && Some(next) != grown, "the worker over the limit served again");
}

#[test]
fn a_framed_runner_streams_its_answer_as_it_writes_it() {
    if !have("python3") {
        return;
    }
    let run = rogue().fifo("gate").start("h.handler");
    let post = run.response_to(Event::new("r1", "stream"));
    assert_eq!(post.body_text(), "a;b;c");
    assert_eq!(post.header("Content-Type"), Some("text/plain"));
    assert_eq!(post.header("Lambda-Runtime-Function-Response-Mode"), Some("streaming"));
    assert!(post.trailers.is_empty(), "{:?}", post.trailers);

    run.api.push(Event::new("r2", "gated"));
    // Chunks arrive in order; r1's came first.
    let first = std::iter::repeat_with(|| run.api.next_chunk())
        .find(|chunk| chunk.path.contains("/r2/"))
        .expect("a chunk of r2");
    assert_eq!(first.bytes, b"first;", "{}", first.path);
    // The runner waits on the gate until now: the first chunk came before its answer ended.
    fs::write(run.file("gate"), "go\n").unwrap();
    let post = run.api.expect_post("/runtime/invocation/r2/response");
    assert_eq!(post.body_text(), "first;last");
}

#[test]
fn a_framed_stream_that_fails_ends_with_error_trailers_and_a_stray_chunk_is_a_violation() {
    if !have("python3") {
        return;
    }
    let run = rogue().start("h.handler");
    let post = run.response_to(Event::new("r1", "streamfail"));
    assert_eq!(post.body_text(), "partial");
    assert_eq!(post.trailer("Lambda-Runtime-Function-Error-Type"), Some("Function.Boom"));
    assert_eq!(post.error_trailer()["errorMessage"], "after output");
    let post = run.error_for(Event::new("r2", "chunkfirst"));
    assert_error(&post, "Runtime.InvalidFrame", &["chunk before"]);
    run.assert_serves(Event::new("r3", "fine"), "fine");
}

#[test]
fn bootstrap_invoke_writes_a_framed_stream_to_stdout() {
    if !have("python3") {
        return;
    }
    let out = rogue().cli(&["invoke", "--handler", "h.handler", "-"]).stdin("stream").run();
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout, "a;b;c");
}

#[test]
fn a_retired_worker_finishes_what_it_does_after_its_last_answer() {
    if !have("python3") {
        return;
    }
    // A thread the handler started logs after the answer; the worker then retires (one event
    // per process). Its line must reach the log: the worker is given time to exit by itself.
    let handler = "import threading, time\n\
                   def late():\n    time.sleep(0.1)\n    print('late line', flush=True)\n\
                   def handler(event, context):\n    threading.Thread(target=late).start()\n    return 1\n";
    let run = Lambda::new().write("h.py", handler).mode(Mode::Ahead).start("h.handler");
    run.response_to(Event::new("r1", "{}"));
    run.wait_for_log("late line");
}
