"""The bottom layer: messages, topic names, errors, settings, clock and logging set-up."""
