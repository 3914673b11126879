from posventa.cli import main

raise SystemExit(main())
