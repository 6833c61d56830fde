# runner.sh - shell runner for the `bootstrap` Lambda custom runtime (bash 4.1+).
#
# Usage: bash runner.sh FILE METHOD   (cwd = LAMBDA_TASK_ROOT)
# Sources FILE (its stdout goes to the log) and calls the shell function METHOD with
# the event text as "$1"; what the function writes to stdout is the response, status
# 0 means success. If FILE cannot be read (Runtime.ImportModuleError), does not pass
# `bash -n` (Runtime.UserCodeSyntaxError, with bash's message) or has no function METHOD
# (Runtime.HandlerNotFound), the runner reports {errorType, errorMessage, stackTrace} and
# exits 70. Shell limits: NUL bytes
# in the event are dropped, trailing newlines are stripped, and "$1" is too big to
# pass as one argument to external commands beyond 128 KiB (pipe it instead:
# printf '%s' "$1" | jq ...). Two protocols:
#
# Plain (one process per event): the event is stdin, the response goes to stdout. A
# non-zero status becomes the runner's exit status (70 is mapped to 1, since 70 is
# reserved for the runner's own structured errors); the load errors go to stdout.
#
# Framed (BOOTSTRAP_FRAMED=1; one warm process for many events): FILE is sourced once, then
# the runner serves the invocations bootstrap sends as frames on fds 3 and 4, as
# layers/PROTOCOL.md describes: it exports the per-event variables and calls METHOD in a
# subshell (so its `exit`, `cd` or variables stay in that invocation) with fds 3 and 4
# closed; its stdout is the answer, a non-zero status a Runtime.ExitError. stdout and stderr
# are both the log. Needs /proc, and GNU head for events over 4 KiB.
#
# Fork (BOOTSTRAP_FRAMED=1 and BOOTSTRAP_ISOLATION=fork): FILE is sourced once by a parent
# that never calls METHOD; for each `fork <n>` frame it starts a background subshell (job
# control on, so in a process group of its own, with default signal dispositions) and reports
# it, and it reaps child n when a `reap <n>` frame asks. The child takes
# $BOOTSTRAP_FORK_DIR/<n>.in and <n>.out as fds 3 and 4, reseeds RANDOM, says ready and
# serves one invoke frame as framed mode does. Its $$ is still
# the parent's pid (use $BASHPID): the child's `kill` takes $$ as the child, and a signal sent
# to $$ from elsewhere (a program, a nested shell) is passed on to the event's child if it can
# be caught.

