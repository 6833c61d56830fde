use crate::support::*;

/// Events that would run code if anything pasted them into a shell or an `eval`.
fn hostile_events(marker: &str) -> Vec<Vec<u8>> {
    let mut events: Vec<Vec<u8>> = [
        format!("{{\"a\":\"$(touch {marker})\"}}"),
        format!("{{\"a\":\"`touch {marker}`\"}}"),
        format!("{{\"a\":\"x; touch {marker}; rm -rf {marker}.dir\"}}"),
        format!("{{\"a\":\"\\\"; system('touch {marker}'); \\\"\"}}"),
        format!("{{\"a\":\"'); import os; os.system('touch {marker}'); ('\"}}"),
        format!("{{\"a\":\"${{IFS}}touch${{IFS}}{marker}\"}}"),
        format!("touch {marker}\n"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    events.push(b"{\"a\":\"nul\0byte\"}".to_vec());
    events.push(b"{\"a\":\"\xff\xfe invalid utf-8\"}".to_vec());
    let depth = 10_000;
    events.push(format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes());
    events
}

#[test]
fn hostile_events_never_run_as_code_in_any_language() {
    let mut handlers: Vec<(&str, String, &str)> = vec![("sh", "shell/echo.sh".into(), "echo.sh")];
    for (program, fixture, file) in [
        ("perl", "perl/echo.pl", "echo.pl"),
        ("python3", "python/echo.py", "echo.py"),
        ("node", "node/echo.js", "echo.js"),
    ] {
        if have(program) {
            handlers.push((program, fixture.into(), file));
        }
    }
    let runs = handlers.iter().flat_map(|h| MODES.map(|mode| (h.clone(), mode)));
    for ((program, fixture, file), mode) in runs {
        let root = TaskRoot::new().copy(&fixture, file).mode(mode);
        let marker = root.file("pwned").display().to_string();
        let api = MockApi::start();
        let bootstrap = Bootstrap::start(&api, &root, "echo.handler");
        for (i, event) in hostile_events(&marker).into_iter().enumerate() {
            let id = format!("h{i}");
            api.push(Event::new(&id, event));
            let post = api.next_post();
            // Either answer is fine (a decode error is a clear error); running code is not.
            assert!(
                post.path.ends_with(&format!("/{id}/response"))
                    || post.path.ends_with(&format!("/{id}/error")),
                "{}",
                post.path
            );
            if post.path.ends_with("/error") {
                let body = post.json();
                assert!(
                    body["errorType"].is_string() && body["errorMessage"].is_string(),
                    "{program}: {body}"
                );
            }
        }
        api.push(Event::new("last", "{\"ok\":1}"));
        api.expect_post("/runtime/invocation/last/response");
        assert!(!root.file("pwned").exists(), "{program} {mode:?}: an event ran as code");
        let log = bootstrap.stop();
        assert!(!log.contains("panicked"), "{program} {mode:?}: {log}");
    }
}

#[test]
fn hostile_events_passed_as_an_argument_or_a_file_stay_data() {
    for placeholder in ["{event}", "{event_file}"] {
        let config = format!(
            "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"/bin/sh\", \"{{file}}\", \"{placeholder}\"]\n"
        );
        let root = TaskRoot::new()
            .write("interpreters.toml", &config)
            .write("h.x", "printf '%s' \"$1\" | wc -c\n");
        let marker = root.file("pwned").display().to_string();
        let api = MockApi::start();
        let _b = Bootstrap::start(&api, &root, "h.handler");
        for (i, event) in hostile_events(&marker).into_iter().enumerate() {
            let id = format!("h{i}");
            let has_nul = event.contains(&0);
            api.push(Event::new(&id, event));
            let post = api.next_post();
            if has_nul && placeholder == "{event}" {
                assert_error(&post, "Runtime.InvalidEvent", &["NUL"]);
            } else {
                assert!(
                    post.path.ends_with(&format!("/{id}/response")),
                    "{placeholder}: {} {}",
                    post.path,
                    post.body_text()
                );
            }
        }
        assert!(!root.file("pwned").exists(), "{placeholder}: an event ran as code");
    }
}
