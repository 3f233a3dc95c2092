"""`python -m service.cli ...` is `dunscan ...` (tests and `make bench` run it without the console
script)."""

from service.cli.main import main

raise SystemExit(main())
