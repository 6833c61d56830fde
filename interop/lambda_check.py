#!/usr/bin/env python3
"""The Python half of interop/run: bounded waits, and one invoke checked against what it expects.

    lambda_check.py free-port
        print a TCP port on 127.0.0.1 that is free right now
    lambda_check.py wait-port PORT SECONDS PID
        exit 0 once 127.0.0.1:PORT accepts connections; exit 1 after SECONDS, or as soon as
        process PID (the server that should open the port) has exited
    lambda_check.py wait-exit PID SECONDS
        exit 0 once process PID has exited (gone, or a zombie waiting for its parent); 1 after SECONDS
    lambda_check.py invoke CASE PORT FUNCTION PID SECONDS
        send CASE's event to the emulator's Invoke API for FUNCTION and check the answer;
        exit 0 if it is what CASE expects, else print why and exit 1. Gives up after SECONDS,
        or as soon as process PID (the bootstrap that should answer) has exited.

Every wait polls a condition against a deadline; nothing waits for a fixed time.
"""

import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

POLL_INTERVAL = 0.02  # seconds between two looks at a condition

# The events, and what the answer to each must be. A checker gets the HTTP status and the body
# of the Invoke API's answer and returns a list of problems (empty when all is well).

PERL_EVENT = {"request": "Hey perl lambda!!"}
PYTHON_EVENT = {"request": "Hey python lambda!!"}
# Nested values, a float, null, non-ASCII text and a quote: the shell handler pastes the event
# text into its answer, so any change to the bytes on the way in shows up here.
SHELL_EVENT = {
    "request": "Hey shell lambda!!",
    "nested": {"list": [1, 2.5, None, True], "quote": 'say "hi"'},
    "text": "caf\u00e9 \u2713",
}
ERROR_EVENT = {"request": "please fail"}


def decode_object(body):
    """The body as a JSON object, or a string saying why it is not one."""
    try:
        value = json.loads(body)
    except ValueError as e:
        return None, f"the body is not JSON ({e}): {body[:300]!r}"
    if not isinstance(value, dict):
        return None, f"the body is JSON but not an object: {body[:300]!r}"
    return value, None


def expect_fields(status, body, expected_status, fields):
    """Problems unless the answer has expected_status and a JSON object body with these fields."""
    problems = []
    if status != expected_status:
        problems.append(f"HTTP status {status}, expected {expected_status}")
    obj, error = decode_object(body)
    if error:
        return problems + [error]
    for key, want in fields.items():
        if key not in obj:
            problems.append(f"no {key!r} in the answer")
        elif obj[key] != want:
            problems.append(f"{key!r} is {obj[key]!r}, expected {want!r}")
    return problems


def check_perl_seed(status, body):
    return expect_fields(status, body, 200, {
        "request": PERL_EVENT["request"],
        "reply": "Thanks AWS custom lambda runtime!!",
    })


def check_python(status, body):
    return expect_fields(status, body, 200, {
        "request": PYTHON_EVENT["request"],
        "reply": "Thanks from Python",
    })


def check_shell(status, body):
    return expect_fields(status, body, 200, {"received": SHELL_EVENT})


def check_python_error(status, body):
    # The emulator answers a failed invoke with HTTP 500 and the document bootstrap posted to
    # /error as the body (Lambda would answer 200 with X-Amz-Function-Error). A 200 here means
    # the error went to /response instead.
    return expect_fields(status, body, 500, {
        "errorType": "ValueError",
        "errorMessage": "interop boom",
    })


CASES = {
    "perl-seed": (PERL_EVENT, check_perl_seed),
    "python": (PYTHON_EVENT, check_python),
    "shell": (SHELL_EVENT, check_shell),
    "python-error": (ERROR_EVENT, check_python_error),
}


def running(pid):
    """True while process pid exists and has not exited (a zombie counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    # The state is the first field after the parenthesised command name.
    return stat[stat.rindex(")") + 2] != "Z"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
    return 0


def wait_port(port, seconds, pid):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not running(pid):
            print(f"process {pid} exited before 127.0.0.1:{port} accepted connections")
            return 1
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return 0
        except OSError:
            time.sleep(POLL_INTERVAL)
    print(f"127.0.0.1:{port} accepted no connection within {seconds:g} s")
    return 1


def wait_exit(pid, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not running(pid):
            return 0
        time.sleep(POLL_INTERVAL)
    return 1


def post(url, data, seconds, result):
    """POST data to url; store (status, body text) or the exception in result."""
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=seconds) as response:
            result["answer"] = (response.status, response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as e:
        result["answer"] = (e.code, e.read().decode("utf-8", "replace"))
    except Exception as e:  # reported as the reason the check failed
        result["error"] = e


def invoke(case, port, function, pid, seconds):
    event, check = CASES[case]
    url = f"http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations"
    result = {}
    sender = threading.Thread(
        target=post, args=(url, json.dumps(event).encode(), seconds, result), daemon=True)
    sender.start()
    deadline = time.monotonic() + seconds
    while sender.is_alive() and time.monotonic() < deadline:
        if not running(pid):
            # Let an answer already on its way arrive before declaring the runtime dead.
            sender.join(1)
            if sender.is_alive():
                print(f"bootstrap (pid {pid}) exited before the invoke was answered")
                return 1
        sender.join(POLL_INTERVAL)
    if sender.is_alive():
        print(f"no answer to the invoke within {seconds:g} s")
        return 1
    if "error" in result:
        print(f"the invoke failed: {result['error']!r}")
        return 1
    status, body = result["answer"]
    problems = check(status, body)
    for problem in problems:
        print(problem)
    if problems:
        print(f"full answer: HTTP {status}: {body[:1000]}")
    return 1 if problems else 0


def main(argv):
    command, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    if command == "free-port" and not args:
        return free_port()
    if command == "wait-port" and len(args) == 3:
        return wait_port(int(args[0]), float(args[1]), int(args[2]))
    if command == "wait-exit" and len(args) == 2:
        return wait_exit(int(args[0]), float(args[1]))
    if command == "invoke" and len(args) == 5 and args[0] in CASES:
        return invoke(args[0], int(args[1]), args[2], int(args[3]), float(args[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
