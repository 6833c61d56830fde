//! `bootstrap serve` driven by real clients: boto3 and the AWS CLI from `tests/.venv`
//! (`make test-clients`), and raw HTTP on the RIE's path. Also the local experience around it:
//! `make install`, and `invoke`'s newline on a terminal, single failure record and refused
//! `--timeout 0`.
//!
//! Everything talks to 127.0.0.1 on a port the binary picked (`--port 0`, read from the address
//! line it prints). Tests synchronise on what the binary logs and what the clients print, and
//! on FIFOs the handlers wait on; timings go to the benchmark, not here.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use serde_json::{Value, json};

use crate::support::*;

/// A `bootstrap serve` on a free loopback port, killed and reaped when dropped.
struct Serve {
    pid: u32,
    url: String,
    exit: Receiver<ExitStatus>,
    status: Option<ExitStatus>,
    stderr: Arc<(Mutex<Vec<u8>>, Condvar)>,
}

impl Serve {
    /// Starts `bootstrap serve --port 0 --task-root ROOT --handler HANDLER ARGS...` with a clean
    /// environment plus `env`, and waits for its address line.
    fn start(root: &TaskRoot, handler: &str, args: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut command = bootstrap_command();
        command.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        command
            .env("BOOTSTRAP_RUNNERS", Path::new(MANIFEST_DIR).join("layers"))
            .envs(env.iter().copied())
            .current_dir(&root.path)
            .args(["serve", "--port", "0", "--handler", handler, "--task-root"])
            .arg(&root.path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start bootstrap serve");
        let pid = child.id();
        let stderr = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.0.lock().expect("stderr lock").extend_from_slice(&buf[..n]);
                sink.1.notify_all();
            }
        });
        let (line_tx, line_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = line_tx.send(lines.next().and_then(Result::ok).unwrap_or_default());
            // Keep reading, so that nothing it prints later can block it.
            for _ in lines {}
        });
        let (exit_tx, exit) = mpsc::channel();
        thread::spawn(move || wait_child(child, &exit_tx));
        let line = line_rx.recv_timeout(PATIENCE).unwrap_or_default();
        let mut serve = Serve { pid, url: String::new(), exit, status: None, stderr };
        let Some(start) = line.find("http://") else {
            panic!("no address line from bootstrap serve: {line:?}; log:\n{}", serve.stop());
        };
        serve.url = line[start..].split_whitespace().next().unwrap_or_default().to_string();
        serve
    }

    /// `host:port`, for raw HTTP.
    fn authority(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    fn log(&self) -> String {
        text(&self.stderr.0.lock().expect("stderr lock"))
    }

    /// Blocks until the log contains `needle` `count` times; returns the log.
    #[track_caller]
    fn wait_for_log(&self, needle: &str, count: usize) -> String {
        let (lock, changed) = &*self.stderr;
        let log = lock.lock().expect("stderr lock");
        let (log, timeout) = changed
            .wait_timeout_while(log, PATIENCE, |log| text(log).matches(needle).count() < count)
            .expect("stderr lock");
        let log = text(&log);
        assert!(
            !timeout.timed_out(),
            "{needle:?} x{count} not in the log within {PATIENCE:?}:\n{log}"
        );
        log
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill takes two integers; the pid is our child, reaped only by its waiter.
        unsafe { libc::kill(self.pid as libc::pid_t, signal) };
    }

    #[track_caller]
    fn wait_exit(&mut self) -> ExitStatus {
        let status = self.exit.recv_timeout(PATIENCE).unwrap_or_else(|_| {
            panic!("bootstrap serve did not exit within {PATIENCE:?}; log:\n{}", self.log())
        });
        self.status = Some(status);
        status
    }

    /// Kills it and returns its log.
    fn stop(&mut self) -> String {
        if self.status.is_none() {
            self.signal(libc::SIGKILL);
            self.status = self.exit.recv_timeout(PATIENCE).ok();
        }
        self.log()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_child(mut child: Child, exit: &mpsc::Sender<ExitStatus>) {
    if let Ok(status) = child.wait() {
        let _ = exit.send(status);
    }
}

/// `tests/.venv` (or `BOOTSTRAP_TEST_VENV`), where `make test-clients` installs boto3 and the
/// AWS CLI; `None` (with a printed reason, or a failure under BOOTSTRAP_TEST_REQUIRE_ALL=1)
/// when it is not there.
fn venv() -> Option<PathBuf> {
    let venv = std::env::var_os("BOOTSTRAP_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(MANIFEST_DIR).join("tests/.venv"));
    if venv.join("bin/python").is_file() && venv.join("bin/aws").is_file() {
        return Some(venv);
    }
    let why =
        format!("boto3 and the AWS CLI are not in {} (run `make test-clients`)", venv.display());
    if std::env::var_os("BOOTSTRAP_TEST_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("{why} and BOOTSTRAP_TEST_REQUIRE_ALL=1");
    }
    eprintln!("skipped: {why}");
    None
}

/// A client's environment: fake credentials and a region, no config files, no metadata
/// service, no proxy, no retries. Nothing can reach AWS.
fn client_command(program: &Path, home: &Path) -> Command {
    let mut command = Command::new(program);
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command
        .env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", home.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_RETRY_MODE", "standard")
        .env("AWS_PAGER", "")
        .env("NO_PROXY", "*")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// boto3 (`tests/fixtures/serve/client.py`): runs `command` with `options`, returns its JSON.
#[track_caller]
fn boto(venv: &Path, serve: &Serve, root: &TaskRoot, command: &str, options: Value) -> Value {
    let output =
        boto_command(venv, serve, root, command, &options).output().expect("run the boto3 client");
    client_json(&output.stdout, &output.stderr, serve)
}

fn boto_command(
    venv: &Path,
    serve: &Serve,
    root: &TaskRoot,
    command: &str,
    options: &Value,
) -> Command {
    let mut python = client_command(&venv.join("bin/python"), &root.path);
    python.arg(fixture("serve/client.py")).arg(&serve.url).arg(command).arg(options.to_string());
    python
}

#[track_caller]
fn client_json(stdout: &[u8], stderr: &[u8], serve: &Serve) -> Value {
    serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "the client printed no JSON ({e}):\nstdout: {}\nstderr: {}\nserve's log:\n{}",
            text(stdout),
            text(stderr),
            serve.log()
        )
    })
}

