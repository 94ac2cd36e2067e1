"""The nightshift Airflow UI plugin: the Model health page, the reports in the store, and the
operator extra links (see ``nightshift.airflow.plugin``)."""

from nightshift.airflow.plugin import NightshiftPlugin

__all__ = ["NightshiftPlugin"]
