from semcode.cli import main

raise SystemExit(main())
