"""The pure decisions: a state, an event and `now` in, the changes out; no I/O."""
