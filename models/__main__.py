"""``python -m models``: training from solution manifests."""

from models.cli import main

raise SystemExit(main())
