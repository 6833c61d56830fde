# runner.sh - shell runner for the `bootstrap` Lambda custom runtime (bash 4.1+).
#
# Usage: bash runner.sh FILE METHOD   (one process per event, cwd = LAMBDA_TASK_ROOT)
# Reads the event from stdin, sources FILE (its stdout goes to the log, stderr) and
# calls the shell function METHOD with the event text as "$1". What the function
# writes to stdout is the response; status 0 means success. A non-zero status
# becomes the runner's exit status (70 is mapped to 1, since 70 is reserved for the
# runner's own structured errors). If FILE cannot be read or METHOD is not a
# function, the runner writes {errorType, errorMessage, stackTrace} to the original
# stdout and exits 70. Shell limits: NUL bytes in the event are dropped, trailing
# newlines are stripped, and "$1" is too big to pass as one argument to external
# commands beyond 128 KiB (pipe it instead: printf '%s' "$1" | jq ...).

__bootstrap_file=$1
__bootstrap_method=$2

# The whole event at once (a builtin read, fast even for 6 MB).
__bootstrap_event=$(</dev/stdin)

# Keep the original stdout (on a free fd >= 10) for the response; stdout is the log.
exec {__bootstrap_response}>&1 1>&2

__bootstrap_json_string() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    s=${s//[$'\001'-$'\037']/}
    printf '"%s"' "$s"
}

__bootstrap_fail() {
    printf 'ERROR [%s] %s\n' "$1" "$2" >&2
    printf '{"errorType":%s,"errorMessage":%s,"stackTrace":[]}' \
        "$(__bootstrap_json_string "$1")" "$(__bootstrap_json_string "$2")" >&"$__bootstrap_response"
    exit 70
}

if [[ ! -f $__bootstrap_file || ! -r $__bootstrap_file ]]; then
    __bootstrap_fail Runtime.ImportModuleError "Cannot read handler file $__bootstrap_file"
fi

# Source the handler file without giving it the response channel.
source "$__bootstrap_file" {__bootstrap_response}>&-

if ! declare -F -- "$__bootstrap_method" >/dev/null; then
    __bootstrap_fail Runtime.HandlerNotFound \
        "Handler '$__bootstrap_method' is not a shell function defined in $__bootstrap_file"
fi

# Call the handler with stdout on the response channel. The call runs in a subshell
# while `set -e` is off in the runner, so a status is always reported back here,
# and `set -e` is switched back on inside when the handler file had turned it on.
__bootstrap_errexit=
[[ $- == *e* ]] && __bootstrap_errexit=1
set +e
(
    [[ -n $__bootstrap_errexit ]] && set -e
    "$__bootstrap_method" "$__bootstrap_event"
) >&"$__bootstrap_response" {__bootstrap_response}>&-
__bootstrap_status=$?

(( __bootstrap_status == 70 )) && __bootstrap_status=1
exit "$__bootstrap_status"
