"""`make bench`: the project's speed figures (printed, never asserted in tests)."""
