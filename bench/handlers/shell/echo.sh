# The benchmark's echo handler: the event text back with one field added, by plain string
# editing (drop the closing brace, append the field). Assumes a non-empty JSON object.
handler() {
    printf '%s,"echo":true}' "${1%\}}"
}
