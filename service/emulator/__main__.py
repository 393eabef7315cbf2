"""`python -m service.emulator` runs the standalone emulator."""

from service.emulator.standalone import main

raise SystemExit(main())
