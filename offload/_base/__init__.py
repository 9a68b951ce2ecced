"""What every layer uses: offload's errors, argument checks, the fork reset, and
shutdown at the end of a ``with`` block."""
