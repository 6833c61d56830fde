# The benchmark's echo handler, in AWS's Ruby signature: the event (decoded from JSON) back
# with one field added.
def handler(event:, context:)
  event.merge('echo' => true)
end
