# Per-event wrapper of the old shell bootstrap: copied to /tmp for every event, with the
# handler's file and sub name filled in by sed; the event is the first argument.
use strict;
use warnings;

require "$ENV{LAMBDA_TASK_ROOT}/HANDLER_FILE.pl";
my $event = $ARGV[0];
print HANDLER_METHOD($event);
