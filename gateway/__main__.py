"""``python -m gateway`` is the same as the ``alertmanager-gateway`` command."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
