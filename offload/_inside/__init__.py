"""What an offloaded call can do from its thread: see its cancellation, call the loop."""
