"""Tests of offload._calls: delivery of outcomes, and calls awaited under anyio's backends."""
