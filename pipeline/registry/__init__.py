"""The sponsor registry (docs/architecture.md): which datasets are ingested, from where, and when.

- :mod:`pipeline.registry.schema`: the registry file, its entries and their checks (read
  safely from YAML; where deliveries may come from, :class:`DeliveryPolicy`).
- :mod:`pipeline.registry.tasks`: what the ingest DAG's tasks call (list the new
  deliveries, stage, validate and commit one).
- :mod:`pipeline.registry.notifications`: the failure notifications the DAGs record.

Every name is importable from here. Nothing in this package imports Airflow or anything
heavy at module level: the DAG files import it when they are parsed.
"""

from __future__ import annotations

__all__ = [
    "ARRIVAL",
    "DEFAULT_REGISTRY",
    "FORBIDDEN_FOLDERS",
    "LOG_ASSET_URI",
    "MANUAL",
    "MAX_PER_RUN",
    "MAX_REGISTRY_BYTES",
    "MAX_REGISTRY_DEPTH",
    "NOTIFICATIONS_FILE",
    "PRESETS",
    "SYSTEM_FOLDERS",
    "DeliveryPolicy",
    "PeriodicJob",
    "Registry",
    "RegistryEntry",
    "RegistryFileError",
    "RegistryProblem",
    "check_deliveries",
    "check_schedule",
    "commit_delivery",
    "failure_notifier",
    "is_remote",
    "list_deliveries",
    "load_registry",
    "new_deliveries",
    "notify_failure",
    "read_registry",
    "resolve_registry",
    "stage_delivery",
    "validate_delivery",
]

from pipeline.registry.notifications import NOTIFICATIONS_FILE, failure_notifier, notify_failure
from pipeline.registry.schema import (
    ARRIVAL,
    DEFAULT_REGISTRY,
    FORBIDDEN_FOLDERS,
    LOG_ASSET_URI,
    MANUAL,
    MAX_REGISTRY_BYTES,
    MAX_REGISTRY_DEPTH,
    PRESETS,
    SYSTEM_FOLDERS,
    DeliveryPolicy,
    PeriodicJob,
    Registry,
    RegistryEntry,
    RegistryFileError,
    RegistryProblem,
    check_deliveries,
    check_schedule,
    is_remote,
    load_registry,
    read_registry,
    resolve_registry,
)
from pipeline.registry.tasks import (
    MAX_PER_RUN,
    commit_delivery,
    list_deliveries,
    new_deliveries,
    stage_delivery,
    validate_delivery,
)
