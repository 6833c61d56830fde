//! `isolation = "fork"` (issue 12): the runner loads the handler once, and every event runs in
//! a child forked from it: init once, nothing passed from one event to the next, a child's
//! crash or timeout never costs the loaded parent, what a child started is gone before the
//! next event.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::*;
use crate::watch::wait_gone;

/// The probe handler of each forking language. Module-level code appends a line to
/// `init.count` and draws a random number; each event counts itself in a module-level
/// counter, sets an environment variable, changes directory, and answers
/// `<pid> <parent pid> <events seen by this process> <LEAKED before> <cwd before> <init draw>
/// <event draw>`. `{"do": ...}` makes it exit 3, kill itself, hang, or start a daemon in a
/// session of its own and answer its pid.
const PROBES: [(&str, &str, &str); 4] = [
    (
        "python3",
        "probe.py",
        "import os, random, subprocess, time\n\
         with open('init.count', 'a') as f:\n    f.write('x\\n')\n\
         STATE = {'events': 0}\n\
         INIT_DRAW = random.random()\n\
         def handler(event, context):\n    \
             do = event.get('do') if isinstance(event, dict) else None\n    \
             if do == 'exit':\n        os._exit(3)\n    \
             if do == 'kill':\n        os.kill(os.getpid(), 9)\n    \
             if do == 'hang':\n        time.sleep(60)\n    \
             if do == 'spawn':\n        \
                 return str(subprocess.Popen(['sleep', '1000'], start_new_session=True).pid)\n    \
             STATE['events'] += 1\n    \
             seen, cwd = os.environ.get('LEAKED', '-'), os.getcwd()\n    \
             os.environ['LEAKED'] = 'yes'\n    \
             os.chdir('/')\n    \
             return '%d %d %d %s %s %r %r' % (os.getpid(), os.getppid(), STATE['events'], seen, \
             cwd, INIT_DRAW, random.random())\n",
    ),
    (
        "perl",
        "probe.pl",
        "use strict;\nuse Cwd ();\nuse POSIX ();\n\
         open(my $f, '>>', 'init.count') or die $!; print $f \"x\\n\"; close $f;\n\
         our $events = 0;\nmy $init_draw = rand();\n\
         sub handler {\n    my ($e) = @_;\n    \
             POSIX::_exit(3) if $e =~ /\"do\":\"exit\"/;\n    \
             kill 9, $$ if $e =~ /\"do\":\"kill\"/;\n    \
             sleep 60 if $e =~ /\"do\":\"hang\"/;\n    \
             if ($e =~ /\"do\":\"spawn\"/) {\n        my $pid = fork();\n        \
                 if ($pid == 0) { POSIX::setsid(); open(STDOUT, '>', '/dev/null'); exec('sleep', '1000'); POSIX::_exit(1) }\n        \
                 return \"$pid\";\n    }\n    \
             $events++;\n    my ($seen, $cwd) = ($ENV{LEAKED} // '-', Cwd::getcwd());\n    \
             $ENV{LEAKED} = 'yes';\n    chdir '/';\n    \
             return join ' ', $$, getppid(), $events, $seen, $cwd, $init_draw, rand();\n}\n1;\n",
    ),
    (
        "ruby",
        "probe.rb",
        "File.open('init.count', 'a') { |f| f.puts 'x' }\n\
         $events = 0\nINIT_DRAW = rand\n\
         def handler(event:, context:)\n  \
           case event.is_a?(Hash) && event['do']\n  \
           when 'exit' then exit!(3)\n  \
           when 'kill' then Process.kill(9, Process.pid)\n  \
           when 'hang' then sleep 60\n  \
           when 'spawn' then return Process.spawn('setsid', 'sleep', '1000', out: File::NULL).to_s\n  \
           end\n  \
           $events += 1\n  seen, cwd = ENV['LEAKED'] || '-', Dir.pwd\n  \
           ENV['LEAKED'] = 'yes'\n  Dir.chdir('/')\n  \
           [Process.pid, Process.ppid, $events, seen, cwd, INIT_DRAW, rand].join(' ')\n\
         end\n",
    ),
    (
        // bash runs the function in a subshell of the forked child: the probe names that child
        // (its parent) and the loaded runner (its grandparent).
        "bash",
        "probe.sh",
        "echo x >> init.count\nevents=0\ninit_draw=$RANDOM$RANDOM\n\
         parent_of() { local stat; read -r stat < /proc/$1/stat; stat=${stat##*) }; set -- $stat; echo $2; }\n\
         handler() {\n  \
           case $1 in\n    \
             *'\"do\":\"exit\"'*) exit 3 ;;\n    \
             *'\"do\":\"kill\"'*) kill -9 $BASHPID ;;\n    \
             *'\"do\":\"hang\"'*) sleep 60 ;;\n    \
             *'\"do\":\"spawn\"'*) setsid sleep 1000 >/dev/null 2>&1 & printf '%s' $!; return ;;\n  \
           esac\n  \
           events=$((events + 1))\n  local seen=${LEAKED:--} cwd=$PWD\n  \
           export LEAKED=yes\n  cd /\n  \
           local me=$BASHPID child; child=$(parent_of $me)\n  \
           printf '%s %s %s %s %s %s %s' $child $(parent_of $child) $events $seen $cwd $init_draw $RANDOM$RANDOM\n\
         }\n",
    ),
];

