# The benchmark's echo handler: the event back with one field added.


def handler(event, context):
    event["echo"] = True
    return event
