"""The components of Ensemble: each has its own Celery queue, its trace entries and listeners.

The one list of their names: settings, the Celery queues, the API's enum and the diagrams read it.
"""

from __future__ import annotations

BUSINESS_COMPONENTS = ("crm", "sales", "correspondence", "marketing")
COMPONENTS = (*BUSINESS_COMPONENTS, "integration")
