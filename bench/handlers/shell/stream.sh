# The streaming scenario: a first line at once, a second one 100 ms later. Streamed
# (BOOTSTRAP_RESPONSE_MODE=streaming), the first line can reach Lambda before the sleep ends.
handler() {
    echo 'first line'
    sleep 0.1
    echo 'second line'
}
