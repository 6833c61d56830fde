use std::fs;

use crate::support::*;

/// An interpreters.toml entry for the rogue runner, which breaks the frame protocol on request.
const ROGUE: &str = "[interpreters.rogue]\nextensions = [\"rogue\"]\n\
                     command = [\"python3\", \"{task_root}/rogue_runner.py\", \"{file}\", \"{method}\"]\n\
                     protocol = \"framed\"\nevents_per_process = 0\n";

fn rogue() -> (MockApi, TaskRoot, Bootstrap) {
    let root = TaskRoot::new()
        .copy("framed/rogue_runner.py", "rogue_runner.py")
        .write("interpreters.toml", ROGUE)
        .write("h.rogue", "");
    let api = MockApi::start();
    let bootstrap = Bootstrap::start(&api, &root, "h.handler");
    (api, root, bootstrap)
}

#[test]
fn protocol_violations_fail_the_event_and_a_fresh_worker_takes_over() {
    if !have("python3") {
        return;
    }
    let (api, _root, bootstrap) = rogue();
    let cases = [
        ("garbage", "Runtime.InvalidFrame", "unexpected frame header"),
        ("huge", "Runtime.ResponseTooLarge", "6291556"),
        ("cut", "Runtime.InvalidFrame", "cut short"),
        ("ready", "Runtime.InvalidFrame", "ready"),
        ("exit", "Runtime.ExitError", "status 5"),
    ];
    for (i, (event, error_type, message)) in cases.into_iter().enumerate() {
        let id = format!("r{i}");
        api.push(Event::new(&id, event));
        assert_error(
            &api.expect_post(&format!("/runtime/invocation/{id}/error")),
            error_type,
            &[message],
        );
        api.push(Event::new(&format!("ok{i}"), "fine"));
        let post = api.expect_post(&format!("/runtime/invocation/ok{i}/response"));
        assert_eq!(post.body_text(), "fine", "after {event}");
    }
    assert!(!bootstrap.stop().contains("panicked"));
}

/// A Python handler that reports its pid, a per-process counter, and whether it was loaded
/// before the event arrived (it logs "loaded" at import time).
const COUNTER: &str = "import os\nprint('loaded', os.getpid(), flush=True)\nopen('loads', 'a').write('x')\n\
                       count = 0\n\ndef handler(event, context):\n    global count\n    count += 1\n    \
                       print('printed by the handler')\n    return {'pid': os.getpid(), 'count': count}\n";

fn counter(events_per_process: &str) -> (MockApi, TaskRoot, Bootstrap) {
    let config = format!(
        "[interpreters.python]\nextensions = [\"py\"]\n\
         command = [\"python3\", \"{{runners}}/python/runner.py\", \"{{file}}\", \"{{method}}\"]\n\
         protocol = \"framed\"\n{events_per_process}\n"
    );
    let root = TaskRoot::new().write("interpreters.toml", &config).write("counter.py", COUNTER);
    let api = MockApi::start();
    let bootstrap = Bootstrap::start(&api, &root, "counter.handler");
    (api, root, bootstrap)
}

fn pids_and_counts(api: &MockApi, n: usize) -> Vec<(u64, u64)> {
    (0..n)
        .map(|i| {
            api.push(Event::new(&format!("c{i}"), "{}"));
            let body = api.expect_post(&format!("/runtime/invocation/c{i}/response")).json();
            (body["pid"].as_u64().unwrap(), body["count"].as_u64().unwrap())
        })
        .collect()
}

