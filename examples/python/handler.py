"""An AWS-style Python handler: the event arrives decoded, the return value is JSON-encoded."""


def handler(event, context):
    print(f"request {context.aws_request_id}, {context.get_remaining_time_in_millis()} ms left")
    return {"request": event.get("request"), "reply": "Thanks from Python"}
