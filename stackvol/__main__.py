from stackvol.cli.main import main

raise SystemExit(main())
