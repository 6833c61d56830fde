# A shell handler: the event text is $1 and whatever the function prints is the response.
# Anything printed while this file is sourced goes to the log.

handler() {
    local event=$1
    echo "request $LAMBDA_RUNTIME_AWS_REQUEST_ID, ${#event} bytes" >&2
    printf '{"received":%s,"reply":"Thanks from bash"}' "$event"
}
