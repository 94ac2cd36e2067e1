"""Task bodies, one module per stage, named as the DAG file and the step of that stage
(``dags/<stage>.py`` → ``nightshift.airflow.tasks.<stage>`` → ``nightshift.steps.<stage>``).
Light at import: DAG files import the wiring (``tasks.gate.gate_and_promote``) at parse time."""
