"""The pinned stack resolves and imports together (evidently 0.7 needs pandas < 3, ...)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, importlib.metadata as md
import airflow.sdk, great_expectations, pandas, pyarrow, sklearn, xgboost, mlflow, evidently, boto3
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
names = ["apache-airflow", "apache-airflow-providers-amazon", "great-expectations", "pandas", "pyarrow",
         "scikit-learn", "xgboost", "mlflow", "evidently", "boto3"]
print(json.dumps({n: md.version(n) for n in names}))
"""


def test_stack_imports_together() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True)
    versions = json.loads(out.stdout.strip().splitlines()[-1])
    major = {k: tuple(int(p) for p in v.split(".")[:2]) for k, v in versions.items()}
    assert major["apache-airflow"] == (3, 3)
    assert major["great-expectations"][0] == 1
    assert major["pandas"][0] == 2
    assert major["mlflow"][0] == 3
    assert major["evidently"][:2] == (0, 7)
