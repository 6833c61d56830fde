# The large-init handler (bench/README.md, "Large init"): module-level code builds ~100 MB of
# small objects, a list of 550,000 two-element lists each holding an int and a string (what a
# loaded table or model looks like to the interpreter: objects with reference counts and GC
# headers, which copy-on-write pages do not like), once per process. The handler looks one
# entry up, and answers the event with "echo": true added and, under "report", the page faults
# its process has taken so far (getrusage's ru_minflt, a few microseconds to read): in a child
# forked from a loaded parent they are counted from the fork, so they are the pages the child
# copied on write or touched fresh; in a process of its own, every page it touched since exec.
import resource

TABLE = [[i, "item-%d" % i] for i in range(550_000)]


def handler(event, context):
    entry = TABLE[event.get("seq", 0) % len(TABLE)]
    event["echo"] = True
    event["report"] = {"minflt": resource.getrusage(resource.RUSAGE_SELF).ru_minflt}
    del entry
    return event
