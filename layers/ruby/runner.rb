# Ruby runner for the `bootstrap` Lambda custom runtime (being written).
abort "runner.rb: not written yet"
