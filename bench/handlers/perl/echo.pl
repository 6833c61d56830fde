# The benchmark's echo handler, in the seed convention: the event arrives as JSON text and
# comes back as JSON text with one field added.
use strict;
use warnings;
use JSON;

sub handler {
    my ($event) = @_;
    my $r = decode_json($event);
    $r->{echo} = JSON::true;
    return encode_json($r);
}

1;
