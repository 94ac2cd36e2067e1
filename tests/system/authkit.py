"""A minimal auth manager for tests of per-DAG access: the Simple auth manager's users and
roles, plus per-user allow-lists of DAG ids. The Simple auth manager alone grants DAG access by
role only (all DAGs or none), so it cannot show that one user sees a dataset another does not.

``$NIGHTSHIFT_TEST_DAG_ACCESS`` is JSON ``{"user": ["fnmatch pattern of DAG ids", ...]}``: a
listed user may access only the DAGs that match (and only as far as their role allows); users
not listed keep their role's access. Configure with
``AIRFLOW__CORE__AUTH_MANAGER=authkit.DagAccessAuthManager`` (``tests/system`` on the path).
"""

from __future__ import annotations

import fnmatch
import json
import os
from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

ENV = "NIGHTSHIFT_TEST_DAG_ACCESS"


class DagAccessAuthManager(SimpleAuthManager):
    """Simple auth manager with per-user DAG allow-lists (see the module docstring)."""

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        allowed = json.loads(os.environ.get(ENV) or "{}").get(user.get_name())
        dag_id = details.id if details is not None else None
        # a question about no DAG in particular ("may they see the DAG list?") is the role's
        if allowed is not None and dag_id and not any(fnmatch.fnmatchcase(dag_id, p) for p in allowed):
            return False
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )
