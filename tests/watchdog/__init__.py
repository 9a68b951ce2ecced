"""Tests of offload._watchdog: the watchdog, its pytest plugin and command line."""
