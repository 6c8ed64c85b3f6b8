from medgan.cli import main

raise SystemExit(main())
