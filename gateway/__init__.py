"""alertmanager-gateway: Alertmanager webhooks in, rendered notifications out, nothing lost."""

from __future__ import annotations

__version__ = "0.1.0"
USER_AGENT = f"alertmanager-gateway/{__version__}"
