"""The loop watchdog: it names the blocking call that stalls an event loop."""