#[test]
fn a_warm_worker_serves_every_event_in_one_process() {
    if !have("python3") {
        return;
    }
    let (api, _root, bootstrap) = counter("events_per_process = 0");
    let seen = pids_and_counts(&api, 4);
    assert!(seen.iter().all(|(pid, _)| *pid == seen[0].0), "one process: {seen:?}");
    assert_eq!(seen.iter().map(|(_, c)| *c).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    // Handler prints go to the log (on the worker's own output thread, so wait for them).
    bootstrap.wait_for_log("printed by the handler");
}

#[test]
fn events_per_process_sets_how_long_a_worker_lives() {
    if !have("python3") {
        return;
    }
    for (setting, counts) in [("", vec![1, 1, 1, 1]), ("events_per_process = 2", vec![1, 2, 1, 2])]
    {
        let (api, _root, _b) = counter(setting);
        let seen = pids_and_counts(&api, 4);
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
    let (api, root, _b) = counter("");
    // Before the first /next, the first worker has loaded; after the first answer, bootstrap
    // starts the second worker and asks /next again only once it has loaded.
    api.wait_for_polls(1);
    assert_eq!(fs::read_to_string(root.file("loads")).unwrap(), "x");
    pids_and_counts(&api, 1);
    api.wait_for_polls(2);
    assert_eq!(fs::read_to_string(root.file("loads")).unwrap(), "xx");
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
    let config = "[interpreters.python]\nextensions = [\"py\"]\n\
                  command = [\"python3\", \"{runners}/python/runner.py\", \"{file}\", \"{method}\"]\n\
                  protocol = \"framed\"\nevents_per_process = 0\nmax_rss_mb = 100\n";
    let root = TaskRoot::new().write("interpreters.toml", config).write("hungry.py", HUNGRY);
    let api = MockApi::start();
    let _b = Bootstrap::start(&api, &root, "hungry.handler");
    let pid_of = |id: &str, event: &str| -> u64 {
        api.push(Event::new(id, event));
        api.expect_post(&format!("/runtime/invocation/{id}/response")).json()["pid"]
            .as_u64()
            .unwrap()
    };
    // Within the limit, the warm worker is kept.
    let first = pid_of("a", r#"{"mib": 1, "sleep": 0}"#);
    assert_eq!(pid_of("b", r#"{"mib": 1, "sleep": 0}"#), first);
    // Over it while running: killed, and the event gets the error.
    api.push(Event::new("c", r#"{"mib": 300, "sleep": 20}"#));
    assert_error(
        &api.expect_post("/runtime/invocation/c/error"),
        "Runtime.OutOfMemory",
        &["max_rss_mb = 100"],
    );
    // Over it with no time to spare: whether the check catches it running (an error) or just
    // after (the answer stands), the worker does not serve the next event.
    api.push(Event::new("d", r#"{"mib": 150, "sleep": 0}"#));
    let post = api.next_post();
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
    let (api, root, _bootstrap) = rogue();
    api.push(Event::new("r1", "stream"));
    let post = api.expect_post("/runtime/invocation/r1/response");
    assert_eq!(post.body_text(), "a;b;c");
    assert_eq!(post.header("Content-Type"), Some("text/plain"));
    assert_eq!(post.header("Lambda-Runtime-Function-Response-Mode"), Some("streaming"));
    assert!(post.trailers.is_empty(), "{:?}", post.trailers);

    let made = std::process::Command::new("mkfifo").arg(root.file("gate")).status().unwrap();
    assert!(made.success());
    api.push(Event::new("r2", "gated"));
    // Chunks arrive in order; r1's came first.
    let first = std::iter::repeat_with(|| api.next_chunk())
        .find(|chunk| chunk.path.contains("/r2/"))
        .expect("a chunk of r2");
    assert_eq!(first.bytes, b"first;", "{}", first.path);
    // The runner waits on the gate until now: the first chunk came before its answer ended.
    fs::write(root.file("gate"), "go\n").unwrap();
    let post = api.expect_post("/runtime/invocation/r2/response");
    assert_eq!(post.body_text(), "first;last");
}

#[test]
fn a_framed_stream_that_fails_ends_with_error_trailers_and_a_stray_chunk_is_a_violation() {
    if !have("python3") {
        return;
    }
    let (api, _root, _bootstrap) = rogue();
    api.push(Event::new("r1", "streamfail"));
    let post = api.expect_post("/runtime/invocation/r1/response");
    assert_eq!(post.body_text(), "partial");
    assert_eq!(post.trailer("Lambda-Runtime-Function-Error-Type"), Some("Function.Boom"));
    let body = post.trailer("Lambda-Runtime-Function-Error-Body").expect("error body trailer");
    let error: serde_json::Value = serde_json::from_slice(&decode_base64(body)).unwrap();
    assert_eq!(error["errorMessage"], "after output");
    api.push(Event::new("r2", "chunkfirst"));
    assert_error(
        &api.expect_post("/runtime/invocation/r2/error"),
        "Runtime.InvalidFrame",
        &["chunk before"],
    );
    api.push(Event::new("r3", "fine"));
    assert_eq!(api.expect_post("/runtime/invocation/r3/response").body_text(), "fine");
}

#[test]
fn bootstrap_invoke_writes_a_framed_stream_to_stdout() {
    if !have("python3") {
        return;
    }
    let root = TaskRoot::new()
        .copy("framed/rogue_runner.py", "rogue_runner.py")
        .write("interpreters.toml", ROGUE)
        .write("h.rogue", "");
    let out = run_cli(&root, &["invoke", "--handler", "h.handler", "-"], &[], Some(b"stream"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "a;b;c");
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
    let root = TaskRoot::new().write("h.py", handler).mode(Mode::Ahead);
    let api = MockApi::start();
    let bootstrap = Bootstrap::start(&api, &root, "h.handler");
    api.push(Event::new("r1", "{}"));
    api.expect_post("/runtime/invocation/r1/response");
    bootstrap.wait_for_log("late line");
}