/// The AWS CLI: `aws lambda invoke --endpoint-url URL --function-name function ARGS... OUT`;
/// returns what it printed (JSON) and the payload it wrote to OUT.
#[track_caller]
fn aws_invoke(venv: &Path, serve: &Serve, root: &TaskRoot, args: &[&str]) -> (Value, Vec<u8>) {
    let out = root.file("aws-out.bin");
    let _ = fs::remove_file(&out);
    let output = client_command(&venv.join("bin/aws"), &root.path)
        .args(["lambda", "invoke", "--endpoint-url", &serve.url, "--function-name", "function"])
        .args(["--output", "json"])
        .args(args)
        .arg(&out)
        .output()
        .expect("run the AWS CLI");
    assert!(
        output.status.success(),
        "aws lambda invoke failed: {}\n{}\nserve's log:\n{}",
        text(&output.stdout),
        text(&output.stderr),
        serve.log()
    );
    let printed = client_json(&output.stdout, &output.stderr, serve);
    (printed, fs::read(&out).unwrap_or_default())
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let byte = |i: usize| u32::from(group.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            let c = if i <= group.len() { ALPHABET[((n >> shift) & 63) as usize] } else { b'=' };
            out.push(char::from(c));
        }
    }
    out
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// The number after `label` in `text`, e.g. `Max Memory Used: 12 MB` → 12.
fn number_after(text: &str, label: &str) -> u64 {
    let start =
        text.find(label).unwrap_or_else(|| panic!("{label:?} not in {text:?}")) + label.len();
    text[start..]
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in {text:?}"))
}

const ECHO: &str = "#!/bin/sh\nexec cat\n";

#[test]
fn boto3_invokes_and_gets_the_response_with_lambdas_headers() {
    let Some(venv) = venv() else { return };
    let root = TaskRoot::new().script("echo", ECHO);
    let serve = Serve::start(&root, "echo.handler", &[], &[]);
    let got = boto(&venv, &serve, &root, "invoke", json!({"payload": "{\"hello\": [1, 2]}"}));
    assert_eq!(got["status"], 200, "{got}");
    assert_eq!(got["payload"], "{\"hello\": [1, 2]}", "{got}");
    assert_eq!(got["executed_version"], "$LATEST", "{got}");
    assert_eq!(got["function_error"], Value::Null, "{got}");
    // Any function name reaches the one function; the request id is the handler's.
    let got = boto(&venv, &serve, &root, "invoke", json!({"function_name": "my-function"}));
    assert_eq!(got["payload"], "{}", "an empty payload is {{}}: {got}");
    let id = got["request_id"].as_str().expect("x-amzn-requestid");
    serve.wait_for_log(&format!("START RequestId: {id} Version: $LATEST"), 1);
}

