# Prints the event unchanged: used for the 5 MB round trip.
handler() {
    printf '%s' "$1"
}
