"""Example 5, the lake plus article 001's "consumer B": every change posted to an HTTP endpoint."""
