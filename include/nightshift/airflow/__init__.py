"""The only part of nightshift that knows Airflow: assets, sensors, triggers, task helpers.

Nothing here is imported by the core; DAG files import from here and from ``airflow.sdk``.
"""
