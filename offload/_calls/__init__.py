"""An offloaded call: what runs in the pool thread, how asyncio and trio await it, and
how its outcome is delivered to the loop."""
