use strict; use warnings; use JSON;
sub handler { my $event = $_[0]; my $r = decode_json($event);
  $r->{'reply'} = "Thanks AWS custom lambda runtime!!"; return encode_json($r) }
1;