if (( $# != 2 )); then
    printf 'usage: runner.sh FILE METHOD\n' >&2
    exit 2
fi
__bootstrap_file=$1
__bootstrap_method=$2
__bootstrap_id=0    # the invocation being answered; 0 is the load

__bootstrap_fork_dir=
if [[ ${BOOTSTRAP_FRAMED-} == 1 ]]; then
    __bootstrap_framed=1
    if [[ ${BOOTSTRAP_ISOLATION-} == fork ]]; then
        __bootstrap_fork_dir=${BOOTSTRAP_FORK_DIR-}
        if [[ -z $__bootstrap_fork_dir ]]; then
            printf 'runner: BOOTSTRAP_ISOLATION=fork without BOOTSTRAP_FORK_DIR\n' >&2
            exit 1
        fi
    fi
    unset BOOTSTRAP_FRAMED BOOTSTRAP_ISOLATION BOOTSTRAP_FORK_DIR    # not for the handler's own commands
else
    __bootstrap_framed=
    # The whole event at once (a builtin read, fast even for 6 MB).
    __bootstrap_event=$(</dev/stdin)
    # Keep the original stdout (on a free fd >= 10) for the response; stdout is the log.
    exec {__bootstrap_response}>&1 1>&2
fi

# Sets the variable VAR to TEXT as a JSON string.
__bootstrap_json_string() {
    local s=$2
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    s=${s//[$'\001'-$'\037']/}
    printf -v "$1" '"%s"' "$s"
}

# Logs an error and sets __bootstrap_error to its JSON document.
__bootstrap_diagnose() {
    local type message
    __bootstrap_json_string type "$1"
    __bootstrap_json_string message "$2"
    printf 'ERROR [%s] %s\n' "$1" "$2" >&2
    printf -v __bootstrap_error '{"errorType":%s,"errorMessage":%s,"stackTrace":[]}' \
        "$type" "$message"
}

# Writes a frame to bootstrap: VERB, the invocation id, the byte length of TEXT, TEXT.
__bootstrap_send() {
    local LC_ALL=C    # ${#2} counts bytes, not characters
    printf '%s %s %d\n%s' "$1" "$__bootstrap_id" "${#2}" "$2" >&4
}

# Reports an error that ends the runner: on the protocol's response channel, then exit 70.
__bootstrap_fail() {
    __bootstrap_diagnose "$1" "$2"
    if [[ -n $__bootstrap_framed ]]; then
        __bootstrap_send error "$__bootstrap_error"
    else
        printf '%s' "$__bootstrap_error" >&"$__bootstrap_response"
    fi
    exit 70
}

if [[ ! -f $__bootstrap_file || ! -r $__bootstrap_file ]]; then
    __bootstrap_fail Runtime.ImportModuleError "Cannot read handler file $__bootstrap_file"
fi

# A file that does not parse runs up to its error when sourced, and its function may then be
# missing: bash's own check (`bash -n`, with extglob on so that a file which turns it on itself
# before using its patterns passes) tells a syntax error, in bash's words. A framed worker
# checks before sourcing, once per worker; a plain process checks only when sourcing failed,
# so that a good file costs nothing more per event.
__bootstrap_check_syntax() {
    local syntax
    if [[ -n $__bootstrap_framed ]]; then
        syntax=$("${BASH:-bash}" -O extglob -n -- "$__bootstrap_file" 2>&1 3<&- 4>&-)
    else
        syntax=$("${BASH:-bash}" -O extglob -n -- "$__bootstrap_file" 2>&1 {__bootstrap_response}>&-)
    fi
    if (( $? != 0 )); then
        __bootstrap_fail Runtime.UserCodeSyntaxError "${syntax:-bash -n failed on $__bootstrap_file}"
    fi
    [[ -n $syntax ]] && printf '%s\n' "$syntax" >&2    # bash's warnings
}

# Source the handler file (at top level, so that its `declare`s stay global) without
# giving it the runner's own channels.
if [[ -n $__bootstrap_framed ]]; then
    __bootstrap_check_syntax
    source "$__bootstrap_file" 3<&- 4>&-
else
    source "$__bootstrap_file" {__bootstrap_response}>&- || __bootstrap_check_syntax
fi

if ! declare -F -- "$__bootstrap_method" >/dev/null; then
    __bootstrap_fail Runtime.HandlerNotFound \
        "Handler '$__bootstrap_method' is not a shell function defined in $__bootstrap_file"
fi

# Calls the handler with the event as "$1" and returns its status. The call runs in a
# subshell while `set -e` is off in the runner, so a status is always reported back
# here, and `set -e` is switched back on inside when the handler file had turned it on.
__bootstrap_errexit=
[[ $- == *e* ]] && __bootstrap_errexit=1
set +e
__bootstrap_call() {
    (
        [[ -n $__bootstrap_errexit ]] && set -e
        "$__bootstrap_method" "$__bootstrap_event"
    )
}

if [[ -z $__bootstrap_framed ]]; then
    # Call the handler with stdout on the response channel.
    __bootstrap_call >&"$__bootstrap_response" {__bootstrap_response}>&-
    __bootstrap_status=$?
    (( __bootstrap_status == 70 )) && __bootstrap_status=1
    exit "$__bootstrap_status"
fi

# --- The framed protocol ----------------------------------------------------------------
# Bash cannot mark fds 3 and 4 close-on-exec: the handler runs with them closed instead.

# Ends the runner on a broken frame from bootstrap (or when it cannot even start).
__bootstrap_bad_input() {
    printf 'runner: %s\n' "$1" >&2
    exit 1
}

# Reads SIZE bytes of fd 3 into the variable VAR with the builtin `read`. It reads a pipe
# one byte per system call, so it is only for small sizes. NUL bytes are dropped.
__bootstrap_read_bytes() {
    local LC_ALL=C left=$2 data= chunk    # `read -n` counts bytes, not characters
    while (( left > 0 )); do
        IFS= read -r -d '' -n "$left" -u 3 chunk || __bootstrap_bad_input "end of file inside a frame"
        data+=$chunk
        left=$(( left - ${#chunk} - (${#chunk} < left) ))    # a short chunk ended at a NUL byte
    done
    printf -v "$1" '%s' "$data"
}

# Reads the SIZE bytes of an event into __bootstrap_event as plain mode reads stdin: NUL
# bytes dropped, trailing newlines stripped. Small events are read by the shell itself;
# over 4 KiB, one `head` is faster (GNU head -c reads no more than it is asked for).
__bootstrap_read_event() {
    if (( $1 > 4096 )); then
        __bootstrap_event=$(command head -c "$1" <&3)
    else
        local LC_ALL=C
        __bootstrap_read_bytes __bootstrap_event "$1"
        __bootstrap_event=${__bootstrap_event%"${__bootstrap_event##*[!$'\n']}"}
    fi
}

# Exports each variable the invocation context names, or unsets it when it is null. The
# context is bootstrap's compact JSON object of "NAME":null and "NAME":"..." (JSON-escaped),
# so a regular expression takes one pair at a time (a quicker one first, for a value without
# escapes) and `printf %b` unescapes a value once \" and \/ are taken care of.
__bootstrap_context_env() {
    local rest=$__bootstrap_context name value
    local plain='^[{,]"([A-Za-z_][A-Za-z0-9_]*)":(null|"([^"\\]*)")'
    local escaped='^[{,]"([A-Za-z_][A-Za-z0-9_]*)":(null|"(([^"\\]|\\.)*)")'
    while [[ $rest =~ $plain ]] || [[ $rest =~ $escaped ]]; do
        name=${BASH_REMATCH[1]}
        value=${BASH_REMATCH[3]}
        rest=${rest:${#BASH_REMATCH[0]}}
        if [[ ${BASH_REMATCH[2]} == null ]]; then
            unset "$name"
            continue
        fi
        if [[ $value == *\\* ]]; then
            value=${value//\\\"/\"}
            value=${value//\\\//\/}
            printf -v value '%b' "$value"
        fi
        export "$name=$value"
    done
    [[ $rest == '}' ]] || __bootstrap_bad_input "the invocation context is not a flat JSON object"
}

# Sends the handler's stdout (the file behind fd $__bootstrap_out) as an ok frame, byte
# for byte: up to 64 KiB without a NUL byte read by the shell itself, else by wc and cat.
__bootstrap_send_output() {
    local LC_ALL=C output file=/proc/$BASHPID/fd/$__bootstrap_out
    if ! IFS= read -r -d '' -n 65536 output <"$file"; then
        __bootstrap_send ok "$output"
    else
        { printf 'ok %s %d\n' "$__bootstrap_id" "$(command wc -c <"$file")"; command cat <"$file"; } >&4
    fi
}

# The handler's stdout goes to a file that is already deleted (so nothing is left behind,
# whatever happens to the runner), rewritten for each event through /proc.
__bootstrap_tmp=$(command mktemp) || __bootstrap_bad_input "cannot create a temporary file"
exec {__bootstrap_out}<>"$__bootstrap_tmp"
command rm -f -- "$__bootstrap_tmp"

# Answers the invoke frame whose header line (without its newline) is __bootstrap_header.
__bootstrap_serve() {
    (( ${#__bootstrap_header} < 64 )) || __bootstrap_bad_input "a frame header line over 64 bytes"
    [[ $__bootstrap_header =~ ^invoke\ ([0-9]+)\ ([0-9]+)\ ([0-9]+)$ ]] ||
        __bootstrap_bad_input "malformed frame header"
    __bootstrap_id=${BASH_REMATCH[1]}
    __bootstrap_elen=${BASH_REMATCH[3]}
    __bootstrap_read_bytes __bootstrap_context $((10#${BASH_REMATCH[2]}))    # 10#: never octal
    __bootstrap_read_event $((10#$__bootstrap_elen))
    __bootstrap_context_env

    __bootstrap_call >|"/proc/$BASHPID/fd/$__bootstrap_out" {__bootstrap_out}<&- 3<&- 4>&-
    __bootstrap_status=$?
    if (( __bootstrap_status == 0 )); then
        __bootstrap_send_output
    else
        __bootstrap_diagnose Runtime.ExitError "handler returned status $__bootstrap_status"
        __bootstrap_send error "$__bootstrap_error"
    fi
}

# `kill` in a fork mode child: an operand that is `$$`, the parent's pid, names the child
# instead, so that a handler's `kill -STOP $$` or `kill -9 $$` ends its own event, at once, as
# in every other mode, and never reaches the parent (which passes on only the signals it can
# catch, and only after the child may have answered). Operands start at `--` or at the first
# argument that is not an option; `-s` and `-n` take the next argument as a signal.
__bootstrap_kill() {
    local arg args=() operands= signal_next=
    for arg; do
        if [[ -n $signal_next ]]; then
            signal_next=
        elif [[ -n $operands || $arg != -* ]]; then
            operands=1
            [[ $arg == "$$" ]] && arg=$__bootstrap_self
        elif [[ $arg == -[sn] ]]; then
            signal_next=1
        elif [[ $arg == -- ]]; then
            operands=1
        fi
        args+=("$arg")
    done
    builtin kill "${args[@]}"
}

# A fork mode child (a background subshell): its own fds 3 and 4, a fresh RANDOM, `kill` that
# takes `$$` as the child (unless the handler's file defined a `kill` of its own), then one
# invoke frame. Job control is off again in here, so what the handler starts stays in its group.
__bootstrap_child() {
    set +m
    __bootstrap_self=$BASHPID
    declare -F kill >/dev/null || kill() { __bootstrap_kill "$@"; }
    exec 3<&- 4>&-
    exec 3<"$__bootstrap_fork_dir/$__bootstrap_n.in" 4>"$__bootstrap_fork_dir/$__bootstrap_n.out" ||
        __bootstrap_bad_input "cannot open the fifos of child $__bootstrap_n"
    # From getrandom (SRANDOM, bash 5.1+), else from the pid and the time, without a process.
    if (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501 )); then
        RANDOM=$SRANDOM
    else
        __bootstrap_now=${EPOCHREALTIME-$SECONDS}
        RANDOM=$(( BASHPID * 1000003 ^ 10#0${__bootstrap_now//[!0-9]/} ))
    fi
    printf 'ready\n' >&4
    IFS= read -r -u 3 -n 64 -d $'\n' __bootstrap_header || exit 0    # end of file: nothing to serve
    __bootstrap_serve
    exit 0
}

printf 'ready\n' >&4

# A header line is at most 64 bytes with its newline: `read -N 64` would cut a longer one, so
# a line that did not end within them is refused.
if [[ -z $__bootstrap_fork_dir ]]; then
    while IFS= read -r -u 3 -n 64 -d $'\n' __bootstrap_header; do
        __bootstrap_serve
    done
    exit 0    # end of file: bootstrap retires this worker
fi

# Fork mode's parent: a child for each `fork <n>` frame, not waited for (bootstrap asks for
# the next event's child while the current one runs), and child n reaped when `reap <n>` asks.
# `wait -f` (bash 5.1+) waits for the child to end, not only to stop, but then reports the
# stop: the second `wait` gives the status it ended with. Both are quiet, not to log "Killed"
# when bootstrap kills a child.
__bootstrap_wait_f=
(( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501 )) && __bootstrap_wait_f=-f
set -m    # each background job in a process group of its own
declare -A __bootstrap_children=()    # n -> pid, until reaped
# `$$` in a child is still the parent's pid: a handler that signals "itself" with `kill $$`
# signals the parent, which passes the signal on to the child serving the event (the oldest
# one not reaped; the other is the next event's, idle), so that it ends that event as it would
# end a process of its own. (A trap is reset in the child.)
__bootstrap_trapped=
__bootstrap_forward() {
    local n serving=
    __bootstrap_trapped=1
    for n in "${!__bootstrap_children[@]}"; do
        [[ -z $serving ]] || (( n < serving )) && serving=$n
    done
    [[ -n $serving ]] && builtin kill -s "$1" "${__bootstrap_children[$serving]}" 2>/dev/null
}
for __bootstrap_signal in HUP INT QUIT ABRT SEGV TERM USR1 USR2 ALRM; do
    # shellcheck disable=SC2064 # the signal's name, now
    trap "__bootstrap_forward $__bootstrap_signal" "$__bootstrap_signal"
done
while :; do
    __bootstrap_trapped=
    if ! IFS= read -r -u 3 -n 64 -d $'\n' __bootstrap_header; then
        [[ -n $__bootstrap_trapped ]] && continue    # a signal passed on, not the end of fd 3
        exit 0    # end of file: bootstrap retires this worker
    fi
    (( ${#__bootstrap_header} < 64 )) || __bootstrap_bad_input "a frame header line over 64 bytes"
    [[ $__bootstrap_header =~ ^(fork|reap)\ ([1-9][0-9]*)$ ]] || __bootstrap_bad_input "malformed frame header"
    __bootstrap_n=${BASH_REMATCH[2]}
    if [[ ${BASH_REMATCH[1]} == fork ]]; then
        __bootstrap_child &
        __bootstrap_children[$__bootstrap_n]=$!
        printf 'child %s %s\n' "$__bootstrap_n" "$!" >&4 || exit 1
        continue
    fi
    __bootstrap_pid=${__bootstrap_children[$__bootstrap_n]-}
    [[ -n $__bootstrap_pid ]] || __bootstrap_bad_input "reap of child $__bootstrap_n, which is not one of ours"
    # A trapped signal ends a `wait` early, with the child still running: wait again.
    while wait $__bootstrap_wait_f "$__bootstrap_pid" 2>/dev/null; [[ -n $__bootstrap_trapped ]]; do
        __bootstrap_trapped=
    done
    wait "$__bootstrap_pid" 2>/dev/null
    __bootstrap_status=$?
    unset '__bootstrap_children[$__bootstrap_n]'
    if (( __bootstrap_status > 128 )); then    # the child itself exits 0 or 1 only
        printf 'signal %s %d\n' "$__bootstrap_n" $(( __bootstrap_status - 128 )) >&4 || exit 1
    else
        printf 'exit %s %d\n' "$__bootstrap_n" "$__bootstrap_status" >&4 || exit 1
    fi
done
