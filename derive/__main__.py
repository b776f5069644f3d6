from derive.app.cli import main

raise SystemExit(main())