/// The config that forks every language's runner.
fn forking() -> String {
    Mode::Fork.config()
}

/// The answer as text: a JSON string's contents, or the bytes as they are.
fn text(post: &Post) -> String {
    let body = post.body_text();
    serde_json::from_str::<String>(&body).unwrap_or(body)
}

/// One probe answer, split into its fields.
#[derive(Debug)]
struct Probe {
    pid: u32,
    parent: u32,
    events: u32,
    leaked: String,
    cwd: String,
    init_draw: String,
    draw: String,
}

#[track_caller]
fn probe(post: &Post, what: &str) -> Probe {
    assert!(post.path.ends_with("/response"), "{what}: {} {}", post.path, post.body_text());
    let text = text(post);
    let f: Vec<&str> = text.split(' ').collect();
    assert_eq!(f.len(), 7, "{what}: {text:?}");
    Probe {
        pid: f[0].parse().unwrap(),
        parent: f[1].parse().unwrap(),
        events: f[2].parse().unwrap(),
        leaked: f[3].to_string(),
        cwd: f[4].to_string(),
        init_draw: f[5].to_string(),
        draw: f[6].to_string(),
    }
}

fn init_count(root: &Path) -> usize {
    fs::read_to_string(root.join("init.count")).unwrap_or_default().lines().count()
}

#[test]
fn init_runs_once_and_nothing_passes_from_one_event_to_the_next() {
    for (program, file, code) in PROBES {
        if !have(program) {
            continue;
        }
        let run = Lambda::new().config(&forking()).write(file, code).start("probe.handler");
        let probes: Vec<Probe> = (1..=6)
            .map(|n| probe(&run.response_to(Event::new(&format!("e{n}"), "{}")), program))
            .collect();
        assert_eq!(init_count(run.root()), 1, "{program}: init ran more than once");
        let root = fs::canonicalize(run.root()).unwrap();
        for p in &probes {
            assert_eq!(p.events, 1, "{program}: a module-level counter passed on: {p:?}");
            assert_eq!(p.leaked, "-", "{program}: an environment variable passed on: {p:?}");
            assert_eq!(Path::new(&p.cwd), root, "{program}: a cwd change passed on: {p:?}");
            assert_eq!(p.parent, probes[0].parent, "{program}: one parent for all: {probes:?}");
            assert_eq!(p.init_draw, probes[0].init_draw, "{program}: init's draw is shared");
        }
        let pids: std::collections::BTreeSet<u32> = probes.iter().map(|p| p.pid).collect();
        assert_eq!(pids.len(), probes.len(), "{program}: a process per event: {probes:?}");
        let draws: std::collections::BTreeSet<&str> =
            probes.iter().map(|p| p.draw.as_str()).collect();
        assert_eq!(draws.len(), probes.len(), "{program}: children drew alike: {probes:?}");
        assert_no_panic(&run.stop());
    }
}

