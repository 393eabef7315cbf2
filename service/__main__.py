"""`python -m service` is the same program as `secret-rotator`."""

from service.cli import main

raise SystemExit(main())