#[test]
fn tail_logs_carry_the_invocations_own_log_and_lambdas_records() {
    let Some(venv) = venv() else { return };
    let handler = "#!/bin/sh\necho \"handler says $LAMBDA_RUNTIME_AWS_REQUEST_ID\" >&2\nexec cat\n";
    let root = TaskRoot::new().script("talk", handler);
    let serve = Serve::start(&root, "talk.handler", &[], &[]);
    let got = boto(&venv, &serve, &root, "invoke", json!({"log_type": "Tail"}));
    let (id, log) = (got["request_id"].as_str().unwrap(), got["log"].as_str().unwrap_or_default());
    let expected = [
        format!("START RequestId: {id} Version: $LATEST"),
        format!("handler says {id}"),
        format!("END RequestId: {id}"),
        format!("REPORT RequestId: {id}\tDuration: "),
        "Billed Duration: ".to_string(),
        "Memory Size: 128 MB\tMax Memory Used: ".to_string(),
    ];
    let missing: Vec<&String> = expected.iter().filter(|e| !log.contains(e.as_str())).collect();
    assert!(missing.is_empty(), "missing {missing:?} in the tail:\n{log}");
    assert!(log.trim_end().ends_with("MB"), "the tail ends with the REPORT line:\n{log}");
    // Another invocation's tail has none of this one's lines.
    let other = boto(&venv, &serve, &root, "invoke", json!({"log_type": "Tail"}));
    assert!(!other["log"].as_str().unwrap_or_default().contains(id), "{other}");
    // The AWS CLI gets the same, base64 in LogResult.
    let (printed, payload) =
        aws_invoke(&venv, &serve, &root, &["--payload", "{\"a\":1}", "--log-type", "Tail"]);
    assert_eq!(printed["StatusCode"], 200, "{printed}");
    assert_eq!(payload, b"{\"a\":1}");
    let tail = text(&decode_base64(printed["LogResult"].as_str().expect("LogResult")));
    assert!(tail.contains("START RequestId: ") && tail.contains("handler says "), "{tail}");
}

#[test]
fn a_tail_keeps_only_the_last_4_kb() {
    let Some(venv) = venv() else { return };
    let handler = "#!/bin/sh\nfor i in $(seq 1 400); do echo \"line $i of the handler's log\" >&2; done\necho '{}'\n";
    let root = TaskRoot::new().script("chatty", handler);
    let serve = Serve::start(&root, "chatty.handler", &[], &[]);
    let got = boto(&venv, &serve, &root, "invoke", json!({"log_type": "Tail"}));
    let log = got["log"].as_str().unwrap_or_default();
    assert_eq!(log.len(), 4096, "{log}");
    assert!(!log.contains("START RequestId") && log.contains("REPORT RequestId"), "{log}");
}

#[test]
fn a_function_error_is_200_with_x_amz_function_error_and_the_error_document() {
    let Some(venv) = venv() else { return };
    let root = TaskRoot::new().script("fail", "#!/bin/sh\necho 'boom on stderr' >&2\nexit 3\n");
    let serve = Serve::start(&root, "fail.handler", &[], &[]);
    let got = boto(&venv, &serve, &root, "invoke", json!({}));
    assert_eq!(
        (got["status"].clone(), got["function_error"].clone()),
        (json!(200), json!("Unhandled")),
        "{got}"
    );
    let error: Value = serde_json::from_str(got["payload"].as_str().unwrap()).unwrap();
    assert_eq!(error["errorType"], "Runtime.ExitError", "{error}");
    assert!(error["errorMessage"].as_str().unwrap().contains("boom on stderr"), "{error}");
    let (printed, payload) = aws_invoke(&venv, &serve, &root, &[]);
    assert_eq!(printed["FunctionError"], "Unhandled", "{printed}");
    assert!(text(&payload).contains("Runtime.ExitError"), "{}", text(&payload));
    // The environment goes on serving.
    serve.wait_for_log("REPORT RequestId: ", 2);
}