#[test]
fn a_child_that_crashes_exits_or_times_out_never_costs_the_loaded_parent() {
    for (program, file, code) in PROBES {
        if !have(program) {
            continue;
        }
        let run = Lambda::new().config(&forking()).write(file, code).start("probe.handler");
        let first = probe(&run.response_to(Event::new("ok1", "{}")), program);
        assert_error(
            &run.error_for(Event::new("exit", r#"{"do":"exit"}"#)),
            "Runtime.ExitError",
            &["3"],
        );
        // bash's function runs in a subshell of the child, whose death is its status.
        let killed = if program == "bash" { "status 137" } else { "SIGKILL" };
        assert_error(
            &run.error_for(Event::new("kill", r#"{"do":"kill"}"#)),
            "Runtime.ExitError",
            &[killed],
        );
        let hang = Event::new("hang", r#"{"do":"hang"}"#).deadline_in(Duration::from_millis(700));
        assert_error(&run.error_for(hang), "Runtime.Timeout", &[]);
        let last = probe(&run.response_to(Event::new("ok2", "{}")), program);
        assert_eq!(last.parent, first.parent, "{program}: the parent was replaced");
        assert_eq!(init_count(run.root()), 1, "{program}: init ran again");
        assert_no_panic(&run.stop());
    }
}

#[test]
fn what_a_child_started_is_gone_before_the_next_event() {
    // A daemon in a session of its own is found by parentage, through the warden.
    if emulated("the warden's PR_SET_CHILD_SUBREAPER") {
        return;
    }
    for (program, file, code) in PROBES {
        if !have(program) {
            continue;
        }
        let run = Lambda::new().config(&forking()).write(file, code).start("probe.handler");
        let daemon: u32 = text(&run.response_to(Event::new("spawn", r#"{"do":"spawn"}"#)))
            .trim()
            .parse()
            .unwrap();
        probe(&run.response_to(Event::new("next", "{}")), program);
        assert!(
            !Path::new(&format!("/proc/{daemon}")).exists()
                || fs::read_to_string(format!("/proc/{daemon}/stat")).unwrap().contains(") Z"),
            "{program}: the daemon {daemon} a child started outlived its event"
        );
        assert_no_panic(&run.stop());
    }
}

#[test]
fn node_cannot_fork_and_says_so_at_init() {
    let mut run = Lambda::new()
        .config("[interpreters.node]\nisolation = \"fork\"\n")
        .write("h.js", "exports.handler = async () => 1;\n")
        .start("h.handler");
    let post = run.expect_init_error();
    assert_error(&post, "Runtime.InvalidConfig", &["Node cannot fork", "events_per_process"]);
}

#[test]
fn a_node_runner_under_a_name_of_its_own_refuses_to_fork_too() {
    if !have("node") {
        return;
    }
    let entry = "[interpreters.mynode]\nextensions = [\"js\"]\n\
                 command = [\"node\", \"{runners}/node/runner.js\", \"{file}\", \"{method}\"]\n\
                 isolation = \"fork\"\n";
    let mut run = Lambda::new()
        .config(entry)
        .write("h.js", "exports.handler = async () => 1;\n")
        .start("h.handler");
    let post = run.expect_init_error();
    assert_error(&post, "Runtime.InvalidConfig", &["Node cannot fork"]);
}

/// A Python handler that meets the other invocation at the named pipe `gate` (the event says
/// which end it opens; opening one end waits for the other), then answers its TMPDIR, pid
/// and parent.
const MEET: &str = "import os\n\ndef handler(event, context):\n    \
                    open(os.path.join(os.environ['LAMBDA_TASK_ROOT'], 'gate'), event['end']).close()\n    \
                    return '%s %d %d' % (os.environ['TMPDIR'], os.getpid(), os.getppid())\n";

#[test]
fn concurrent_invocations_each_run_in_a_child_of_their_own_with_their_own_tmpdir() {
    if !have("python3") {
        return;
    }
    let run = Lambda::new()
        .config(&forking())
        .write("meet.py", MEET)
        .fifo("gate")
        .env("AWS_LAMBDA_MAX_CONCURRENCY", "2")
        .start("meet.handler");
    run.api.wait_for_polls(2);
    // Neither event can be answered until both run at once.
    run.api.push(Event::new("a", r#"{"end": "r"}"#));
    run.api.push(Event::new("b", r#"{"end": "w"}"#));
    let answers: Vec<Vec<String>> = (0..2)
        .map(|_| {
            let post = run.api.next_post();
            assert!(post.path.ends_with("/response"), "{}: {}", post.path, post.body_text());
            text(&post).split(' ').map(str::to_string).collect()
        })
        .collect();
    assert_ne!(answers[0][0], answers[1][0], "one TMPDIR each: {answers:?}");
    assert_ne!(answers[0][1], answers[1][1], "one child each: {answers:?}");
    for answer in &answers {
        assert!(answer[0].contains("bootstrap-tmp-"), "{answer:?}");
    }
}

#[test]
fn a_five_megabyte_response_comes_back_whole_from_a_child() {
    if !have("python3") {
        return;
    }
    let code = "def handler(event, context):\n    return 'x' * (5 * 1024 * 1024)\n";
    let run = Lambda::new().config(&forking()).write("big.py", code).start("big.handler");
    for n in 0..2 {
        let post = run.response_to(Event::new(&format!("big{n}"), "{}"));
        assert_eq!(text(&post).len(), 5 * 1024 * 1024);
    }
}

/// A child that writes what is not a frame on its fd 4 breaks the protocol: its event fails
/// with `Runtime.InvalidFrame`, the loaded parent stays, the next event is served.
#[test]
fn a_child_that_breaks_the_protocol_is_replaced_and_the_parent_kept() {
    if !have("python3") {
        return;
    }
    let code = "import os\n\
                with open('init.count', 'a') as f:\n    f.write('x\\n')\n\
                def handler(event, context):\n    \
                    if event.get('garble'):\n        os.write(4, b'garbage\\n')\n    \
                    return os.getppid()\n";
    let run = Lambda::new().config(&forking()).write("g.py", code).start("g.handler");
    let parent = text(&run.response_to(Event::new("ok1", "{}")));
    assert_error(
        &run.error_for(Event::new("bad", r#"{"garble": true}"#)),
        "Runtime.InvalidFrame",
        &[],
    );
    assert_eq!(text(&run.response_to(Event::new("ok2", "{}"))), parent);
    assert_eq!(init_count(run.root()), 1, "init ran again");
}

/// A parent that dies between events is replaced: the handler loads again (init runs a second
/// time) and the next event is served by a child of the new parent.
#[test]
fn a_parent_that_dies_is_replaced_and_the_next_event_served() {
    if !have("python3") {
        return;
    }
    let code = "import os\n\
                with open('init.count', 'a') as f:\n    f.write('x\\n')\n\
                def handler(event, context):\n    return os.getppid()\n";
    let run = Lambda::new().config(&forking()).write("p.py", code).start("p.handler");
    let parent: i32 = text(&run.response_to(Event::new("ok1", "{}"))).parse().unwrap();
    // Once bootstrap asks for the next event, that event's child is forked and connected.
    run.api.wait_for_polls(2);
    let killed = std::process::Command::new("kill").args(["-9", &parent.to_string()]).status();
    assert!(killed.unwrap().success());
    // `kill` returns once the signal is sent; the child is adopted only once the parent ends.
    wait_gone(parent as u32);
    // That child outlives its parent and serves the event it was forked for.
    let orphan: i32 = text(&run.response_to(Event::new("ok2", "{}"))).parse().unwrap();
    assert_ne!(orphan, parent, "it was adopted, by the warden");
    let next: i32 = text(&run.response_to(Event::new("ok3", "{}"))).parse().unwrap();
    assert_ne!(next, parent, "the dead parent forked again?");
    assert_eq!(init_count(run.root()), 2, "the new parent loads the handler once");
    assert_eq!(text(&run.response_to(Event::new("ok4", "{}"))), next.to_string());
}

/// In a forked bash child `$$` is still the loaded parent's pid, yet a handler that signals
/// `$$` must end its own event, at once, as in every other mode. `STOP` and `KILL` cannot be
/// caught and passed on: sent to the parent, they would stop and kill it while the child
/// went on to answer.
#[test]
fn a_bash_handler_that_stops_and_kills_dollar_dollar_ends_its_own_event_in_every_mode() {
    if !have("bash") {
        return;
    }
    let code = "handler() {\n    kill -STOP $$\n    kill -s KILL -- $$\n    printf fine\n}\n";
    for mode in ALL_MODES {
        let run = Lambda::new().mode(mode).write("k.sh", code).start("k.handler");
        for id in ["e1", "e2"] {
            let post = run.error_for(Event::new(id, "{}"));
            assert_error(&post, "Runtime.ExitError", &["SIGKILL"]);
        }
    }
}

/// A `kill` function the handler's file defines is its own, in a forked child too.
#[test]
fn a_bash_handlers_own_kill_function_is_left_alone_in_fork_mode() {
    if !have("bash") {
        return;
    }
    let code = "kill() { printf 'mine:%s' \"$*\"; }\nhandler() {\n    kill -9 $$\n}\n";
    let run = Lambda::new().mode(Mode::Fork).write("k.sh", code).start("k.handler");
    let body = run.response_to(Event::new("e1", "{}")).body_text();
    let pid = body.strip_prefix("mine:-9 ").expect("the handler's own kill ran");
    assert!(pid.parse::<u32>().is_ok(), "{body}");
}

#[test]
fn a_child_over_max_rss_mb_is_killed_and_the_parent_kept() {
    if !have("python3") {
        return;
    }
    let code = "import os\n\
                def handler(event, context):\n    \
                    if event.get('grow'):\n        \
                        hog = bytearray(300 * 1024 * 1024)\n        \
                        for i in range(0, len(hog), 4096):\n            hog[i] = 1\n        \
                        import time; time.sleep(30)\n    \
                    return os.getppid()\n";
    let config =
        forking().replace("[interpreters.python]\n", "[interpreters.python]\nmax_rss_mb = 100\n");
    let run = Lambda::new().config(&config).write("m.py", code).start("m.handler");
    let parent = text(&run.response_to(Event::new("ok1", "{}")));
    assert_error(
        &run.error_for(Event::new("grow", r#"{"grow": true}"#)),
        "Runtime.OutOfMemory",
        &["max_rss_mb = 100"],
    );
    assert_eq!(text(&run.response_to(Event::new("ok2", "{}"))), parent);
}

#[test]
fn a_handler_that_cannot_load_is_an_init_error_in_fork_mode_too() {
    if !have("python3") {
        return;
    }
    let mut run = Lambda::new()
        .config(&forking())
        .write(
            "broken.py",
            "raise ValueError('no config')\ndef handler(event, context):\n    return 1\n",
        )
        .start("broken.handler");
    assert_error(&run.expect_init_error(), "ValueError", &["no config"]);
}

#[test]
fn sigterm_stops_the_child_and_the_parent_answers_the_event_and_leaves_nothing() {
    if !have("python3") {
        return;
    }
    let code = "import os, subprocess, sys, time\n\
                def handler(event, context):\n    \
                    daemon = subprocess.Popen(['sleep', '1000'], start_new_session=True)\n    \
                    print('pids: child=%d parent=%d daemon=%d' % (os.getpid(), os.getppid(), daemon.pid), flush=True)\n    \
                    time.sleep(60)\n";
    let mut run = Lambda::new().config(&forking()).write("slow.py", code).start("slow.handler");
    run.api.push(Event::new("r1", "{}"));
    let log = run.wait_for_log("daemon=");
    let pid = |label: &str| -> u32 {
        let start = log.find(label).expect("label in log") + label.len();
        log[start..].split_whitespace().next().and_then(|p| p.parse().ok()).expect("a pid")
    };
    let pids = [pid("child="), pid("parent="), pid("daemon=")];
    // SAFETY: kill takes two integers; the pid is our running child.
    unsafe { libc::kill(run.pid() as libc::pid_t, libc::SIGTERM) };

    assert_error(
        &run.api.expect_post("/runtime/invocation/r1/error"),
        "Runtime.Shutdown",
        &["SIGTERM"],
    );
    assert_eq!(run.wait_exit().code(), Some(128 + libc::SIGTERM));
    for pid in pids {
        assert!(is_gone(pid), "process {pid} outlived bootstrap: {pids:?}");
    }
}

/// A handler that reaches the next event's child, idle beside it, through `/proc` and writes
/// answers into its result pipe (for its own invocation id and the next ones) never answers
/// for the next caller: ids are not to be guessed, and an idle child that has a frame is
/// replaced.
#[test]
fn a_child_that_writes_into_the_next_childs_pipe_never_answers_for_the_next_caller() {
    if !have("python3") {
        return;
    }
    let code = "import os, sys, time\n\
                def handler(event, context):\n    \
                    if not event.get('forge'):\n        return 'own %s' % context.aws_request_id\n    \
                    ids = [int(f.f_locals['invocation']) for f in map(sys._getframe, range(1, 6)) \
                    if 'invocation' in f.f_locals][:1] or [1]\n    \
                    me, parent = os.getpid(), os.getppid()\n    \
                    for _ in range(500):\n        \
                        with open('/proc/%d/task/%d/children' % (parent, parent)) as f:\n            \
                            siblings = [int(p) for p in f.read().split() if int(p) != me]\n        \
                        if siblings:\n            break\n        \
                        time.sleep(0.01)  # the next child is being forked\n    \
                    for sibling in siblings:\n        \
                        fd = os.open('/proc/%d/fd/4' % sibling, os.O_WRONLY)\n        \
                        for guess in range(ids[0], ids[0] + 50):\n            \
                            os.write(fd, b'ok %d 6\\nforged' % guess)\n        \
                        os.close(fd)\n    \
                    return 'forged %d' % len(siblings)\n";
    let run = Lambda::new().config(&forking()).write("f.py", code).start("f.handler");
    run.response_to(Event::new("first", "{}"));
    let forged = text(&run.response_to(Event::new("forger", r#"{"forge": true}"#)));
    assert_eq!(forged, "forged 1", "the next child was not there to attack");
    for n in 0..3 {
        let id = format!("victim{n}");
        let post = run.invoke(Event::new(&id, "{}"));
        if post.path.ends_with("/response") {
            assert_eq!(text(&post), format!("own {id}"), "another caller's answer");
        } else {
            assert_error(&post, "Runtime.InvalidFrame", &[]);
        }
    }
    assert_eq!(text(&run.response_to(Event::new("last", "{}"))), "own last");
}

/// Back to back, a parent gets the next child's `fork` and the last child's `reap` close
/// together, often in one read: whatever a runner read ahead of its own fd 3 must never reach
/// a child. Every one of 300 events is answered, by its own child.
#[test]
fn three_hundred_events_back_to_back_are_each_answered_by_a_child_of_their_own() {
    for (program, file, code) in PROBES {
        if !have(program) {
            continue;
        }
        let run = Lambda::new().config(&forking()).write(file, code).start("probe.handler");
        let mut pids = std::collections::BTreeSet::new();
        for n in 0..300 {
            let post = run.invoke(Event::new(&format!("e{n}"), "{}"));
            pids.insert(probe(&post, program).pid);
        }
        assert_eq!(pids.len(), 300, "{program}: a child served two events");
        assert_no_panic(&run.stop());
    }
}
