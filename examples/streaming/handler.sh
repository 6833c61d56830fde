# A streaming handler: run it with BOOTSTRAP_RESPONSE_MODE=streaming (and, for a function URL,
# BOOTSTRAP_RESPONSE_CONTENT_TYPE=application/vnd.awslambda.http-integration-response).
# Each line reaches the caller as it is printed, not when the function returns. The first
# thing written is the HTTP-integration prelude: JSON, then 8 NUL bytes, then the body.

handler() {
    printf '{"statusCode":200,"headers":{"content-type":"text/plain"}}'
    printf '\0\0\0\0\0\0\0\0'
    for i in 1 2 3 4 5; do
        echo "line $i of 5"
        sleep 1
    done
}