#[test]
fn the_client_context_reaches_the_handler_as_its_context() {
    let Some(venv) = venv() else { return };
    if !have("python3") {
        return;
    }
    let handler = "def handler(event, context):\n    cc = context.client_context\n    \
                   return {'custom': cc.custom, 'env': cc.env, 'installation': cc.client.installation_id}\n";
    let root = TaskRoot::new().write("ctx.py", handler);
    let serve = Serve::start(&root, "ctx.handler", &[], &[]);
    let context = json!({"custom": {"k": "v"}, "env": {"locale": "en"}, "client": {"installation_id": "i-1"}});
    let got = boto(&venv, &serve, &root, "invoke", json!({"client_context": context}));
    let body: Value = serde_json::from_str(got["payload"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {got}\n{}", serve.log()));
    assert_eq!(body, json!({"custom": {"k": "v"}, "env": {"locale": "en"}, "installation": "i-1"}));
    let encoded =
        base64(br#"{"custom": {"from": "the CLI"}, "client": {"installation_id": "i-2"}}"#);
    let (_, payload) = aws_invoke(&venv, &serve, &root, &["--client-context", &encoded]);
    let body: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(body["custom"], json!({"from": "the CLI"}));
}

#[test]
fn event_is_202_at_once_and_runs_in_the_background_and_dry_run_is_204_and_runs_nothing() {
    let Some(venv) = venv() else { return };
    let handler = "#!/bin/sh\nprintf 'event: ' >&2\ncat >&2\necho >&2\necho '{}'\n";
    let root = TaskRoot::new().script("bg", handler);
    let serve = Serve::start(&root, "bg.handler", &[], &[]);
    let dry = boto(
        &venv,
        &serve,
        &root,
        "invoke",
        json!({"invocation_type": "DryRun", "payload": "{\"n\":0}"}),
    );
    assert_eq!(dry["status"], 204, "{dry}");
    let got = boto(
        &venv,
        &serve,
        &root,
        "invoke",
        json!({"invocation_type": "Event", "payload": "{\"n\":1}"}),
    );
    assert_eq!(got["status"], 202, "{got}");
    assert_eq!(got["payload"], "", "{got}");
    serve.wait_for_log("event: {\"n\":1}", 1);
    let (printed, _) =
        aws_invoke(&venv, &serve, &root, &["--invocation-type", "Event", "--payload", "{\"n\":2}"]);
    assert_eq!(printed["StatusCode"], 202, "{printed}");
    serve.wait_for_log("event: {\"n\":2}", 1);
    let (printed, _) = aws_invoke(&venv, &serve, &root, &["--invocation-type", "DryRun"]);
    assert_eq!(printed["StatusCode"], 204, "{printed}");
    // One more, answered: by then the DryRuns would have run if they ran at all.
    boto(&venv, &serve, &root, "invoke", json!({"payload": "{\"n\":3}"}));
    let log = serve.wait_for_log("REPORT RequestId: ", 3);
    assert_eq!(log.matches("START RequestId: ").count(), 3, "DryRun ran the handler:\n{log}");
    assert!(!log.contains("event: {\"n\":0}"), "{log}");
}

#[test]
fn a_streamed_answer_arrives_chunk_by_chunk_before_the_handler_ends() {
    let Some(venv) = venv() else { return };
    let handler = "#!/bin/sh\nprintf 'first;'\nread line < gate\nprintf 'second'\n";
    let root = TaskRoot::new().script("stream", handler);
    mkfifo(&root.file("gate"));
    let serve =
        Serve::start(&root, "stream.handler", &[], &[("BOOTSTRAP_RESPONSE_MODE", "streaming")]);
    // The client opens the gate only once the first chunk has reached it: the handler cannot
    // finish before that.
    let gate = root.file("gate").display().to_string();
    let got = boto(&venv, &serve, &root, "stream", json!({"gate": gate, "log_type": "Tail"}));
    assert_eq!(got["status"], 200, "{got}");
    assert_eq!(got["content_type"], "application/vnd.amazon.eventstream", "{got}");
    assert_eq!(got["chunks"], json!(["first;", "second"]), "{got}");
    let complete = &got["complete"];
    assert_eq!(complete.get("ErrorCode"), None, "{got}");
    assert!(
        complete["LogResult"].as_str().unwrap_or_default().contains("REPORT RequestId: "),
        "{got}"
    );
}

#[test]
fn a_failed_stream_ends_with_an_invoke_complete_that_names_the_error() {
    let Some(venv) = venv() else { return };
    let root =
        TaskRoot::new().script("partial", "#!/bin/sh\nprintf partial\necho boom >&2\nexit 3\n");
    let serve =
        Serve::start(&root, "partial.handler", &[], &[("BOOTSTRAP_RESPONSE_MODE", "streaming")]);
    let got = boto(&venv, &serve, &root, "stream", json!({}));
    assert_eq!(got["chunks"], json!(["partial"]), "{got}");
    let complete = &got["complete"];
    assert_eq!(complete["ErrorCode"], "Runtime.ExitError", "{got}");
    let details: Value = serde_json::from_str(complete["ErrorDetails"].as_str().unwrap()).unwrap();
    assert!(details["errorMessage"].as_str().unwrap().contains("status 3"), "{details}");
    // A buffered function called this way streams its whole answer, then completes.
    let root = TaskRoot::new().script("echo", ECHO);
    let serve = Serve::start(&root, "echo.handler", &[], &[]);
    let got = boto(&venv, &serve, &root, "stream", json!({"payload": "{\"x\":1}"}));
    assert_eq!(got["chunks"], json!(["{\"x\":1}"]), "{got}");
    assert_eq!(got["complete"], json!({}), "{got}");
}

/// Each handler arrives, then waits until all three have: with fewer than three invocations
/// running at once, none of them could finish.
const BARRIER: &str = "#!/bin/bash\n\
    touch \"arrived/$LAMBDA_RUNTIME_AWS_REQUEST_ID\"\n\
    for i in $(seq 1000); do\n\
      files=(arrived/*); [ ${#files[@]} -ge 3 ] && { printf '\"together\"'; exit 0; }\n\
      sleep 0.02\n\
    done\n\
    exit 9\n";

#[test]
fn concurrent_invokes_run_together_up_to_the_concurrency_and_the_rest_wait() {
    let Some(venv) = venv() else { return };
    let root = TaskRoot::new().script("barrier", BARRIER);
    fs::create_dir(root.file("arrived")).unwrap();
    let serve = Serve::start(&root, "barrier.handler", &["--concurrency", "3"], &[]);
    let got = boto(&venv, &serve, &root, "concurrent", json!({"n": 3}));
    let payloads: Vec<&Value> =
        got["results"].as_array().unwrap().iter().map(|r| &r["payload"]).collect();
    assert_eq!(payloads, [&json!("\"together\""); 3], "{got}\n{}", serve.log());
    // One at a time, more than one caller: they queue, and every one is answered.
    let root = TaskRoot::new().script("echo", ECHO);
    let serve = Serve::start(&root, "echo.handler", &[], &[]);
    let got = boto(&venv, &serve, &root, "concurrent", json!({"n": 6, "payload": "[6]"}));
    let answered =
        got["results"].as_array().unwrap().iter().filter(|r| r["payload"] == "[6]").count();
    assert_eq!(answered, 6, "{got}");
}

#[test]
fn past_the_timeout_the_handler_is_stopped_and_the_answer_says_it_timed_out() {
    let Some(venv) = venv() else { return };
    let handler = "#!/bin/sh\necho \"pid=$$\" >&2\nexec sleep 1000\n";
    let root = TaskRoot::new().script("slow", handler);
    let serve = Serve::start(&root, "slow.handler", &["--timeout", "1"], &[]);
    let got = boto(&venv, &serve, &root, "invoke", json!({}));
    assert_eq!(got["function_error"], "Unhandled", "{got}");
    let error: Value = serde_json::from_str(got["payload"].as_str().unwrap()).unwrap();
    assert_eq!(error["errorType"], "Runtime.Timeout", "{error}");
    assert!(error["errorMessage"].as_str().unwrap().contains("timed out"), "{error}");
    let log = serve.log();
    let pid: u32 = number_after(&log, "pid=") as u32;
    assert!(is_gone(pid), "the handler outlived its timeout");
    // AWS_LAMBDA_FUNCTION_TIMEOUT is the default, as on Lambda.
    let serve = Serve::start(&root, "slow.handler", &[], &[("AWS_LAMBDA_FUNCTION_TIMEOUT", "1")]);
    let got = boto(&venv, &serve, &root, "invoke", json!({}));
    assert!(got["payload"].as_str().unwrap_or_default().contains("Runtime.Timeout"), "{got}");
}

#[test]
fn a_five_megabyte_payload_goes_through_byte_for_byte() {
    let Some(venv) = venv() else { return };
    let root = TaskRoot::new().script("echo", ECHO);
    let serve = Serve::start(&root, "echo.handler", &[], &[]);
    let mut payload = b"{\"data\":\"".to_vec();
    payload.extend((0..5_000_000).map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789 \\\"\\n"[i % 36]));
    payload.extend_from_slice(b"\"}");
    fs::write(root.file("big.json"), &payload).unwrap();
    let (input, out) = (root.file("big.json"), root.file("big.out"));
    let options = json!({"payload_file": input, "out": out});
    let got = boto(&venv, &serve, &root, "invoke", options);
    assert_eq!(got["status"], 200, "{got}");
    let answer = fs::read(root.file("big.out")).unwrap();
    assert!(
        answer == payload,
        "the answer differs: {} bytes against {}",
        answer.len(),
        payload.len()
    );
}

#[test]
fn payloads_lambda_refuses_are_refused_as_lambda_refuses_them() {
    let Some(venv) = venv() else { return };
    let root = TaskRoot::new().script("echo", ECHO);
    let serve = Serve::start(&root, "echo.handler", &[], &[]);
    let got = boto(&venv, &serve, &root, "invoke", json!({"payload": "{not json"}));
    assert_eq!(got["error_code"], "InvalidRequestContentException", "{got}");
    assert_eq!(got["http_status"], 400, "{got}");
    assert!(
        got["message"].as_str().unwrap().contains("Could not parse request body into json"),
        "{got}"
    );
    let mut big = b"\"".to_vec();
    big.resize(6 * 1024 * 1024 + 1, b'a');
    big.push(b'"');
    fs::write(root.file("huge.json"), &big).unwrap();
    let got = boto(&venv, &serve, &root, "invoke", json!({"payload_file": root.file("huge.json")}));
    assert_eq!(got["error_code"], "RequestTooLargeException", "{got}");
    assert_eq!(got["http_status"], 413, "{got}");
    // Neither reached the handler.
    assert!(!serve.log().contains("START RequestId"), "{}", serve.log());
}

#[test]
fn sigterm_mid_invocation_answers_with_an_error_leaves_no_handler_and_exits_143() {
    let Some(venv) = venv() else { return };
    let handler = "#!/bin/sh\nsleep 1000 &\necho \"pids: handler=$$ child=$!\" >&2\nwait\n";
    let root = TaskRoot::new().script("stuck", handler);
    let mut serve = Serve::start(&root, "stuck.handler", &[], &[]);
    let client =
        boto_command(&venv, &serve, &root, "invoke", &json!({})).spawn().expect("start boto3");
    let log = serve.wait_for_log("child=", 1);
    let (handler_pid, child_pid) =
        (number_after(&log, "handler=") as u32, number_after(&log, "child=") as u32);
    serve.signal(libc::SIGTERM);
    let output = client.wait_with_output().expect("wait for boto3");
    let got = client_json(&output.stdout, &output.stderr, &serve);
    assert_eq!(got["function_error"], "Unhandled", "{got}");
    assert!(got["payload"].as_str().unwrap_or_default().contains("Runtime.Shutdown"), "{got}");
    assert_eq!(serve.wait_exit().code(), Some(128 + libc::SIGTERM), "{}", serve.log());
    assert!(is_gone(handler_pid) && is_gone(child_pid), "a handler process outlived serve");
}

/// One HTTP/1.1 request on `stream`, and the answer's status line, headers and body.
fn raw_request(
    stream: &mut TcpStream,
    head: &str,
    body: &[u8],
) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut request = head.as_bytes().to_vec();
    request.extend_from_slice(body);
    stream.write_all(&request).expect("send the request");
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut status = String::new();
    reader.read_line(&mut status).expect("status line");
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("a header");
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().expect("a length"));
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("the body");
    (status.trim_end().to_string(), headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn raw_http_on_the_ries_path_keeps_the_connection_alive() {
    let root = TaskRoot::new().script("echo", ECHO);
    let serve = Serve::start(&root, "echo.handler", &[], &[]);
    let mut stream = TcpStream::connect(serve.authority()).expect("connect");
    let post = |len: usize| {
        format!(
            "POST /2015-03-31/functions/function/invocations HTTP/1.1\r\nHost: x\r\n\
             Content-Length: {len}\r\n\r\n"
        )
    };
    for body in [&b"{\"n\":1}"[..], b"[2]"] {
        let (status, headers, answer) = raw_request(&mut stream, &post(body.len()), body);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(answer, body);
        assert_eq!(header(&headers, "x-amz-executed-version"), Some("$LATEST"));
        assert!(
            header(&headers, "x-amzn-requestid").is_some_and(|id| id.len() == 36),
            "{headers:?}"
        );
    }
    let (status, headers, _) = raw_request(
        &mut stream,
        "GET /2015-03-31/functions/function HTTP/1.1\r\nHost: x\r\n\r\n",
        b"",
    );
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    assert_eq!(header(&headers, "x-amzn-errortype"), Some("ResourceNotFoundException"));
    let body = vec![b'1'; 6 * 1024 * 1024 + 1];
    let (status, headers, answer) = raw_request(&mut stream, &post(body.len()), &body);
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large", "{}", text(&answer));
    assert_eq!(header(&headers, "x-amzn-errortype"), Some("RequestTooLargeException"));
    let (status, _, answer) = raw_request(&mut stream, &post(2), b"[]");
    assert_eq!((status.as_str(), answer.as_slice()), ("HTTP/1.1 200 OK", &b"[]"[..]));
}

#[test]
fn waiting_invocations_are_bounded_and_beyond_that_callers_get_429() {
    // The first invocation holds the only loop until the test opens the gate; the rest wait.
    let handler = "#!/bin/sh\ncat >/dev/null\nif [ -e hold ]; then echo held >&2; read line < gate; fi\necho '{}'\n";
    let root = TaskRoot::new().script("held", handler).write("hold", "");
    mkfifo(&root.file("gate"));
    let serve = Serve::start(&root, "held.handler", &[], &[]);
    let event = |stream: &mut TcpStream| {
        let head = "POST /2015-03-31/functions/function/invocations HTTP/1.1\r\nHost: x\r\n\
                    X-Amz-Invocation-Type: Event\r\nContent-Length: 2\r\n\r\n";
        raw_request(stream, head, b"{}")
    };
    let mut stream = TcpStream::connect(serve.authority()).expect("connect");
    let (status, _, _) = event(&mut stream);
    assert_eq!(status, "HTTP/1.1 202 Accepted");
    serve.wait_for_log("held", 1);
    for i in 0..128 {
        let (status, _, body) = event(&mut stream);
        assert_eq!(status, "HTTP/1.1 202 Accepted", "invocation {i} waiting: {}", text(&body));
    }
    let (status, headers, body) = event(&mut stream);
    assert_eq!(status, "HTTP/1.1 429 Too Many Requests", "{}", text(&body));
    assert_eq!(header(&headers, "x-amzn-errortype"), Some("TooManyRequestsException"));
    assert!(text(&body).contains("128 invocations"), "{}", text(&body));
    // Once the loop is free, every waiting invocation runs.
    fs::remove_file(root.file("hold")).unwrap();
    writeln!(fs::OpenOptions::new().write(true).open(root.file("gate")).unwrap(), "go").unwrap();
    serve.wait_for_log("REPORT RequestId: ", 129);
}

#[test]
fn report_lines_measure_the_handlers_peak_memory() {
    let Some(venv) = venv() else { return };
    if !have("python3") {
        return;
    }
    let handler = "def handler(event, context):\n    data = b'x' * (event['mb'] << 20)\n    return len(data)\n";
    let root = TaskRoot::new().write("mem.py", handler);
    let serve = Serve::start(&root, "mem.handler", &[], &[]);
    let used = |mb: u64| {
        let got = boto(
            &venv,
            &serve,
            &root,
            "invoke",
            json!({"payload": format!("{{\"mb\": {mb}}}"), "log_type": "Tail"}),
        );
        assert_eq!(got["payload"], (mb << 20).to_string(), "{got}");
        number_after(got["log"].as_str().unwrap_or_default(), "Max Memory Used: ")
    };
    let small = used(1);
    let big = used(200);
    assert!(small < 150, "an interpreter with 1 MB of data reported {small} MB");
    assert!(big >= 200, "a handler that filled 200 MB reported {big} MB");
}

#[test]
fn json_logs_have_lambdas_platform_records() {
    let Some(venv) = venv() else { return };
    let root = TaskRoot::new().script("echo", ECHO);
    let serve = Serve::start(&root, "echo.handler", &[], &[("AWS_LAMBDA_LOG_FORMAT", "JSON")]);
    let got = boto(&venv, &serve, &root, "invoke", json!({}));
    let id = got["request_id"].as_str().unwrap();
    let log = serve.wait_for_log("platform.report", 1);
    let records: Vec<Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let of_type = |t: &str| {
        records
            .iter()
            .find(|r| r["type"] == t)
            .unwrap_or_else(|| panic!("no {t} record in:\n{log}"))
    };
    assert_eq!(of_type("platform.start")["record"], json!({"requestId": id, "version": "$LATEST"}));
    assert_eq!(of_type("platform.runtimeDone")["record"]["status"], "success");
    let report = &of_type("platform.report")["record"];
    assert_eq!(report["requestId"], id);
    for metric in ["durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"] {
        assert!(report["metrics"][metric].is_number(), "{metric} in {report}");
    }
    assert!(of_type("platform.start")["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn serve_says_what_is_wrong_before_it_listens() {
    let root = TaskRoot::new();
    let out = run_cli(&root, &["serve", "--port", "0", "--handler", "missing.handler"], &[], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Runtime.HandlerNotFound"), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("http://"), "{}", text(&out.stdout));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let root = root.script("echo", ECHO);
    let out = run_cli(&root, &["serve", "--port", &port, "--handler", "echo.handler"], &[], None);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}"))
            && stderr.contains("--port 0"),
        "{stderr}"
    );
    for args in [["--timeout", "0"], ["--concurrency", "0"]] {
        let out = run_cli(
            &root,
            &[&["serve", "--handler", "echo.handler"][..], &args[..]].concat(),
            &[],
            None,
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn invoke_refuses_a_zero_timeout_with_a_hint() {
    let root = TaskRoot::new().script("echo", ECHO);
    let out = run_cli(&root, &["invoke", "--handler", "echo.h", "--timeout", "0"], &[], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("'--timeout <SECONDS>'") && stderr.contains("hint: "), "{stderr}");
}

#[test]
fn invoke_logs_a_failure_once() {
    let root = TaskRoot::new().script("fail", "#!/bin/sh\nexit 4\n");
    let out = run_cli(&root, &["invoke", "--handler", "fail.h"], &[], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("Runtime.ExitError").count(), 1, "{stderr}");
    assert!(text(&out.stdout).contains("\"errorType\":\"Runtime.ExitError\""));
}

/// Runs `bootstrap invoke ARGS` with its stdout on a pseudo-terminal; returns what it showed.
fn invoke_on_a_terminal(root: &TaskRoot, args: &[&str]) -> Vec<u8> {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors into our integers; the other arguments are null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened for us and are owned from here on.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut command = bootstrap_command();
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BOOTSTRAP_RUNNERS", Path::new(MANIFEST_DIR).join("layers"))
        .current_dir(&root.path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("run bootstrap invoke");
    drop(command);
    let status = child.wait().expect("wait for bootstrap invoke");
    assert!(status.code().is_some(), "{status}");
    let mut shown = Vec::new();
    let mut master = fs::File::from(master);
    // Once the child is gone and the slave closed, the master reads EIO at the end.
    let _ = master.read_to_end(&mut shown);
    shown
}

#[test]
fn invoke_ends_with_a_newline_on_a_terminal_and_stays_byte_exact_in_a_pipe() {
    let root = TaskRoot::new().script("bare", "#!/bin/sh\nprintf '{\"no\":\"newline\"}'\n");
    let shown = invoke_on_a_terminal(&root, &["invoke", "--handler", "bare.h"]);
    // The terminal turns \n into \r\n.
    assert_eq!(text(&shown), "{\"no\":\"newline\"}\r\n");
    let root = root.script("nl", "#!/bin/sh\nprintf 'line\\n'\n");
    assert_eq!(text(&invoke_on_a_terminal(&root, &["invoke", "--handler", "nl.h"])), "line\r\n");
    let piped = run_cli(&root, &["invoke", "--handler", "bare.h"], &[], None);
    assert_eq!(text(&piped.stdout), "{\"no\":\"newline\"}");
}

#[test]
fn make_install_puts_bootstrap_on_path_with_its_runners() {
    if !have("make") {
        return;
    }
    let prefix = TaskRoot::new();
    let out = Command::new("make")
        .arg("-C")
        .arg(MANIFEST_DIR)
        .arg("install-files")
        .arg(format!("PREFIX={}", prefix.path.display()))
        .arg(format!("INSTALL_BIN={BIN}"))
        .output()
        .expect("run make");
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let root = TaskRoot::new().copy("shell/echo.sh", "echo.sh");
    let bin = prefix.path.join("bin");
    let path = std::env::join_paths(
        std::iter::once(bin)
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    // Found on PATH, from a directory with no checkout around it, runners and all.
    let run = Command::new("bootstrap")
        .env_clear()
        .env("PATH", &path)
        .current_dir(&root.path)
        .args(["invoke", "--handler", "echo.handler", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the installed bootstrap");
    let mut run = run;
    run.stdin.take().unwrap().write_all(b"{\"installed\":true}").unwrap();
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("installed"), "{}", text(&out.stdout));
}
