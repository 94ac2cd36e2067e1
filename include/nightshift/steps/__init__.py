"""The stages' steps as plain functions, one module per stage (``ingest`` is
:func:`nightshift.ingest.ingest_partition`): ``train``, ``gate``, ``score``, ``monitor``,
``retrain``. DAG tasks (``nightshift.airflow.tasks``), the CLI, the backtest and the
benchmarks call them; each is idempotent for a given ``run_key`` (the orchestrator's run),
so an at-least-once retry finds what the first attempt finished instead of doing it twice."""
