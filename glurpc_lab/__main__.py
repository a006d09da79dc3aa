from glurpc_lab.cli import main

raise SystemExit(main())
