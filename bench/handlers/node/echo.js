// The benchmark's echo handler: the event back with one field added.
exports.handler = async (event) => ({ ...event, echo: true });
