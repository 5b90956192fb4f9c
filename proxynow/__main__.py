"""Allows `python -m proxynow`."""

from proxynow.cli import main

raise SystemExit(main())
