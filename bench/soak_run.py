"""`python -m bench.soak_run`: the soak as its own command (not part of `make bench`)."""

from bench.soak import main

main()
